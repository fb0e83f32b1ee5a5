"""Raw sensor counts -> newtons: scale and offset, tare, slow drift re-zeroing, two-point.

``force_n = (raw_counts - offset_counts) / scale_counts_per_n``. The device (or a stored
calibration from pairing) supplies the scale and offset; the host refines the offset by a tare
from a quiet, unloaded window and by slow re-zeroing while the sensor is unloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: A window counts as quiet for a tare when its standard deviation is under this (newtons).
TARE_QUIET_STD_N = 0.05
#: Drift re-zeroing acts only while |force| stays under this (newtons): unloaded.
DRIFT_UNLOADED_N = 0.3
#: Time constant of drift re-zeroing (seconds): slow, so that a light touch is never zeroed.
DRIFT_TIME_CONSTANT_S = 30.0


class CalibrationError(ValueError):
    """A calibration that cannot be computed (noisy tare window, equal points, zero scale)."""


@dataclass
class Calibration:
    """Linear calibration of a force sensor.

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

    def to_newtons(self, raw_counts: np.ndarray) -> np.ndarray:
        """Force in newtons for an array of raw counts (vectorised, a new float64 array)."""
        raw = np.asarray(raw_counts, dtype=np.float64)
        if self.is_identity:
            return raw
        return (raw - self.offset_counts) * (1.0 / self.scale_counts_per_n)

    def tare(self, raw_counts: np.ndarray, max_std_n: float = TARE_QUIET_STD_N) -> float:
        """Set the offset to the mean of a quiet, unloaded window; returns the new offset.

        Raises CalibrationError when the window is empty or not quiet (std over
        ``max_std_n`` newtons): zeroing on a moving signal would shift every later reading.
        """
        raw = np.asarray(raw_counts, dtype=np.float64)
        if raw.size < 2:
            raise CalibrationError("tare needs at least 2 samples")
        std_n = float(raw.std()) / abs(self.scale_counts_per_n)
        if std_n > max_std_n:
            raise CalibrationError(
                f"tare window is not quiet: std {std_n:.3f} N > {max_std_n:.3f} N"
            )
        self.offset_counts = float(raw.mean())
        return self.offset_counts

    def track_drift(self, raw_counts: np.ndarray, force_n: np.ndarray, dt_s: float) -> float:
        """Slowly re-zero the offset while the sensor is unloaded; returns the offset.

        Acts only when every sample of the batch is within ``DRIFT_UNLOADED_N`` of zero, and
        moves the offset toward the batch mean with a ``DRIFT_TIME_CONSTANT_S`` time
        constant (``dt_s`` is the batch duration in seconds), so at most a few percent of a
        0.3 N error is corrected per second: a real press is never zeroed away.
        """
        f = np.asarray(force_n)
        if f.size == 0 or float(np.abs(f).max()) >= DRIFT_UNLOADED_N:
            return self.offset_counts
        alpha = min(1.0, max(0.0, dt_s) / DRIFT_TIME_CONSTANT_S)
        mean_counts = float(np.asarray(raw_counts, dtype=np.float64).mean())
        self.offset_counts += alpha * (mean_counts - self.offset_counts)
        return self.offset_counts

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
