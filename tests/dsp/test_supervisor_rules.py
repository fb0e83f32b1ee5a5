"""Each supervisor rule, its latch and re-arm, on small deterministic traces."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.calibration import Calibration
from dsp.decisions import SafetyState
from dsp.events import Cause, EventKind
from dsp.pipeline import ForcePipeline
from dsp.zones import get_zone
from tests.dsp.tracegen import make_pipe, run_trace, smooth_step, times

RATE = 1000.0


def kinds(events):
    """(kind, cause) per event; None for kinds that have no cause."""
    return [(e.kind, getattr(e, "cause", None)) for e in events]


def test_over_limit_without_vibration_still_stops_and_latches_until_reset_and_rearm():
    zone = get_zone("upper_trapezius")  # 40 N, no rate-of-rise rule
    t = times(RATE, 6.0)
    true = smooth_step(t, 0.2, 0.5, 0, 45.0) - smooth_step(t, 2.0, 0.5, 0, 45.0)
    pipe = make_pipe(RATE, zone)
    events = run_trace(pipe, t[t < 2.6], true[t < 2.6])
    stop = [e for e in events if e.kind is EventKind.STOP]
    assert kinds(stop) == [(EventKind.STOP, Cause.OVER_LIMIT)]
    assert stop[0].vibrating is False and stop[0].advice == "ease_off"
    assert 0.55 < stop[0].t_s < 0.7 and stop[0].detection_delay_s > 0
    assert pipe.state is SafetyState.STOPPED
    assert not pipe.rearm(2.6)  # under 70 % for less than 1 s
    run_trace(pipe, t[t >= 2.6], true[t >= 2.6])
    assert pipe.state is SafetyState.STOPPED  # still latched: nobody re-armed
    assert pipe.rearm(float(t[-1]))
    assert pipe.state is SafetyState.ARMED
    assert kinds(pipe.tick(float(t[-1]))) == [(EventKind.REARMED, None)]


def test_warning_and_reduce_at_80_percent_while_vibrating():
    zone = get_zone("neck_back")
    t = times(RATE, 3.0)
    true = smooth_step(t, 0.2, 0.8, 0, 8.5)
    pipe = make_pipe(RATE, zone, motor_hz=60.0, intensity_pct=20.0)
    events = run_trace(pipe, t, true)
    assert kinds(events) == [(EventKind.WARNING, None), (EventKind.REDUCE, None)]
    assert events[0].force_n >= 8.0 and pipe.state is SafetyState.WARNING


def test_vibration_above_zone_cap_asks_to_reduce():
    pipe = make_pipe(RATE, get_zone("neck_back"))
    pipe.set_vibration(80.0, 50.0)
    assert kinds(pipe.tick(0.0)) == [(EventKind.REDUCE, None)]


def test_jab_near_the_neck_stops_on_rate_of_rise_before_the_limit():
    t = times(RATE, 1.0)
    true = smooth_step(t, 0.3, 0.08, 0, 12.0)  # 0 -> 12 N in 80 ms
    pipe = make_pipe(RATE, get_zone("neck_back"))
    events = run_trace(pipe, t, true)
    first = events[0]
    assert (first.kind, first.cause) == (EventKind.STOP, Cause.RATE_OF_RISE)
    assert np.interp(first.t_s, t, true) < 10.0  # the true force was still under the limit
    # the same jab on the upper back (no rate rule) stops on the limit instead
    pipe = make_pipe(RATE, get_zone("upper_trapezius"))
    assert kinds(run_trace(pipe, t, true * 4))[0] == (EventKind.STOP, Cause.OVER_LIMIT)


@pytest.mark.parametrize("batch", [1, 7, 25, 64, 65536])
def test_a_rate_of_rise_stop_does_not_depend_on_the_batching(batch):
    """The rise is measured over the last 20 ms whatever the batch: across a batch's start
    (against the last batch's samples) as inside a long offline batch."""
    t = times(RATE, 1.0)
    true = smooth_step(t, 0.3, 0.08, 0, 12.0)  # the jab starts on a batch's first sample
    stops = []
    for size in (10, batch):
        pipe = make_pipe(RATE, get_zone("neck_back"))
        stop = next(e for e in run_trace(pipe, t, true, batch=size) if e.kind is EventKind.STOP)
        stops.append((stop.cause, stop.t_s, stop.rate_n_per_s))
    assert stops[0][0] is Cause.RATE_OF_RISE
    assert stops[1] == stops[0]


def test_forbidden_zone_contact_for_200ms_is_its_own_stop():
    t = times(RATE, 1.5)
    true = smooth_step(t, 0.2, 0.3, 0, 2.5)
    pipe = make_pipe(RATE, get_zone("neck_side"))
    events = [e for e in run_trace(pipe, t, true) if e.kind is EventKind.STOP]
    assert kinds(events) == [
        (EventKind.STOP, Cause.OVER_LIMIT),
        (EventKind.STOP, Cause.FORBIDDEN_ZONE_CONTACT),
    ]
    assert 0.19 < events[1].t_s - events[0].t_s < 0.25


def test_stale_stream_only_while_vibrating():
    t = times(RATE, 0.1)
    f = np.full(t.size, 1.0)
    pipe = make_pipe(RATE, get_zone("neck_back"))
    run_trace(pipe, t, f)
    assert pipe.tick(0.099 + 0.9) == []  # vibration off: a short silence is no fault
    pipe.set_vibration(20.0, 50.0)
    assert pipe.tick(0.099 + 0.14) == []
    [fault] = pipe.tick(0.099 + 0.16)
    assert (fault.kind, fault.cause) == (EventKind.FAULT, Cause.STALE_STREAM)
    assert fault.detection_delay_s > 0.15 and pipe.state is SafetyState.FAULT
    assert not pipe.rearm(0.3)  # stream still stale


def test_a_silent_stream_without_vibration_is_a_fault_after_silent_s():
    """A device that dies while nothing vibrates (a brown-out at rest) left the last reading
    on screen for ever; now its silence is a stale-stream fault after SILENT_S."""
    from dsp.supervisor import SILENT_S

    t = times(RATE, 0.1)
    pipe = make_pipe(RATE, get_zone("upper_back"))
    run_trace(pipe, t, np.full(t.size, 5.0))
    assert pipe.tick(0.099 + SILENT_S - 0.01) == []
    [fault] = pipe.tick(0.099 + SILENT_S + 0.01)
    assert (fault.kind, fault.cause) == (EventKind.FAULT, Cause.STALE_STREAM)
    assert fault.stale_after_s == SILENT_S and pipe.state is SafetyState.FAULT
    assert pipe.tick(0.099 + 5.0) == []  # reported once per latch


def test_sequence_gaps_and_crc_bursts_are_faults():
    pipe = make_pipe(RATE, get_zone("neck_back"))
    t = times(RATE, 0.2)
    x = np.full(t.size, 1.0)
    out = [
        pipe.on_batch(t[i : i + 10], x[i : i + 10], t[i], seq_gap=1 if i == 50 else 0)
        for i in range(0, 100, 10)
    ]
    assert all(o.events == [] for o in out)  # one lost batch (10 ms) is tolerated
    # 6 batches lost: the next one starts 60 ms later than the one before would have
    out = pipe.on_batch(t[160:170], x[160:170], 0.17, seq_gap=6)  # 60 ms blind
    assert kinds(out.events) == [(EventKind.FAULT, Cause.SEQ_GAP)]
    assert out.events[0].blind_s == pytest.approx(0.06)
    pipe2 = make_pipe(RATE, get_zone("neck_back"))
    events = []
    for k, i in enumerate(range(0, 50, 10)):
        events += pipe2.on_batch(
            t[i : i + 10], x[i : i + 10], t[i], crc_errors=1 if k < 3 else 0
        ).events
    assert kinds(events) == [(EventKind.FAULT, Cause.CRC_BURST)]


def test_the_blind_time_of_a_gap_is_the_lost_batches_times_the_batch_period():
    """Two lost 10 ms batches are 20 ms blind, under the 50 ms fault threshold (the old count
    was gap x (gap + 1) x period: 60 ms, already a fault)."""
    pipe = make_pipe(RATE, get_zone("neck_back"))
    t = times(RATE, 1.0)
    x = np.full(t.size, 1.0)
    for i in range(0, 100, 10):
        assert pipe.on_batch(t[i : i + 10], x[i : i + 10], t[i]).events == []
    # batches 10 and 11 lost: 12 is next
    out = pipe.on_batch(t[120:130], x[120:130], t[120], seq_gap=2)
    assert out.events == []
    for i in range(130, 300, 10):  # keep going, then lose 4 (40 ms): still no fault
        assert pipe.on_batch(t[i : i + 10], x[i : i + 10], t[i]).events == []
    out = pipe.on_batch(t[340:350], x[340:350], t[340], seq_gap=4)
    assert out.events == []
    for i in range(350, 700, 10):
        pipe.on_batch(t[i : i + 10], x[i : i + 10], t[i])
    out = pipe.on_batch(t[760:770], x[760:770], t[760], seq_gap=6)
    (fault,) = out.events
    assert fault.cause == Cause.SEQ_GAP and fault.blind_s == pytest.approx(0.06)


def test_flatline_and_saturation_on_raw_counts():
    cal = Calibration(1000.0, 0.0)
    pipe = ForcePipeline(RATE, cal, get_zone("neck_back"))
    t = times(RATE, 1.5)
    raw = np.where(t < 0.3, np.arange(t.size) % 3, 5)  # stuck from 0.3 s
    events = run_trace(pipe, t, raw)
    assert kinds(events) == [(EventKind.FAULT, Cause.FLATLINE)]
    assert abs(events[0].t_s - 1.3) < 0.002
    pipe = ForcePipeline(RATE, cal, get_zone("neck_back"))
    raw = (np.arange(t.size) % 3).astype(float)
    raw[700] = 2**23 - 1
    events = run_trace(pipe, t, raw)
    assert kinds(events)[0] == (EventKind.FAULT, Cause.SATURATION)
    assert pipe.state is SafetyState.FAULT


def test_max_vibration_time_stops_vibration():
    pipe = make_pipe(
        RATE, get_zone("neck_back"), motor_hz=50.0, intensity_pct=20.0, max_vibration_s=0.5
    )
    t = times(RATE, 1.0)
    events = run_trace(pipe, t, np.full(t.size, 1.0) + (np.arange(t.size) % 2) * 0.01)
    assert kinds(events) == [(EventKind.STOP, Cause.MAX_VIBRATION_TIME)]
    assert abs(events[0].t_s - 0.5) < 0.002
    assert pipe.supervisor.allowed_intensity_pct(20.0) == 0.0


def test_auto_rearm_sees_each_episode_in_one_long_batch():
    zone = get_zone("upper_trapezius")
    t = times(RATE, 8.0)
    one = lambda t0: smooth_step(t, t0, 0.3, 0, 45) - smooth_step(t, t0 + 0.8, 0.3, 0, 45)  # noqa: E731
    true = one(0.5) + one(3.5)
    pipe = make_pipe(RATE, zone, auto_rearm=True)
    events = pipe.on_batch(t, true, float(t[-1])).events
    assert kinds(events) == [
        (EventKind.WARNING, None),
        (EventKind.STOP, Cause.OVER_LIMIT),
        (EventKind.REARMED, None),
        (EventKind.WARNING, None),
        (EventKind.STOP, Cause.OVER_LIMIT),
        (EventKind.REARMED, None),
    ]
    rearmed = events[2].t_s
    assert 2.3 < rearmed < 3.5  # 1 s after the force fell under 70 %


def _feed(pipe: ForcePipeline, t: np.ndarray, raw: np.ndarray, batch: int) -> list:
    events = []
    for a in range(0, t.size, batch):
        events += pipe.on_batch(t[a : a + batch], raw[a : a + batch], float(t[a])).events
    return events


def test_a_coarse_sensor_s_one_count_step_is_not_a_rate_of_rise():
    """A plate reporting whole pounds (4.45 N a count) at 80 Hz: pressed slowly to 2 counts
    (8.9 N, under the 10 N neck limit), each one-count step lands within one sample. Before,
    every step was a rate-of-rise stop (the Force Board could not finish neck-relief)."""
    rate_hz = 80.0
    cal = Calibration(1.0 / 4.448, 0.0)
    pipe = ForcePipeline(rate_hz, cal, get_zone("neck_back"))
    t = np.arange(0, 8.0, 1 / rate_hz)
    true_n = np.clip((t - 1.0) * 1.5, 0.0, 9.0)  # 1.5 N/s up to 9 N
    raw = np.round(true_n / 4.448)
    events = _feed(pipe, t, raw, 1)
    assert not [e for e in events if e.kind in (EventKind.STOP, EventKind.FAULT)]
    assert pipe.supervisor.resolution_n == pytest.approx(4.448)
    assert any("coarse sensor" in n for n in pipe.notes())
    # a real jab still stops: past the limit, or rising by more than a step in 20 ms
    jab = np.where(t > 6.0, 3.0, raw)
    events = _feed(ForcePipeline(rate_hz, cal, get_zone("neck_back")), t, jab, 1)
    assert [e.cause for e in events if e.kind is EventKind.STOP][:1] == [Cause.OVER_LIMIT]


def test_a_coarse_sensor_at_rest_is_not_a_stuck_sensor_but_a_fine_one_is():
    """A scale in 0.01 kg steps (0.098 N) shows the same value for seconds at rest. Before,
    that was a flatline fault (8 of them in the WH-C06's neck-relief)."""
    t = np.arange(0, 3.0, 0.1)
    raw = np.full(t.size, 50.0)
    coarse = ForcePipeline(10.0, Calibration(1 / 0.0981, 0.0), get_zone("upper_back"))
    assert not [e for e in _feed(coarse, t, raw, 1) if e.kind is EventKind.FAULT]
    fine = ForcePipeline(10.0, Calibration(1000.0, 0.0), get_zone("upper_back"))
    faults = [e for e in _feed(fine, t, raw * 1000, 1) if e.kind is EventKind.FAULT]
    assert faults and faults[0].cause is Cause.FLATLINE
