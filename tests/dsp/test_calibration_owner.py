"""Calibration as a value owned by the pipeline: replaced by its operations, never mutated."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dsp.calibration import Calibration, CalibrationError
from dsp.pipeline import ForcePipeline
from dsp.zones import get_zone

RATE_HZ = 1000
CAL = Calibration(1000.0, 12_000.0)


def _feed(pipe: ForcePipeline, raw: np.ndarray, t0_s: float = 0.0, batch: int = 10):
    t = t0_s + np.arange(raw.size) / RATE_HZ
    out = []
    for a in range(0, raw.size, batch):
        out.append(pipe.on_batch(t[a : a + batch], raw[a : a + batch], float(t[a])))
    return out


# ---- the value ------------------------------------------------------------------------------


def test_a_calibration_is_an_immutable_value():
    with pytest.raises(dataclasses.FrozenInstanceError):
        CAL.offset_counts = 0.0  # type: ignore[misc]
    moved = CAL.with_offset(12_500.0)
    assert (moved.scale_counts_per_n, moved.offset_counts) == (1000.0, 12_500.0)
    assert CAL.offset_counts == 12_000.0
    rng = np.random.default_rng(0)
    tared = CAL.tared(12_300 + rng.normal(0, 5, 500))
    assert tared.offset_counts == pytest.approx(12_300, abs=1) and CAL.offset_counts == 12_000.0
    with pytest.raises(CalibrationError):
        CAL.tared(np.r_[np.full(100, 12_000.0), np.full(100, 12_400.0)])


# ---- the pipeline's operations ----------------------------------------------------------------


def test_apply_device_tare_replaces_the_pipelines_calibration():
    pipe = ForcePipeline(RATE_HZ, CAL, get_zone(None))
    before = _feed(pipe, np.full(100, 14_000))[-1]
    assert before.force_n[-1] == pytest.approx(2.0)
    new = pipe.apply_device_tare(14_000)
    assert pipe.calibration is new and new.offset_counts == 14_000.0
    assert new.scale_counts_per_n == CAL.scale_counts_per_n
    assert CAL.offset_counts == 12_000.0  # what it was built with is untouched
    after = _feed(pipe, np.full(100, 14_000), t0_s=0.1)[-1]
    assert after.force_n[-1] == pytest.approx(0.0)


def test_auto_zero_takes_a_quiet_unloaded_window_and_nothing_else():
    pipe = ForcePipeline(RATE_HZ, CAL, get_zone(None))
    rng = np.random.default_rng(1)
    quiet = 12_100 + rng.normal(0, 5, 500)  # 0.1 N of zero error, 5 mN of noise
    assert pipe.auto_zero(quiet, np.full(500, 0.1)) == pytest.approx(12_100, abs=1)
    assert pipe.calibration.offset_counts == pytest.approx(12_100, abs=1)
    zero = pipe.calibration
    # a touch (filtered force over 0.3 N) or a moving window keeps the zero
    assert pipe.auto_zero(np.full(500, 12_500.0), np.full(500, 0.5)) is None
    moving = np.r_[np.full(250, 12_000.0), np.full(250, 12_200.0)]
    assert pipe.auto_zero(moving, np.full(500, 0.1)) is None
    assert pipe.auto_zero(np.array([]), np.array([])) is None
    assert pipe.calibration is zero


def test_drift_tracking_replaces_the_value_and_never_mutates_the_given_one():
    given = Calibration(1000.0, 12_000.0)
    pipe = ForcePipeline(RATE_HZ, given, get_zone(None), track_drift=True)
    _feed(pipe, np.full(10_000, 12_100))  # 10 s, 0.1 N of drift, unloaded
    assert 12_010 < pipe.calibration.offset_counts < 12_100
    assert given.offset_counts == 12_000.0
    # a press is never zeroed away (only the batch where the filtered force is still rising
    # moves it, by a count or two: zeroing the press for 2 s would move it ~320 counts)
    pressed = pipe.calibration
    _feed(pipe, np.full(2_000, 17_000), t0_s=10.0)
    assert pipe.calibration.offset_counts == pytest.approx(pressed.offset_counts, abs=5)
