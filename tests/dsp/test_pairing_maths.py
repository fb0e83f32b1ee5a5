"""Pairing's maths as pure functions (dsp.calibration): the tare window, the plateau of a
known press, and the two-point scale. device/pairing/pair.py only words their answers."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.calibration import (
    MAX_SCALE_RATIO,
    PLATEAU_S,
    Calibration,
    CalibrationError,
    ImplausibleScaleError,
    check_tare_window,
    plateau_mean,
    two_point_calibration,
    zero_shift_n,
)

RATE_HZ = 1000
CAL = Calibration(1000.0, 12_000.0)


def test_check_tare_window_gives_the_load_of_a_quiet_window():
    rng = np.random.default_rng(2)
    assert check_tare_window(12_000 + rng.normal(0, 20, 64), CAL) == pytest.approx(0, abs=0.01)
    assert check_tare_window(np.full(64, 18_000.0), CAL) == pytest.approx(6.0)
    with pytest.raises(CalibrationError, match="not quiet"):
        check_tare_window(np.r_[np.full(32, 12_000.0), np.full(32, 13_000.0)], CAL)
    with pytest.raises(CalibrationError):
        check_tare_window(np.array([12_000.0]), CAL)


def _press(t_s: np.ndarray, level_n: float, at_s: float, noise_n: float = 0.02, seed: int = 3):
    rng = np.random.default_rng(seed)
    force = np.where(t_s >= at_s, level_n, 0.0) + rng.normal(0, noise_n, t_s.size)
    return CAL.offset_counts + force * CAL.scale_counts_per_n


def test_plateau_mean_finds_a_steady_press_near_the_known_force():
    t = np.arange(0, 3.0, 1 / RATE_HZ)
    raw = _press(t, 20.0, at_s=1.5)
    # the last PLATEAU_S all pressed and steady: its mean counts
    mean = plateau_mean(t, raw, CAL, 20.0)
    assert mean == pytest.approx(CAL.offset_counts + 20_000, abs=5)
    # not yet a full second of press (the window still holds the unloaded part)
    early = t < 1.5 + PLATEAU_S * 0.5
    assert plateau_mean(t[early], raw[early], CAL, 20.0) is None
    # too little data to judge a plateau at all
    assert plateau_mean(t[:500], raw[:500], CAL, 20.0) is None
    assert plateau_mean(t[:0], raw[:0], CAL, 20.0) is None
    # steady, but far under the known force (under 30 %): not the press asked for
    assert plateau_mean(t, _press(t, 5.0, at_s=0.5), CAL, 20.0) is None
    # pressed, but shaking (spread over 3 % of the force)
    assert plateau_mean(t, _press(t, 20.0, at_s=0.5, noise_n=1.5), CAL, 20.0) is None


def test_two_point_calibration_and_an_implausible_scale():
    cal = two_point_calibration(12_000.0, 31_000.0, 20.0, device_scale_counts_per_n=1000.0)
    assert (cal.scale_counts_per_n, cal.offset_counts) == (950.0, 12_000.0)
    assert two_point_calibration(500.0, 2500.0, 10.0).scale_counts_per_n == 200.0
    with pytest.raises(ImplausibleScaleError) as err:
        two_point_calibration(12_000.0, 14_000.0, 20.0, device_scale_counts_per_n=1000.0)
    assert err.value.ratio == pytest.approx(0.1) and err.value.scale_counts_per_n == 100.0
    assert err.value.ratio < 1 / MAX_SCALE_RATIO
    with pytest.raises(CalibrationError):
        two_point_calibration(12_000.0, 12_000.0, 20.0)
    with pytest.raises(CalibrationError):
        two_point_calibration(12_000.0, 31_000.0, 0.0)


def test_zero_shift_is_the_distance_to_the_furthest_reference_each_by_its_own_scale():
    stored = Calibration(2000.0, 12_400.0)  # a two-point scale, a zero 0.4 N up
    assert zero_shift_n(12_000, []) == 0.0
    assert zero_shift_n(12_300, [CAL]) == pytest.approx(0.3)
    assert zero_shift_n(11_500, [CAL]) == pytest.approx(0.5)
    assert zero_shift_n(12_000, [CAL, stored]) == pytest.approx(0.2)  # 400 / 2000
    assert zero_shift_n(13_000, [CAL, stored]) == pytest.approx(1.0)  # the factory zero's
