"""Timing of sustained holds: a hold runs while the filtered force stays inside a band.

A step gives a band [lo, hi] N, a minimum and a maximum hold time and the shortest allowed
release. The hold starts at the first in-band sample; leaving the band for less than
DIP_TOLERANCE_S does not end it; the hold ends at the first out-of-band sample of a longer
excursion (confirmed DIP_TOLERANCE_S later, or at once when the force has dropped under
END_FLOOR_FRACTION of lo).

Release timing. A person told to "let go over at least 2 s" means the whole way from the
force they held down to nearly nothing, so a release is timed from the hold level, not from
the band's edge (a wide band would otherwise hide most of the release):

- hold level (N): the mean filtered force of the hold's in-band samples over the last
  LEVEL_WINDOW_S seconds, sample by sample (it follows slow drifts and a step down to a new
  steady force inside the band);
- the release leaves the plateau at the last sample (s, device time) at or above
  RELEASE_START_FRACTION of the level at that sample and not above the band, once the hold
  has lasted DIP_TOLERANCE_S;
- it ends at the first later sample at or under RELEASE_END_FRACTION of that level;
- ``release_s`` is that interval divided by (RELEASE_START_FRACTION - RELEASE_END_FRACTION):
  the time a steady release at the measured pace takes from the hold level to zero. The two
  thresholds keep noise on the plateau and near zero out of the timing, and the scaling
  keeps the figure comparable with the step's ``release_min_s``: a linear 2.5 s release
  measures 2.5 s whatever its level. A release under ``release_min_s`` is a fast_release
  (at the end sample; detail ``release_s``, ``release_min_s``, ``from_s`` (plateau left,
  device s), ``measured_s`` (from_s to the end sample) and ``hold_level_n``).

A descent that passes above the band first (an over-press, then letting go) is not the
step's release and is not timed; nor is one from a hold shorter than DIP_TOLERANCE_S (force
passing through the band). A new hold starting forgets a release still being timed.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from dsp.events import (
    Event,
    FastRelease,
    HoldEnded,
    HoldPassedMax,
    HoldReachedMin,
    HoldStarted,
)

#: Excursions out of the band shorter than this (seconds) do not end a hold.
DIP_TOLERANCE_S = 0.3
#: A hold ends at once (without waiting DIP_TOLERANCE_S) when the force falls under this
#: fraction of the band's low edge: it has clearly been let go.
END_FLOOR_FRACTION = 0.2
#: The hold level is the mean in-band force over this many seconds (the hold's last part).
LEVEL_WINDOW_S = 1.0
#: A release starts when the force leaves the plateau: under this fraction of the level.
RELEASE_START_FRACTION = 0.9
#: A release is complete when the force is at or under this fraction of the hold level.
RELEASE_END_FRACTION = 0.15
_RELEASE_SPAN = RELEASE_START_FRACTION - RELEASE_END_FRACTION


class HoldTracker:
    """Tracks holds in ``band_n = (lo, hi)`` newtons on the filtered force.

    ``min_s``/``max_s``: the step's hold times (seconds; None: not reported);
    ``release_min_s``: the shortest allowed release, from the hold level to zero (seconds;
    None: not checked). ``update(t_s, filtered_n) -> list[Event]`` per batch;
    ``elapsed_s`` and ``progress`` say how far the current hold is.
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
        self.end_floor_n = END_FLOOR_FRACTION * lo
        self.in_hold = False
        self.start_s = 0.0
        self._last_in_s = 0.0
        self._out_since_s: float | None = None  # current excursion out of the band
        self._down_exit = False  # that excursion left the band downward
        self._reached_min = False
        self._passed_max = False
        # the hold's in-band samples, at least the last LEVEL_WINDOW_S: (times s, forces N)
        # per batch; and (last time s, max N) of those batches, decreasing (a sliding max)
        self._chunks: deque[tuple[np.ndarray, np.ndarray]] = deque()
        self._maxes: deque[tuple[float, float]] = deque()
        self._rel_from_s: float | None = None  # last plateau sample of a release to time
        self._rel_level_n: float | None = None  # the hold level there (None: not computed)
        self._prev: tuple[float, float] | None = None  # the last sample seen: (t s, force N)

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

    def update(self, t_s: np.ndarray, filtered_n: np.ndarray) -> list[Event]:
        if t_s.size == 0:
            return []
        out = self._update(t_s, filtered_n)
        self._prev = (float(t_s[-1]), float(filtered_n[-1]))
        return out

    def _update(self, t_s: np.ndarray, filtered_n: np.ndarray) -> list[Event]:
        out: list[Event] = []
        n = t_s.size
        f = filtered_n
        inb = (f >= self.lo_n) & (f <= self.hi_n)
        if not self.in_hold and self._rel_from_s is None and not inb.any():
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

    def _crossing_s(self, t_s, f, a: int) -> float:
        """When the force crossed the band's edge between the sample before ``a`` (in this
        batch or the last one) and sample ``a``, by linear interpolation: a hold's start and
        end are then as exact at 10 Hz as at 1 kHz, not rounded to a sample. ``t_s[a]`` when
        there is no sample before."""
        ta, fa = float(t_s[a]), float(f[a])
        prev = (float(t_s[a - 1]), float(f[a - 1])) if a > 0 else self._prev
        if prev is None:
            return ta
        tp, fp = prev
        for edge in (self.lo_n, self.hi_n):
            if (fp - edge) * (fa - edge) < 0 or (fa == edge and fp != edge):
                return tp + (ta - tp) * (edge - fp) / (fa - fp)
        return ta

    def _in_run(self, out, t_s, f, a, b) -> None:
        if self.in_hold and self._out_since_s is not None:
            self._out_since_s = None  # a tolerated dip: the hold goes on
        elif not self.in_hold:
            self.in_hold = True
            self.start_s = self._crossing_s(t_s, f, a)
            self._out_since_s = None
            self._reached_min = self._passed_max = False
            self._chunks.clear()
            self._maxes.clear()
            self._rel_from_s = None
            out.append(
                HoldStarted(t_s=self.start_s, force_n=float(f[a]), band_n=(self.lo_n, self.hi_n))
            )
        self._last_in_s = float(t_s[b - 1])
        self._track_level(t_s[a:b], f[a:b])
        kinds: tuple[tuple[str, float | None, type[HoldReachedMin | HoldPassedMax]], ...] = (
            ("_reached_min", self.min_s, HoldReachedMin),
            ("_passed_max", self.max_s, HoldPassedMax),
        )
        for attr, limit_s, kind in kinds:
            if limit_s is None or getattr(self, attr):
                continue
            if self._last_in_s - self.start_s >= limit_s:
                i = a + int(np.searchsorted(t_s[a:b], self.start_s + limit_s - 1e-9))
                i = min(i, b - 1)
                setattr(self, attr, True)
                out.append(kind(t_s=float(t_s[i]), force_n=float(f[i]), hold_s=limit_s))

    def _track_level(self, tt: np.ndarray, ff: np.ndarray) -> None:
        """In-band samples of the hold: find the last one on the plateau (at or above
        RELEASE_START_FRACTION of the level there) and keep them as level history.

        Cheap when the whole batch is surely on the plateau (its smallest force is at least
        RELEASE_START_FRACTION of the largest force in the window, which bounds the level):
        the level there is then only computed when a release needs it. Otherwise each
        sample's level is the mean over the window ending at it, as in one offline pass."""
        hi_f = float(ff.max())
        bound_n = max(hi_f, self._maxes[0][1]) if self._maxes else hi_f
        start_ok_s = self.start_s + self.dip_tolerance_s
        if float(ff.min()) >= RELEASE_START_FRACTION * bound_n:
            if float(tt[-1]) >= start_ok_s:
                self._rel_from_s, self._rel_level_n = float(tt[-1]), None
        else:
            self._resolve_level()
            m = sum(c[0].size for c in self._chunks)
            wt = np.concatenate([c[0] for c in self._chunks] + [tt])
            wf = np.concatenate([c[1] for c in self._chunks] + [ff])
            cs = np.concatenate(([0.0], np.cumsum(wf)))
            idx = np.arange(m, m + tt.size)
            first = np.searchsorted(wt, tt - LEVEL_WINDOW_S, side="right")
            level = (cs[idx + 1] - cs[first]) / (idx + 1 - first)
            plateau = (ff >= RELEASE_START_FRACTION * level) & (tt >= start_ok_s)
            if plateau.any():
                k = int(np.flatnonzero(plateau)[-1])
                self._rel_from_s, self._rel_level_n = float(tt[k]), float(level[k])
        # keep at least LEVEL_WINDOW_S of history, and the running maximum of its batches
        t_last = float(tt[-1])
        # only the last LEVEL_WINDOW_S can be in a later window: keep that much (an offline
        # batch may be minutes long)
        keep = int(np.searchsorted(tt, t_last - LEVEL_WINDOW_S, side="right"))
        self._chunks.append((tt[keep:].copy(), ff[keep:].copy()))  # the caller may reuse them
        while self._maxes and self._maxes[-1][1] <= hi_f:
            self._maxes.pop()
        self._maxes.append((t_last, hi_f))
        old_s = t_last - LEVEL_WINDOW_S
        while len(self._chunks) > 1 and float(self._chunks[0][0][-1]) <= old_s:
            self._chunks.popleft()
        while self._maxes and self._maxes[0][0] <= old_s and len(self._maxes) > 1:
            self._maxes.popleft()

    def _resolve_level(self) -> None:
        """The level at the last plateau sample, when it was left to be computed (its
        window is still in the history: nothing newer than it has been added since)."""
        if self._rel_from_s is None or self._rel_level_n is not None:
            return
        wt = np.concatenate([c[0] for c in self._chunks])
        wf = np.concatenate([c[1] for c in self._chunks])
        inside = (wt > self._rel_from_s - LEVEL_WINDOW_S) & (wt <= self._rel_from_s)
        self._rel_level_n = float(wf[inside].mean())

    def _end(self, out, t_confirm_s: float, force_n: float) -> None:
        end_s = self._out_since_s if self._out_since_s is not None else self._last_in_s
        self.in_hold = False
        self._out_since_s = None
        out.append(
            HoldEnded(
                t_s=t_confirm_s,
                detection_delay_s=t_confirm_s - end_s,
                force_n=force_n,
                start_s=self.start_s,
                end_s=end_s,
                duration_s=end_s - self.start_s,
                reached_min=self._reached_min,
            )
        )

    def _out_run(self, out, t_s, f, a, b) -> None:
        if self.in_hold and self._out_since_s is None:
            self._out_since_s = self._crossing_s(t_s, f, a)
            long_enough = self._last_in_s - self.start_s >= self.dip_tolerance_s
            self._down_exit = bool(f[a] < self.lo_n) and long_enough
        released = self._time_release(t_s, f, a, b) if self._rel_from_s is not None else None
        if self.in_hold:
            out_since_s = self._out_since_s
            if out_since_s is None:  # set above whenever a hold goes out of the band
                raise RuntimeError("HoldTracker: a hold out of the band has no exit time")
            j = a + int(np.searchsorted(t_s[a:b], out_since_s + self.dip_tolerance_s - 1e-9))
            ended_at = j if j < b else b
            if self._down_exit:
                # let go (under the end floor, or the release complete): over at once
                under = np.flatnonzero(f[a:ended_at] <= self.end_floor_n)
                if under.size:
                    ended_at = a + int(under[0])
                if released is not None:
                    ended_at = min(ended_at, released[0])
            if ended_at < b:
                self._end(out, float(t_s[ended_at]), float(f[ended_at]))
        if released is not None:
            k, release_s, measured_s, from_s = released
            if self.release_min_s is not None and release_s < self.release_min_s:
                out.append(
                    FastRelease(
                        t_s=float(t_s[k]),
                        force_n=float(f[k]),
                        release_s=release_s,
                        release_min_s=self.release_min_s,
                        from_s=from_s,
                        measured_s=measured_s,
                        hold_level_n=self._rel_level_n,
                    )
                )

    def _time_release(self, t_s, f, a, b) -> tuple[int, float, float, float] | None:
        """Out of the band with a release pending: the force may still be on the plateau
        (under the band's low edge but near the level), pass above the band (not a
        release: forgotten), or reach the end floor: then returns (sample index,
        ``release_s``, measured seconds, start time s) and the release is done."""
        self._resolve_level()
        level_n = self._rel_level_n
        if level_n is None:  # _resolve_level sets it whenever a release is pending
            raise RuntimeError("HoldTracker: a release is timed without a pending release")
        seg = f[a:b]
        above = np.flatnonzero(seg > self.hi_n)
        floor = np.flatnonzero(seg <= RELEASE_END_FRACTION * level_n)
        stop = min(above[0] if above.size else b - a, floor[0] if floor.size else b - a)
        plateau = np.flatnonzero(seg[:stop] >= RELEASE_START_FRACTION * level_n)
        if plateau.size:
            self._rel_from_s = float(t_s[a + int(plateau[-1])])
        if above.size and (not floor.size or above[0] < floor[0]):
            self._rel_from_s = None
            return None
        if not floor.size or self._rel_from_s is None:
            return None
        k = a + int(floor[0])
        from_s = self._rel_from_s
        self._rel_from_s = None
        measured_s = float(t_s[k]) - from_s
        return k, measured_s / _RELEASE_SPAN, measured_s, from_s
