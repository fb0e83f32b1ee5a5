"""Release timing from the hold level (dsp/hold.py): a release is timed from where the
filtered force leaves the hold's plateau down to near zero, scaled to the whole way."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.events import EventKind
from dsp.hold import HoldTracker
from dsp.zones import get_zone
from tests.dsp.tracegen import Leakage, make_pipe, measured, ramp, run_trace, smooth_step, times

RATE_HZ = 1000.0
#: (zone, band N, hold level N): a light hold near the neck and a firm one on the shoulder
HOLDS = [("neck_back", (4.0, 7.5), 6.0), ("upper_trapezius", (16.0, 30.0), 22.0)]


def hold_then_release(level_n: float, release_s: float, rate_hz: float = RATE_HZ):
    """True pressing force: up over 0.5 s, held 4 s, then a linear release to zero."""
    t = times(rate_hz, 4.5 + release_s + 1.5)
    press = smooth_step(t, 0.0, 0.5, 0.0, level_n)
    let_go = ramp(t, 4.5, level_n / release_s, 0.0, level_n)
    return t, np.maximum(press - let_go, 0.0)


def releases(zone_name, band, t, force, *, motor_hz=None, release_min_s=2.0, batch=10, holds=1):
    """The fast_release decisions of a pipeline run over ``force``, after checking that it
    saw ``holds`` holds (None: any number)."""
    zone = get_zone(zone_name)
    pipe = make_pipe(RATE_HZ, zone, motor_hz=motor_hz)
    pipe.set_zone(zone, band=band, hold=(1.0, None, release_min_s))
    events = run_trace(pipe, t, force, batch=batch)
    if holds is not None:
        assert [e.kind for e in events].count(EventKind.HOLD_ENDED) == holds
    return [e for e in events if e.kind is EventKind.FAST_RELEASE]


@pytest.mark.parametrize(("zone_name", "band", "level_n"), HOLDS)
def test_a_2_5_s_linear_release_is_not_fast(zone_name, band, level_n):
    t, true = hold_then_release(level_n, 2.5)
    assert releases(zone_name, band, t, true) == []


@pytest.mark.parametrize(("zone_name", "band", "level_n"), HOLDS)
def test_a_0_8_s_release_is_fast_and_timed_from_the_hold_level(zone_name, band, level_n):
    t, true = hold_then_release(level_n, 0.8)
    (fast,) = releases(zone_name, band, t, true)
    assert fast.release_s == pytest.approx(0.8, abs=0.08)
    assert fast.release_min_s == 2.0
    assert fast.hold_level_n == pytest.approx(level_n, rel=0.02)
    # it left the plateau near 90 % of the level, and ended near 15 % of it
    assert fast.from_s == pytest.approx(4.5 + 0.1 * 0.8, abs=0.04)
    assert fast.t_s == pytest.approx(4.5 + 0.85 * 0.8, abs=0.04)


@pytest.mark.parametrize(("zone_name", "band", "level_n"), HOLDS)
@pytest.mark.parametrize(
    "leak",
    [
        Leakage(25.0, 3.0, -0.08),
        Leakage(60.0, 3.0, 0.08, h2_n=1.0),
        Leakage(185.0, 3.0, 0.05),
    ],
    ids=["25Hz", "60Hz+h2", "185Hz"],
)
@pytest.mark.parametrize(("release_s", "fast"), [(2.5, False), (0.8, True)])
def test_noise_and_motor_leakage_do_not_change_the_verdict(
    zone_name, band, level_n, leak, release_s, fast
):
    t, true = hold_then_release(level_n, release_s)
    got = releases(zone_name, band, t, measured(t, true, leak), motor_hz=leak.motor_hz)
    assert bool(got) is fast
    if fast:
        assert got[0].release_s == pytest.approx(release_s, abs=0.1)


def test_release_timing_does_not_depend_on_batching():
    t, true = hold_then_release(6.0, 0.8)
    force = measured(t, true, Leakage(60.0, 3.0))
    got = [
        releases("neck_back", (4.0, 7.5), t, force, motor_hz=60.0, batch=size)[0].to_dict()[
            "detail"
        ]
        for size in (1, 10, 1 << 16)
    ]
    for d in got[1:]:
        assert d == pytest.approx(got[0], abs=1e-9)


def test_a_step_down_inside_the_band_then_a_fast_release_is_timed_from_the_new_level():
    t = times(RATE_HZ, 12.0)
    true = smooth_step(t, 0.0, 0.5, 0.0, 7.0)
    true -= smooth_step(t, 3.0, 0.3, 0.0, 2.0)  # 7 N -> 5 N, both in the band, held 4 s
    true = np.maximum(true - ramp(t, 7.5, 5.0 / 0.8, 0.0, 5.0), 0.0)  # 0.8 s to zero
    (fast,) = releases("neck_back", (4.0, 7.5), t, true)
    assert fast.hold_level_n == pytest.approx(5.0, rel=0.02)
    assert fast.release_s == pytest.approx(0.8, abs=0.08)


def test_an_over_press_then_letting_go_is_not_the_steps_release():
    t = times(RATE_HZ, 8.0)
    true = smooth_step(t, 0.0, 0.5, 0.0, 6.0)
    true += smooth_step(t, 3.0, 0.15, 0.0, 9.0)  # to 15 N, over the band
    true = np.maximum(true - ramp(t, 3.35, 15.0 / 0.3, 0.0, 15.0), 0.0)  # gone in 0.3 s
    # (coming down through the band is a brief second hold, too short to time a release)
    assert releases("neck_back", (4.0, 7.5), t, true, holds=2) == []


def test_a_slow_release_below_the_band_edge_counts_the_whole_way():
    """Level just above lo: the plateau reaches under the band, and the release is still
    timed from where the force left it."""
    t, true = hold_then_release(4.2, 2.5)
    assert releases("neck_back", (4.0, 7.5), t, true) == []
    t, true = hold_then_release(4.2, 0.8)
    (fast,) = releases("neck_back", (4.0, 7.5), t, true)
    assert fast.release_s == pytest.approx(0.8, abs=0.08)


def test_a_pass_through_the_band_is_not_a_release():
    tracker = HoldTracker((4.0, 7.5), release_min_s=2.0)
    t = times(RATE_HZ, 1.0)
    f = 8.0 * np.sin(np.pi * t / 0.4).clip(0)  # up and down through the band in 0.4 s
    f = np.minimum(f, 6.0)
    kinds = [d.kind for d in tracker.update(t, f)]
    assert EventKind.FAST_RELEASE not in kinds
