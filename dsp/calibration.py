"""Raw sensor counts -> newtons: an immutable calibration value, and the maths around it.

``force_n = (raw_counts - offset_counts) / scale_counts_per_n``. The device (or a stored
calibration from pairing) supplies the scale and offset. A ``Calibration`` never changes:
a new zero is a new value (``with_offset``, ``tared``, ``drift_tracked``), which the force
pipeline (``dsp.pipeline.ForcePipeline``), the one owner of the calibration in use, puts in
place of the old one: after the device's own tare, after the host's auto-zero at the end of a
rest, and by slow re-zeroing while the sensor is unloaded.

Pairing's maths are pure functions here too: ``check_tare_window`` (the device may zero on
this window), ``plateau_mean`` (a steady press of a known force) and
``two_point_calibration`` (the scale from zero and that press).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

#: A window counts as quiet for a tare when its standard deviation is under this (newtons).
TARE_QUIET_STD_N = 0.05
#: Drift re-zeroing acts only while |force| stays under this (newtons): unloaded.
DRIFT_UNLOADED_N = 0.3
#: Time constant of drift re-zeroing (seconds): slow, so that a light touch is never zeroed.
DRIFT_TIME_CONSTANT_S = 30.0
#: The host's auto-zero (``ForcePipeline.auto_zero``) acts only when every filtered sample
#: of its window is within this of zero (newtons): the bound drift tracking uses.
AUTO_ZERO_MAX_N = DRIFT_UNLOADED_N

# ---- pairing (docs/pairing.md) ----
#: The pairing tare window's spread may be at most this (newtons): sensor noise passes, a
#: hand on the ball does not.
PAIR_TARE_MAX_STD_N = 0.3
#: A pairing zero may sit at most this far (newtons) from the device's factory zero
#: (DeviceInfo) and from the zero stored at the last pairing: further means something is on
#: the ball. Pairing waits for the ball to be let go, and never stores a zero beyond it.
PAIR_TARE_MAX_SHIFT_N = 0.5
#: A two-point press is a plateau this long (device seconds) ...
PLATEAU_S = 1.0
#: ... with a standard deviation under this fraction of the known force (or PLATEAU_MIN_STD_N)
PLATEAU_STD_FRACTION = 0.03
PLATEAU_MIN_STD_N = 0.15
#: ... and a mean of at least this fraction of the known force (by the device's own scale).
PLATEAU_MIN_FRACTION = 0.3
#: A two-point scale further than this factor from the device's own is refused.
MAX_SCALE_RATIO = 3.0


class CalibrationError(ValueError):
    """A calibration that cannot be computed (noisy tare window, equal points, zero scale)."""


class ImplausibleScaleError(CalibrationError):
    """A two-point scale too far from the device's own (was the known force really it?)."""

    def __init__(self, scale_counts_per_n: float, ratio: float) -> None:
        super().__init__(
            f"the two-point scale {scale_counts_per_n:.1f} counts/N is {ratio:.2f} times "
            "the device's own"
        )
        self.scale_counts_per_n = scale_counts_per_n
        self.ratio = ratio


@dataclass(frozen=True)
class Calibration:
    """Linear calibration of a force sensor: an immutable value (a new zero is a new value).

    ``scale_counts_per_n``: counts per newton (non-zero; negative for a sensor wired
    inverted). ``offset_counts``: counts at zero force.
    """

    scale_counts_per_n: float
    offset_counts: float = 0.0

    def __post_init__(self) -> None:
        if not np.isfinite(self.scale_counts_per_n) or self.scale_counts_per_n == 0:
            raise CalibrationError(f"scale must be finite and non-zero: {self.scale_counts_per_n}")
        if not np.isfinite(self.offset_counts):
            raise CalibrationError(f"offset must be finite: {self.offset_counts}")

    @classmethod
    def identity(cls) -> Calibration:
        """Counts are already newtons (used by ``analyze`` on a force trace)."""
        return cls(1.0, 0.0)

    @property
    def is_identity(self) -> bool:
        return self.scale_counts_per_n == 1.0 and self.offset_counts == 0.0

    @property
    def resolution_n(self) -> float:
        """Newtons per count: the smallest step the sensor can show (0 for the identity
        calibration, whose "counts" are newtons already, not whole counts)."""
        return 0.0 if self.is_identity else 1.0 / abs(self.scale_counts_per_n)

    def to_newtons(self, raw_counts: np.ndarray) -> np.ndarray:
        """Force in newtons for an array of raw counts (vectorised, a new float64 array)."""
        raw = np.asarray(raw_counts, dtype=np.float64)
        if self.is_identity:
            return raw
        return (raw - self.offset_counts) * (1.0 / self.scale_counts_per_n)

    def with_offset(self, offset_counts: float) -> Calibration:
        """The same scale with a new zero (e.g. the offset the device's Tare reported)."""
        return replace(self, offset_counts=float(offset_counts))

    def tared(self, raw_counts: np.ndarray, max_std_n: float = TARE_QUIET_STD_N) -> Calibration:
        """Zeroed on the mean of a quiet, unloaded window.

        Raises CalibrationError when the window is empty or not quiet (std over
        ``max_std_n`` newtons): zeroing on a moving signal would shift every later reading.
        """
        return self.with_offset(quiet_mean_counts(raw_counts, self.scale_counts_per_n, max_std_n))

    def drift_tracked(
        self, raw_counts: np.ndarray, force_n: np.ndarray, dt_s: float
    ) -> Calibration:
        """Slowly re-zeroed while the sensor is unloaded (``self`` when nothing changes).

        Acts only when every sample of the batch is within ``DRIFT_UNLOADED_N`` of zero, and
        moves the offset toward the batch mean with a ``DRIFT_TIME_CONSTANT_S`` time
        constant (``dt_s`` is the batch duration in seconds), so at most a few percent of a
        0.3 N error is corrected per second: a real press is never zeroed away.
        """
        f = np.asarray(force_n)
        if f.size == 0 or float(np.abs(f).max()) >= DRIFT_UNLOADED_N:
            return self
        alpha = min(1.0, max(0.0, dt_s) / DRIFT_TIME_CONSTANT_S)
        mean_counts = float(np.asarray(raw_counts, dtype=np.float64).mean())
        return self.with_offset(self.offset_counts + alpha * (mean_counts - self.offset_counts))

    @classmethod
    def two_point(
        cls, zero_counts: float, loaded_counts: float, known_force_n: float
    ) -> Calibration:
        """Calibration from the mean counts unloaded and under a known force (newtons)."""
        if not known_force_n > 0:
            raise CalibrationError(f"known force must be positive: {known_force_n} N")
        scale = (loaded_counts - zero_counts) / known_force_n
        if scale == 0 or not np.isfinite(scale):
            raise CalibrationError("the two points have the same counts: no scale")
        return cls(float(scale), float(zero_counts))


def quiet_mean_counts(
    raw_counts: np.ndarray, scale_counts_per_n: float, max_std_n: float = TARE_QUIET_STD_N
) -> float:
    """The mean counts of a quiet window (a zero may be taken on it). Raises
    CalibrationError for fewer than 2 samples or a spread over ``max_std_n`` newtons."""
    raw = np.asarray(raw_counts, dtype=np.float64)
    if raw.size < 2:
        raise CalibrationError("tare needs at least 2 samples")
    std_n = float(raw.std()) / abs(scale_counts_per_n)
    if std_n > max_std_n:
        raise CalibrationError(f"tare window is not quiet: std {std_n:.3f} N > {max_std_n:.3f} N")
    return float(raw.mean())


def check_tare_window(
    raw_counts: np.ndarray, calibration: Calibration, max_std_n: float = PAIR_TARE_MAX_STD_N
) -> float:
    """The load on a window the device is about to zero on, in newtons by ``calibration``
    (a reference zero: the caller refuses a tare under load, ``PAIR_TARE_MAX_SHIFT_N``).
    Raises CalibrationError when the window is not quiet (the ball moved)."""
    mean = quiet_mean_counts(raw_counts, calibration.scale_counts_per_n, max_std_n)
    return float(calibration.to_newtons(np.array([mean]))[0])


def zero_shift_n(zero_counts: float, references: Sequence[Calibration]) -> float:
    """How far the zero ``zero_counts`` sits from the furthest of ``references``' zeros, in
    newtons (each by its own scale); 0.0 without references. A pairing refuses a zero
    whose shift is over ``PAIR_TARE_MAX_SHIFT_N``."""
    return max(
        (abs(zero_counts - r.offset_counts) / abs(r.scale_counts_per_n) for r in references),
        default=0.0,
    )


def plateau_mean(
    t_s: np.ndarray,
    raw_counts: np.ndarray,
    calibration: Calibration,
    known_force_n: float,
    *,
    plateau_s: float = PLATEAU_S,
    std_fraction: float = PLATEAU_STD_FRACTION,
    min_std_n: float = PLATEAU_MIN_STD_N,
    min_fraction: float = PLATEAU_MIN_FRACTION,
) -> float | None:
    """Mean raw counts of the last ``plateau_s`` of a stream when it is a steady press near
    ``known_force_n``, else None.

    ``t_s``, ``raw_counts``: the samples so far (device seconds, counts), at least
    ``plateau_s`` of them for a plateau to be judged. Steady: a standard deviation under
    ``std_fraction`` of the known force (at least ``min_std_n``); near: a mean of at least
    ``min_fraction`` of it, both in newtons by ``calibration`` (the device's scale and the
    zero just tared)."""
    t = np.asarray(t_s, dtype=np.float64)
    raw = np.asarray(raw_counts, dtype=np.float64)
    if t.size == 0 or t[-1] - t[0] < plateau_s:
        return None
    window = raw[t >= t[-1] - plateau_s]
    force = calibration.to_newtons(window)
    std_max_n = max(min_std_n, std_fraction * known_force_n)
    if force.mean() >= min_fraction * known_force_n and force.std() <= std_max_n:
        return float(window.mean())
    return None


def two_point_calibration(
    zero_counts: float,
    loaded_counts: float,
    known_force_n: float,
    *,
    device_scale_counts_per_n: float | None = None,
    max_scale_ratio: float = MAX_SCALE_RATIO,
) -> Calibration:
    """The calibration from the zero and the mean counts under ``known_force_n``: scale =
    (loaded - zero) / force. With the device's own scale, a result more than
    ``max_scale_ratio`` times off raises ImplausibleScaleError; CalibrationError for a force
    that is not positive or two equal points."""
    cal = Calibration.two_point(zero_counts, loaded_counts, known_force_n)
    if device_scale_counts_per_n is not None:
        ratio = cal.scale_counts_per_n / device_scale_counts_per_n
        if not 1 / max_scale_ratio <= ratio <= max_scale_ratio:
            raise ImplausibleScaleError(cal.scale_counts_per_n, ratio)
    return cal
