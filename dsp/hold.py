"""Timing of sustained holds: a hold runs while the filtered force stays inside a band.

A step gives a band [lo, hi] N, a minimum and a maximum hold time and the shortest allowed
release. The hold starts at the first in-band sample; leaving the band for less than
DIP_TOLERANCE_S does not end it; the hold ends at the first out-of-band sample of a longer
excursion (confirmed DIP_TOLERANCE_S later, or at once when the force has been released).
A release is timed from that exit (downward) to the force falling under
RELEASE_FLOOR_FRACTION of lo; quicker than the step allows is a fast_release.
"""

from __future__ import annotations

import numpy as np

from dsp.decisions import Decision
from dsp.events import EventKind

#: Excursions out of the band shorter than this (seconds) do not end a hold.
DIP_TOLERANCE_S = 0.3
#: A release is complete when the force is under this fraction of the band's low edge.
RELEASE_FLOOR_FRACTION = 0.2


class HoldTracker:
    """Tracks holds in ``band_n = (lo, hi)`` newtons on the filtered force.

    ``min_s``/``max_s``: the step's hold times (seconds; None: not reported);
    ``release_min_s``: the slowest-allowed release (None: not checked).
    ``update(t_s, filtered_n) -> list[Decision]`` per batch; ``elapsed_s`` and ``progress``
    say how far the current hold is.
    """

    def __init__(
        self,
        band_n: tuple[float, float],
        min_s: float | None = None,
        max_s: float | None = None,
        release_min_s: float | None = None,
        dip_tolerance_s: float = DIP_TOLERANCE_S,
    ) -> None:
        lo, hi = float(band_n[0]), float(band_n[1])
        if not 0 < lo < hi:
            raise ValueError(f"band must satisfy 0 < lo < hi, got {lo}:{hi} N")
        if min_s is not None and max_s is not None and max_s < min_s:
            raise ValueError(f"hold max {max_s} s is under hold min {min_s} s")
        self.lo_n, self.hi_n = lo, hi
        self.min_s, self.max_s, self.release_min_s = min_s, max_s, release_min_s
        self.dip_tolerance_s = dip_tolerance_s
        self.floor_n = RELEASE_FLOOR_FRACTION * lo
        self.in_hold = False
        self.start_s = 0.0
        self._last_in_s = 0.0
        self._out_since_s: float | None = None  # current excursion out of the band
        self._release_since_s: float | None = None  # downward exit being timed
        self._reached_min = False
        self._passed_max = False

    @property
    def elapsed_s(self) -> float:
        """Seconds held so far in the current hold (0 when none)."""
        return self._last_in_s - self.start_s if self.in_hold else 0.0

    @property
    def progress(self) -> float:
        """Fraction of the minimum hold done (0..1; 0 when no minimum)."""
        if not self.min_s:
            return 0.0
        return min(1.0, self.elapsed_s / self.min_s)

    def update(self, t_s: np.ndarray, filtered_n: np.ndarray) -> list[Decision]:
        out: list[Decision] = []
        n = t_s.size
        if n == 0:
            return out
        f = filtered_n
        inb = (f >= self.lo_n) & (f <= self.hi_n)
        if not self.in_hold and self._release_since_s is None and not inb.any():
            return out
        if self.in_hold and self._out_since_s is None and inb.all():
            self._in_run(out, t_s, f, 0, n)
            return out
        edges = np.flatnonzero(inb[1:] != inb[:-1]) + 1
        a = 0
        for b in (*edges.tolist(), n):
            if inb[a]:
                self._in_run(out, t_s, f, a, b)
            else:
                self._out_run(out, t_s, f, a, b)
            a = b
        return out

    def _in_run(self, out, t_s, f, a, b) -> None:
        self._release_since_s = None
        if self.in_hold and self._out_since_s is not None:
            self._out_since_s = None  # a tolerated dip: the hold goes on
        elif not self.in_hold:
            self.in_hold = True
            self.start_s = float(t_s[a])
            self._out_since_s = None
            self._reached_min = self._passed_max = False
            out.append(
                Decision(
                    EventKind.HOLD_STARTED,
                    None,
                    self.start_s,
                    0.0,
                    float(f[a]),
                    {"band_n": [self.lo_n, self.hi_n]},
                )
            )
        self._last_in_s = float(t_s[b - 1])
        for attr, limit_s, kind in (
            ("_reached_min", self.min_s, EventKind.HOLD_REACHED_MIN),
            ("_passed_max", self.max_s, EventKind.HOLD_PASSED_MAX),
        ):
            if limit_s is None or getattr(self, attr):
                continue
            if self._last_in_s - self.start_s >= limit_s:
                i = a + int(np.searchsorted(t_s[a:b], self.start_s + limit_s - 1e-9))
                i = min(i, b - 1)
                setattr(self, attr, True)
                out.append(
                    Decision(kind, None, float(t_s[i]), 0.0, float(f[i]), {"hold_s": limit_s})
                )

    def _end(self, out, t_confirm_s: float, force_n: float) -> None:
        end_s = self._out_since_s if self._out_since_s is not None else self._last_in_s
        self.in_hold = False
        self._out_since_s = None
        out.append(
            Decision(
                EventKind.HOLD_ENDED,
                None,
                t_confirm_s,
                t_confirm_s - end_s,
                force_n,
                {
                    "start_s": self.start_s,
                    "end_s": end_s,
                    "duration_s": end_s - self.start_s,
                    "reached_min": self._reached_min,
                },
            )
        )

    def _out_run(self, out, t_s, f, a, b) -> None:
        if self.in_hold and self._out_since_s is None:
            self._out_since_s = float(t_s[a])
            long_enough = self._last_in_s - self.start_s >= self.dip_tolerance_s
            if f[a] < self.lo_n and self._release_since_s is None and long_enough:
                self._release_since_s = float(t_s[a])
        ended_at = -1
        if self.in_hold:
            j = a + int(np.searchsorted(t_s[a:b], self._out_since_s + self.dip_tolerance_s - 1e-9))
            if j < b:
                ended_at = j
        if self._release_since_s is not None:
            below = np.flatnonzero(f[a:b] <= self.floor_n)
            if below.size:
                k = a + int(below[0])
                if self.in_hold:
                    # released to the floor: the hold is over at once (or already confirmed)
                    at = ended_at if 0 <= ended_at < k else k
                    self._end(out, float(t_s[at]), float(f[at]))
                    ended_at = -1
                release_s = float(t_s[k]) - self._release_since_s
                if self.release_min_s is not None and release_s < self.release_min_s:
                    out.append(
                        Decision(
                            EventKind.FAST_RELEASE,
                            None,
                            float(t_s[k]),
                            0.0,
                            float(f[k]),
                            {
                                "release_s": release_s,
                                "release_min_s": self.release_min_s,
                                "from_s": self._release_since_s,
                            },
                        )
                    )
                self._release_since_s = None
        if ended_at >= 0 and self.in_hold:
            self._end(out, float(t_s[ended_at]), float(f[ended_at]))
