"""The host clock model: device time (seconds since the session's first sample) mapped onto
the host's monotonic clock, for consumers that time-stamp on the host (LSL outlets).

A batch leaves the device right after its last sample and reaches the host some latency
later; the latency varies, never below zero. So ``host_s - device_s / speed`` of a batch's
last sample, minimised over the recent batches (``WINDOW_S`` of device time), is the
host time at device time zero plus the smallest latency seen: the lower envelope, which
follows a slow drift between the two clocks and ignores late batches. ``speed`` is the
simulation's ``--speed K`` (device time runs K times faster than the host's). Mapped times
of a stream never go backwards.
"""

from __future__ import annotations

from collections import deque

import numpy as np

#: How far back (device seconds) the lower envelope looks.
WINDOW_S = 10.0


class HostClockModel:
    def __init__(self, speed: float = 1.0, window_s: float = WINDOW_S) -> None:
        if not speed > 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self.window_s = window_s
        self._points: deque[tuple[float, float]] = deque()  # (device_s, host - device/speed)
        self._last_host_s = -np.inf

    def observe(self, device_s: float, host_s: float) -> None:
        """A batch whose last sample has device time ``device_s`` arrived at ``host_s``."""
        offset = host_s - device_s / self.speed
        while self._points and self._points[-1][1] >= offset:
            self._points.pop()  # monotonic deque: the minimum is at the front
        self._points.append((device_s, offset))
        while self._points[0][0] < device_s - self.window_s:
            self._points.popleft()

    @property
    def offset_s(self) -> float:
        """Host seconds at device time 0 (plus the smallest recent latency)."""
        if not self._points:
            raise ValueError("no batch observed yet")
        return self._points[0][1]

    def to_host(self, device_s: np.ndarray | float, *, monotonic: bool = True) -> np.ndarray:
        """Host times of ``device_s``; with ``monotonic`` (a stream's samples) never before
        the last time handed out so."""
        host = self.offset_s + np.asarray(device_s, dtype=np.float64) / self.speed
        if not monotonic:
            return host
        host = np.maximum.accumulate(np.maximum(host, self._last_host_s))
        if host.size:
            self._last_host_s = float(host.max())
        return host
