"""Numpy ring buffers for the live plot, and peak decimation to the screen.

Samples arrive in batches (~10 at 1 kHz) and go straight into ``ForceRing``; the redraw
timer reads the last few seconds as contiguous views (no copy, no Python loop per sample) and
``decimate_peak`` reduces them to one min/max pair per pixel column before they reach
pyqtgraph. Thin pens on about as many points as pixels are what keeps a frame cheap
(DESIGN.md, pitfalls: 30,000 points cost ~13 ms a frame, 2,400 points ~2.6 ms).
"""

from __future__ import annotations

import numpy as np


class ForceRing:
    """The latest ``capacity`` samples of device time (s), raw force (N) and filtered force
    (N).

    Every sample is written twice, at ``i`` and ``i + capacity``, so that any run of up to
    ``capacity`` most recent samples is one contiguous slice: reading costs no copy and no
    concatenation however the ring has wrapped.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = int(capacity)
        self._t_s = np.zeros(2 * self.capacity)
        self._force_n = np.zeros(2 * self.capacity)
        self._filtered_n = np.zeros(2 * self.capacity)
        #: Samples ever appended (the absolute index of the next one).
        self.total = 0

    def __len__(self) -> int:
        return min(self.total, self.capacity)

    def clear(self) -> None:
        self.total = 0

    def append(self, t_s: np.ndarray, force_n: np.ndarray, filtered_n: np.ndarray) -> None:
        """Add one batch (three 1-D arrays of one length)."""
        n = len(t_s)
        if n == 0:
            return
        if n > self.capacity:  # only the newest fit
            t_s, force_n, filtered_n = (
                t_s[-self.capacity :],
                force_n[-self.capacity :],
                (filtered_n[-self.capacity :]),
            )
            self.total += n - self.capacity
            n = self.capacity
        cap = self.capacity
        start = self.total % cap
        first = min(n, cap - start)
        pairs = ((self._t_s, t_s), (self._force_n, force_n), (self._filtered_n, filtered_n))
        for buf, values in pairs:
            buf[start : start + first] = values[:first]
            buf[start + cap : start + cap + first] = values[:first]
            if first < n:
                rest = n - first
                buf[:rest] = values[first:]
                buf[cap : cap + rest] = values[first:]
        self.total += n

    def latest(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """The newest ``count`` samples (fewer if the ring holds fewer) as read-only views:
        ``(t_s, force_n, filtered_n, first_index)``; ``first_index`` is the absolute index
        of the first sample returned (for decimation bins that stay put as data scrolls)."""
        n = min(int(count), len(self))
        end = self.total % self.capacity + self.capacity
        views = []
        for buf in (self._t_s, self._force_n, self._filtered_n):
            v = buf[end - n : end]
            v.flags.writeable = False
            views.append(v)
        return views[0], views[1], views[2], self.total - n

    def since(self, t_from_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """The samples with device time at or after ``t_from_s`` (views, as ``latest``)."""
        t, f, ff, first = self.latest(self.capacity)
        i = int(np.searchsorted(t, t_from_s, side="left"))
        return t[i:], f[i:], ff[i:], first + i


def decimate_peak(
    x: np.ndarray, ys: tuple[np.ndarray, ...], first_index: int, max_bins: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Reduce each of ``ys`` (sharing the abscissa ``x``) to at most ``max_bins`` min/max
    pairs, so that a plot of the result draws the same envelope as the full data.

    Bins are aligned to absolute sample indices (``first_index`` is that of ``x[0]``), so a
    bin holds the same samples frame after frame and the picture does not shimmer as the
    window scrolls. Returns the new abscissa (each bin's first and last time) and the
    decimated ordinates (each bin's min then max: at one bin per pixel the order inside a
    bin does not show). With fewer samples than ``2 * max_bins`` the data
    come back as they are.
    """
    n = len(x)
    if max_bins < 1:
        raise ValueError("max_bins must be at least 1")
    if n <= 2 * max_bins:
        return x, list(ys)
    k = -(-n // max_bins)  # samples per bin, rounded up
    skip = (-first_index) % k  # leading samples before the first aligned bin
    body = (n - skip) // k * k
    lo, hi = skip, skip + body
    bins = body // k
    xb = x[lo:hi].reshape(bins, k)
    x_out = np.empty(2 * bins)
    x_out[0::2] = xb[:, 0]
    x_out[1::2] = xb[:, -1]
    out = []
    for y in ys:
        yb = y[lo:hi].reshape(bins, k)
        y_out = np.empty(2 * bins)
        y_out[0::2] = yb.min(axis=1)
        y_out[1::2] = yb.max(axis=1)
        out.append(y_out)
    # the partial bins at either end are shown as they are (a few samples)
    if skip or hi < n:
        x_out = np.concatenate((x[:lo], x_out, x[hi:]))
        out = [np.concatenate((y[:lo], yo, y[hi:])) for y, yo in zip(ys, out, strict=True)]
    return x_out, out
