"""The safety pipeline at every sensor rate the protocol allows (10-2000 Hz), on generated
traces whose truth the test knows: over-limit detection delay, no false stop at 90 % of the
limit, hold durations. The ADC is the one a real sensor at that rate has: integrating over
its conversion period at <= 80 Hz (an HX711: motor leakage comes through at its sinc
response), sample-and-hold with the full 3 N leak above. Motors run up to 15 % off their
command. The full grid is ``benchmarks/bench_dsp.py``; these are fast subsets of it.

Targets (issue 13): detection delay from the first sample where the true force passes the
limit <= max(15 ms, 2 sample periods), none missed. Where a motor band cannot meet it, the
figure is stated per band (``DELAY_EXCEPTIONS_MS``, also in the README) and asserted here, so
that it cannot get worse unnoticed: only a 25 Hz motor at 500 Hz and up, whose band-stop sits
next to the pressing band (group delay), and whose residue is slow enough that a ramp can
cross the limit in its trough (17-18 ms measured).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import signal

from dsp.events import EventKind
from dsp.filters import FilterDesignError, ForceFilters
from dsp.pipeline import ForcePipeline, detection_delay_bound_s
from dsp.zones import get_zone
from tests.dsp.tracegen import (
    Leakage,
    adc_period_s,
    adc_read,
    delay_target_s,
    make_pipe,
    measured,
    ramp,
    run_trace,
    smooth_step,
    times,
)

RATES_HZ = (10.0, 80.0, 500.0, 1000.0, 2000.0)
MOTORS_HZ = (None, 25.0, 40.0, 53.0, 80.0, 120.0, 200.0)
#: (rate Hz, motor Hz) -> worst delay (ms) allowed where the target cannot be met
DELAY_EXCEPTIONS_MS = {
    (500.0, 25.0): 20.0,
    (1000.0, 25.0): 20.0,
    (2000.0, 25.0): 20.0,
}


def batch(rate_hz: float) -> int:
    """Batches of at most max(1 sample, 20 ms), as the host asks for."""
    return max(1, int(0.02 * rate_hz))


@pytest.mark.parametrize("rate_hz", RATES_HZ)
@pytest.mark.parametrize("motor_hz", MOTORS_HZ)
def test_over_limit_detection_delay(rate_hz, motor_hz):
    zone = get_zone("neck_back")
    lim = zone.limit_n
    period = adc_period_s(rate_hz)
    bound_s = DELAY_EXCEPTIONS_MS.get((rate_hz, motor_hz), delay_target_s(rate_hz) * 1e3) / 1e3
    worst, seed = -1.0, 0
    for onset in ("step", "ramp"):
        for off in (-0.15, 0.15) if motor_hz else (0.0,):
            for peak in (1.05, 1.5):
                for phase in (0.0, 4.2):
                    seed += 1
                    t0 = 1.0 + phase / 97.0  # onsets at several phases of the sample grid

                    def true_fn(tt, t0=t0, peak=peak, onset=onset):
                        if onset == "step":
                            return smooth_step(tt, t0, 0.02, 0.5 * lim, peak * lim)
                        return ramp(tt, t0, 20.0, 0.5 * lim, peak * lim)  # 20 N/s

                    t = times(rate_hz, 1.5)
                    leak = Leakage(motor_hz, 3.0, off, phase, h2_n=1.0) if motor_hz else None
                    x = measured(t, adc_read(true_fn, t, period), leak, seed=seed, period_s=period)
                    events = run_trace(
                        make_pipe(rate_hz, zone, motor_hz=motor_hz), t, x, batch(rate_hz)
                    )
                    stops = [e for e in events if e.kind is EventKind.STOP]
                    assert stops, ("missed", onset, off, peak, phase)
                    assert stops[0].t_s >= 0.5, ("startup stop", stops[0])
                    true = true_fn(t)
                    delay = stops[0].t_s - t[np.argmax(true > lim)]
                    worst = max(worst, delay)
                    assert delay <= bound_s + 1e-9, (onset, off, peak, phase, delay)
    assert worst >= 0


@pytest.mark.parametrize("rate_hz", RATES_HZ)
def test_no_false_stop_at_90_percent(rate_hz):
    zone = get_zone("neck_back")
    period = adc_period_s(rate_hz)
    for motor_hz in MOTORS_HZ:
        for off in (-0.15, 0.0, 0.15) if motor_hz else (0.0,):
            t = times(rate_hz, 3.0)

            def true_fn(tt):
                return smooth_step(tt, 0.5, 0.5, 0.0, 0.9 * zone.limit_n)

            leak = Leakage(motor_hz, 3.0, off, 1.0, h2_n=1.0) if motor_hz else None
            x = measured(t, adc_read(true_fn, t, period), leak, seed=3, period_s=period)
            events = run_trace(make_pipe(rate_hz, zone, motor_hz=motor_hz), t, x, batch(rate_hz))
            bad = [e for e in events if e.kind in (EventKind.STOP, EventKind.FAULT)]
            assert bad == [], (motor_hz, off, bad[:1])


@pytest.mark.parametrize("rate_hz", [500.0, 1000.0])
def test_no_false_stop_at_90_percent_of_a_lowered_limit(rate_hz):
    # a profile may lower a limit (neck_back at 5 N): the margin a leak must not cross is
    # half as wide, and the band-stops go deeper for it (a fixed 0.4 N budget stopped falsely)
    zone = replace(get_zone("neck_back"), limit_n=5.0)
    for motor_hz in (25.0, 40.0, 53.0, 80.0, 200.0):
        for off in (-0.15, 0.0, 0.15):
            for phase in (0.0, 2.1, 4.2):
                t = times(rate_hz, 2.5)

                def true_fn(tt):
                    return smooth_step(tt, 0.5, 0.5, 0.0, 0.9 * zone.limit_n)

                leak = Leakage(motor_hz, 3.0, off, phase, h2_n=1.0)
                x = measured(t, true_fn(t), leak, seed=int(phase * 10))
                events = run_trace(make_pipe(rate_hz, zone, motor_hz=motor_hz), t, x, 10)
                bad = [e for e in events if e.kind in (EventKind.STOP, EventKind.FAULT)]
                assert bad == [], (motor_hz, off, phase, bad[:1])


def test_a_zone_change_redesigns_the_band_stops_for_its_limit():
    pipe = make_pipe(1000.0, get_zone("neck_back"), motor_hz=53.0)
    gain_10 = abs(signal.sosfreqz(pipe.filters.fast_sos, worN=[53.0], fs=1000.0)[1][0])
    delay_10 = pipe.supervisor.fast_delay_s
    pipe.set_zone(replace(get_zone("neck_back"), limit_n=5.0))
    gain_5 = abs(signal.sosfreqz(pipe.filters.fast_sos, worN=[53.0], fs=1000.0)[1][0])
    assert gain_5 < 0.6 * gain_10  # half the limit: the leak kept to half as much
    assert pipe.supervisor.fast_delay_s == pipe.filters.fast_group_delay_s > delay_10


@pytest.mark.parametrize("rate_hz", RATES_HZ)
def test_hold_durations_within_100ms_of_the_truth(rate_hz):
    zone = get_zone("neck_back")
    period = adc_period_s(rate_hz)
    for motor_hz in (None, 25.0, 200.0):
        for hold_s, level in ((2.0, 5.0), (6.0, 6.5)):

            def true_fn(tt, hold_s=hold_s, level=level):
                up = smooth_step(tt, 0.5, 0.5, 0.0, level)
                return up - smooth_step(tt, 1.0 + hold_s, 2.0, 0.0, level)

            t = times(rate_hz, hold_s + 5.0)
            # a 200 ms dip out of the band in the middle: tolerated, not the end of the hold
            dip = (t > 0.5 + hold_s / 2) & (t < 0.7 + hold_s / 2)
            pipe = make_pipe(rate_hz, zone, motor_hz=motor_hz)
            pipe.set_zone(zone, band=(4.0, 7.5), hold=(None, None, None))
            leak = Leakage(motor_hz, 3.0, 0.08) if motor_hz else None
            x = measured(t, adc_read(true_fn, t, period), leak, period_s=period)
            x[dip] -= 2.0
            events = run_trace(pipe, t, x, batch(rate_hz))
            tf = times(20_000.0, t[-1])  # the truth between samples too
            true_f = true_fn(tf)
            truth = np.count_nonzero((true_f >= 4.0) & (true_f <= 7.5)) / 20_000.0
            ended = [e for e in events if e.kind is EventKind.HOLD_ENDED]
            assert len(ended) == 1, (motor_hz, hold_s, ended)
            err = ended[0].duration_s - truth
            assert abs(err) <= 0.1 + 1e-9, (motor_hz, hold_s, err)


def test_every_rate_builds_and_says_what_it_gives_up():
    assert ForceFilters(10.0, 150.0).design.notes()  # no low-pass at all at 10 Hz
    assert ForceFilters(80.0, 150.0).design.notes()  # no 40 Hz fast low-pass at 80 Hz
    assert ForceFilters(1000.0, 150.0).design.notes() == []
    pipe = ForcePipeline(10.0, make_pipe(10.0, get_zone(None)).calibration, get_zone(None))
    assert any("rate of rise" in n for n in pipe.notes())
    assert 0.1 <= detection_delay_bound_s(10.0) <= 0.2
    assert detection_delay_bound_s(1000.0) <= 0.015


@pytest.mark.parametrize("rate_hz", [0.0, -5.0, float("nan"), 2.0])
def test_a_rate_the_filters_cannot_serve_is_one_clear_message(rate_hz):
    with pytest.raises(FilterDesignError, match="sample rate"):
        ForceFilters(rate_hz)


def test_a_stop_reports_the_delay_of_the_filters_in_use():
    # the motor's band-stops add delay: the Stop says so (it reported the motorless 5.6 ms)
    zone = get_zone("neck_back")
    t = times(1000.0, 1.0)
    x = np.where(t < 0.5, 5.0, 12.0)
    delays = {}
    for motor_hz in (None, 25.0):
        pipe = make_pipe(1000.0, zone, motor_hz=motor_hz)
        stops = [e for e in run_trace(pipe, t, x) if e.kind is EventKind.STOP]
        delays[motor_hz] = stops[0].detection_delay_s
        assert delays[motor_hz] == pytest.approx(pipe.filters.fast_group_delay_s)
    assert delays[25.0] > delays[None] + 0.003
