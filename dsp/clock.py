"""Device time: the firmware's u32 microsecond counter, unwrapped into seconds.

The counter wraps every 2^32 µs (71.6 min). Batches arrive in order, so a timestamp smaller
than the previous one by more than half the range means one wrap happened in between.
"""

from __future__ import annotations

import numpy as np

WRAP_US = 1 << 32


class DeviceClock:
    """Unwraps u32 µs timestamps into a monotonic device time in seconds.

    ``t0`` is the first timestamp seen: device time starts at 0 s there, so recordings and
    plots begin at zero whatever the device's power-on time.
    """

    def __init__(self) -> None:
        self._wraps = 0
        self._last_us: int | None = None
        self._t0_us: int | None = None

    def unwrap_us(self, t_us: int) -> int:
        """The unwrapped timestamp (µs since the first one) of ``t_us``."""
        last_us, t0_us = self._last_us, self._t0_us
        if last_us is None or t0_us is None:  # the first timestamp (both are set together)
            t0_us = self._t0_us = t_us
        elif t_us < last_us and last_us - t_us > WRAP_US // 2:
            self._wraps += 1
        self._last_us = t_us
        return t_us + self._wraps * WRAP_US - t0_us

    def batch_times_s(self, t_us: int, rate_hz: float, n: int) -> np.ndarray:
        """Device times (s) of the ``n`` samples of a batch whose first sample is at ``t_us``."""
        start_s = self.unwrap_us(t_us) * 1e-6
        return start_s + np.arange(n) / float(rate_hz)
