"""The supervisor's safety properties on the true pressing force of generated traces.

Traces: true pressing force + white noise (0.05 N) + motor leakage up to 3 N peak at the
motor's true frequency (25-200 Hz, up to 15 % off the command; with a 2nd harmonic).
Stated margins: a true force at or over 1.05 x the limit for 20 ms or more is stopped within
30 ms of the first sample over the limit (40 ms for a motor under ~53 Hz); a true force that
stays at or under 90 % of the limit (reached smoothly, as a person leans in) is never
stopped.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.events import EventKind
from dsp.zones import get_zone, with_limit
from tests.dsp.tracegen import Leakage, make_pipe, measured, ramp, run_trace, smooth_step, times

leakages = st.builds(
    Leakage,
    motor_hz=st.floats(25.0, 185.0),
    amp_n=st.floats(0.0, 3.0),
    off=st.floats(-0.15, 0.15),
    phase=st.floats(0.0, 6.28),
    h2_n=st.floats(0.0, 1.0),
)
zones = st.sampled_from(["neck_back", "suboccipital", "upper_trapezius", "levator_scapulae"])


def _zone(name: str, limit_n: float | None):
    zone = get_zone(name)
    return with_limit(zone, limit_n)[0] if limit_n else zone


@settings(max_examples=60)
@given(
    rate_hz=st.sampled_from([500.0, 1000.0]),
    zone_name=zones,
    limit_n=st.sampled_from([None, 10.0]),
    base_frac=st.floats(0.0, 0.7),
    peak_frac=st.floats(1.05, 2.0),
    over_s=st.floats(0.02, 0.2),
    onset=st.sampled_from(["step", "ramp"]),
    slope_limits_per_s=st.floats(1.0, 20.0),
    leak=leakages,
    seed=st.integers(0, 1000),
)
def test_over_limit_for_20ms_is_stopped_within_15ms(
    rate_hz, zone_name, limit_n, base_frac, peak_frac, over_s, onset,
    slope_limits_per_s, leak, seed,
):  # fmt: skip
    zone = _zone(zone_name, limit_n)
    lim = zone.limit_n
    t = times(rate_hz, 2.5)
    base = smooth_step(t, 0.1, 0.4, 0.0, base_frac * lim)
    if onset == "step":
        rise = smooth_step(t, 1.0, 0.02, 0.0, (peak_frac - base_frac) * lim)
    else:
        rise = ramp(t, 1.0, slope_limits_per_s * lim, 0.0, (peak_frac - base_frac) * lim)
    true = base + rise
    i_cross = int(np.argmax(true > lim))
    t_cross = t[i_cross]
    true = np.minimum(true, smooth_step(t, t_cross + over_s, 0.05, true.max(), 0.0))
    assert (true > lim).sum() / rate_hz >= 0.02 - 1e-9
    pipe = make_pipe(rate_hz, zone, motor_hz=leak.motor_hz)
    events = run_trace(pipe, t, measured(t, true, leak, seed=seed))
    stops = [e for e in events if e.kind is EventKind.STOP]
    assert stops, "no stop"
    # issue 13's target, 15 ms; a 25-40 Hz motor's band-stop (wide enough for a motor 15 %
    # off) sits next to the pressing band: up to 22 ms on a jab from rest (the README's
    # safety-timing table has the figure per motor band)
    bound_s = 0.015 if leak.motor_hz >= 40.0 else 0.025
    assert stops[0].t_s <= t_cross + bound_s + 1e-9, (stops[0], t_cross)
    assert pipe.state.value == "stopped"


@settings(max_examples=60)
@given(
    rate_hz=st.sampled_from([500.0, 1000.0]),
    zone_name=zones,
    limit_n=st.sampled_from([None, 10.0]),
    level_frac=st.floats(0.0, 0.9),
    rise_s=st.floats(0.3, 1.0),
    leak=leakages,
    seed=st.integers(0, 1000),
)
def test_no_stop_at_or_under_90_percent(
    rate_hz, zone_name, limit_n, level_frac, rise_s, leak, seed
):
    zone = _zone(zone_name, limit_n)
    t = times(rate_hz, 3.0)
    true = smooth_step(t, 0.3, rise_s, 0.0, level_frac * zone.limit_n)
    pipe = make_pipe(rate_hz, zone, motor_hz=leak.motor_hz)
    events = run_trace(pipe, t, measured(t, true, leak, seed=seed))
    assert [e for e in events if e.kind in (EventKind.STOP, EventKind.FAULT)] == []
    assert pipe.state.value in ("armed", "warning")
