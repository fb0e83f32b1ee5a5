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
- it ends at the first later sample out of the band at or under RELEASE_END_FRACTION of that
  level (inside a band wider than 1/RELEASE_END_FRACTION x lo, such a sample does not end it);
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

How it is computed (the rules above, sample by sample, whatever the batching). The hold's
in-band samples go into one growing buffer (at least the last LEVEL_WINDOW_S of them); a
level is a sum over the buffer. Where the release would start is worked out only when it
matters: when an out-of-band sample is low enough to complete a release (at or under
RELEASE_END_FRACTION of the band's top, the highest level there can be), and before the
buffer drops samples. Until then in-band runs only mark the buffer, and out-of-band runs
that could move the start (on the plateau: not under RELEASE_START_FRACTION of the band's
bottom, the lowest level) are kept; one that passes above the band forgets the release. The
search runs backward from the newest sample, in blocks that grow, so offline (many runs in
and out of the band in one batch) and live (a steady hold, a few samples a batch) cost
little per run.
"""

from __future__ import annotations

import math

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
#: The level history's first capacity (samples; it doubles as needed).
_HIST_START = 1024
#: The first block searched back for the plateau's last sample (samples; then 4 times
#: larger each time).
_FIRST_BLOCK = 32
#: At most this many out-of-band samples wait for the release to be worked out.
_LOG_MAX = 1 << 16
#: Relative margin on the level's bounds (lo <= level <= hi: a mean of in-band samples,
#: in floating point) where they decide that a release needs no working out yet.
_BOUND_MARGIN = 1e-9
#: Runs up to this many samples are scanned in Python (cheaper than numpy calls).
_SHORT = 32


def _fmin_fmax(seg: np.ndarray) -> tuple[float, float]:
    """The smallest and the largest value of ``seg``, NaN left out (NaN when all are)."""
    if seg.size <= _SHORT:
        v = [x for x in seg.tolist() if x == x]
        return (min(v), max(v)) if v else (math.nan, math.nan)
    return float(np.fmin.reduce(seg)), float(np.fmax.reduce(seg))


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
        # the hold's in-band samples, at least the last LEVEL_WINDOW_S of them: times (s)
        # and forces (N) in _hist_t/_hist_f[:_hist_n], one preallocated buffer that grows
        self._hist_t = np.empty(_HIST_START)
        self._hist_f = np.empty(_HIST_START)
        self._hist_n = 0
        # the release to time: the last plateau sample (s) and the hold level there (N), as
        # worked out so far; then what came since that may change them (module docstring):
        # the buffer's samples from _new_i (None: none), out-of-band runs (first time s,
        # largest force N, times, forces)
        self._rel_from_s: float | None = None
        self._rel_level_n: float | None = None
        self._new_i: int | None = None
        self._new_out: list[tuple[float, float, np.ndarray, np.ndarray]] = []
        self._new_out_n = 0
        self._floor_bound_n = RELEASE_END_FRACTION * hi * (1.0 + _BOUND_MARGIN)
        self._plateau_bound_n = RELEASE_START_FRACTION * lo * (1.0 - _BOUND_MARGIN)
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
        if len(out) > 1:  # in time order whatever the batching (a run decides several)
            out.sort(key=lambda e: e.t_s)
        return out

    def _update(self, t_s: np.ndarray, filtered_n: np.ndarray) -> list[Event]:
        out: list[Event] = []
        n = t_s.size
        f = filtered_n
        inb = (f >= self.lo_n) & (f <= self.hi_n)
        if not self.in_hold and not self._pending and not inb.any():
            return out
        if self.in_hold and self._out_since_s is None and inb.all():
            self._in_run(out, t_s, f, 0, n)
            return out
        edges = np.flatnonzero(inb[1:] != inb[:-1]) + 1
        a = 0
        inside = bool(inb[0])  # runs alternate in and out of the band
        for b in (*edges.tolist(), n):
            if inside:
                self._in_run(out, t_s, f, a, b)
            else:
                self._out_run(out, t_s, f, a, b)
            a = b
            inside = not inside
        return out

    @property
    def _pending(self) -> bool:
        """A release may be pending (worked out, or still to be)."""
        return self._rel_from_s is not None or self._new_i is not None

    def _crossing_s(self, t_s, f, a: int) -> float:
        """When the force crossed the band's edge between the sample before ``a`` (in this
        batch or the last one) and sample ``a``, by linear interpolation: a hold's start and
        end are then as exact at 10 Hz as at 1 kHz, not rounded to a sample. ``t_s[a]`` when
        there is no sample before, or no crossing to interpolate (a NaN).

        The edge crossed is the one on the out-of-band sample's side (a jump from above the
        band straight onto lo entered it at hi), and an in-band sample exactly on an edge is
        itself the crossing."""
        ta, fa = float(t_s[a]), float(f[a])
        prev = (float(t_s[a - 1]), float(f[a - 1])) if a > 0 else self._prev
        if prev is None:
            return ta
        tp, fp = prev
        out_n = fa if self.lo_n <= fp <= self.hi_n else fp  # the sample out of the band
        if out_n < self.lo_n:
            edge = self.lo_n
        elif out_n > self.hi_n:
            edge = self.hi_n
        else:  # NaN, or both samples on one side
            return ta
        return tp + (ta - tp) * (edge - fp) / (fa - fp)

    def _in_run(self, out, t_s, f, a, b) -> None:
        if self.in_hold and self._out_since_s is not None:
            self._out_since_s = None  # a tolerated dip: the hold goes on
        elif not self.in_hold:
            self.in_hold = True
            self.start_s = self._crossing_s(t_s, f, a)
            self._out_since_s = None
            self._reached_min = self._passed_max = False
            self._hist_n = 0
            self._rel_from_s = None
            self._new_i = None
            self._new_out.clear()
            self._new_out_n = 0
            out.append(
                HoldStarted(t_s=self.start_s, force_n=float(f[a]), band_n=(self.lo_n, self.hi_n))
            )
        self._last_in_s = float(t_s[b - 1])
        self._track_level(t_s[a:b], f[a:b])
        held_s = self._last_in_s - self.start_s
        if self.min_s is not None and not self._reached_min and held_s >= self.min_s:
            self._reached_min = True
            out.append(self._reached(HoldReachedMin, t_s, f, a, b, self.min_s))
        if self.max_s is not None and not self._passed_max and held_s >= self.max_s:
            self._passed_max = True
            out.append(self._reached(HoldPassedMax, t_s, f, a, b, self.max_s))

    def _reached(self, kind, t_s, f, a, b, hold_s: float) -> HoldReachedMin | HoldPassedMax:
        """The event at the run's first sample where the hold has lasted ``hold_s``."""
        i = a + int(np.searchsorted(t_s[a:b], self.start_s + hold_s - 1e-9))
        i = min(i, b - 1)
        event: HoldReachedMin | HoldPassedMax = kind(
            t_s=float(t_s[i]), force_n=float(f[i]), hold_s=hold_s
        )
        return event

    def _track_level(self, tt: np.ndarray, ff: np.ndarray) -> None:
        """A run of the hold's in-band samples (``tt`` s, ``ff`` N): into the level history;
        those from ``dip_tolerance_s`` into the hold on may hold a new plateau sample."""
        i = self._append(tt, ff)
        if self._new_i is None:
            start_ok_s = self.start_s + self.dip_tolerance_s
            if float(tt[-1]) >= start_ok_s:
                first = 0 if float(tt[0]) >= start_ok_s else int(tt.searchsorted(start_ok_s))
                self._new_i = i + first

    def _append(self, tt: np.ndarray, ff: np.ndarray) -> int:
        """Add in-band samples to the history; returns the index of the first. When the
        buffer is full, the samples no later window can reach (older than LEVEL_WINDOW_S
        before the first new one) go, once the release is worked out, and it grows when what
        is left would fill more than half of it."""
        m = tt.size
        n = self._hist_n
        cap = self._hist_t.size
        if n + m > cap:
            self._resolve()
            drop = int(self._hist_t[:n].searchsorted(float(tt[0]) - LEVEL_WINDOW_S, side="right"))
            keep = n - drop
            while 2 * (keep + m) > cap:
                cap *= 2
            if cap != self._hist_t.size:
                new_t, new_f = np.empty(cap), np.empty(cap)
            else:
                new_t, new_f = self._hist_t, self._hist_f
            new_t[:keep] = self._hist_t[drop:n]
            new_f[:keep] = self._hist_f[drop:n]
            self._hist_t, self._hist_f = new_t, new_f
            n = keep
        self._hist_t[n : n + m] = tt
        self._hist_f[n : n + m] = ff
        self._hist_n = n + m
        return n

    def _levels(self, lo: int, hi: int) -> np.ndarray:
        """The hold level (N) at history samples [lo, hi): the mean of the hold's in-band
        samples over the LEVEL_WINDOW_S ending at each."""
        ht = self._hist_t[:hi]
        starts = ht.searchsorted(ht[lo:hi] - LEVEL_WINDOW_S, side="right")
        s0 = int(starts[0])
        cs = np.empty(hi - s0 + 1)
        cs[0] = 0.0
        np.cumsum(self._hist_f[s0:hi], out=cs[1:])
        ends = np.arange(lo + 1, hi + 1)
        return (cs[ends - s0] - cs[starts - s0]) / (ends - starts)

    def _resolve(self) -> None:
        """Work the release to time out, as if every run had been looked at as it came: the
        last plateau sample among the new in-band samples (searched backward in blocks that
        grow) sets the start and the level; else they stay as they were. The kept
        out-of-band runs after that sample then move the start on to their last sample at
        or above RELEASE_START_FRACTION of the level."""
        new_i, outs = self._new_i, self._new_out
        self._new_i, self._new_out, self._new_out_n = None, [], 0
        if new_i is not None:
            hi = self._hist_n
            size = _FIRST_BLOCK
            while hi > new_i:
                lo = max(new_i, hi - size)
                levels = self._levels(lo, hi)
                on = (self._hist_f[lo:hi] >= RELEASE_START_FRACTION * levels).nonzero()[0]
                if on.size:
                    k = int(on[-1])
                    self._rel_from_s = float(self._hist_t[lo + k])
                    self._rel_level_n = float(levels[k])
                    break
                hi = lo
                size *= 4
        from_s, level_n = self._rel_from_s, self._rel_level_n
        if from_s is None or level_n is None:
            return
        on_n = RELEASE_START_FRACTION * level_n
        for first_s, high_n, t_s, f_n in reversed(outs):
            if first_s < from_s:
                return
            if high_n >= on_n:
                self._rel_from_s = float(t_s[int((f_n >= on_n).nonzero()[0][-1])])
                return

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
        low_n = math.nan
        released = None
        if self._pending or (self.in_hold and self._down_exit):
            low_n, high_n = _fmin_fmax(f[a:b])
            if self._pending:
                released = self._release_step(t_s, f, a, b, low_n, high_n)
        if self.in_hold:
            out_since_s = self._out_since_s
            if out_since_s is None:  # set above whenever a hold goes out of the band
                raise RuntimeError("HoldTracker: a hold out of the band has no exit time")
            end_by_s = out_since_s + self.dip_tolerance_s - 1e-9
            if float(t_s[b - 1]) < end_by_s:
                ended_at = b
            else:
                ended_at = a + int(np.searchsorted(t_s[a:b], end_by_s))
            if self._down_exit:
                # let go (under the end floor, or the release complete): over at once
                if low_n <= self.end_floor_n:
                    under = (f[a:ended_at] <= self.end_floor_n).nonzero()[0]
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

    def _release_step(
        self, t_s, f, a, b, low_n: float, high_n: float
    ) -> tuple[int, float, float, float] | None:
        """Out of the band (forces ``low_n``..``high_n`` N, NaN left out) with a release
        maybe pending: timed when a sample could complete it (at or under
        RELEASE_END_FRACTION of the band's top, the highest level there can be), forgotten
        when the force passes above the band first, else kept for later when a sample could
        be on the plateau."""
        if low_n <= self._floor_bound_n:
            self._resolve()
            return self._time_release(t_s, f, a, b) if self._rel_from_s is not None else None
        if high_n > self.hi_n:
            self._rel_from_s = None
            self._new_i = None
            self._new_out.clear()
            self._new_out_n = 0
        elif high_n >= self._plateau_bound_n:
            self._new_out.append((float(t_s[a]), high_n, t_s[a:b].copy(), f[a:b].copy()))
            self._new_out_n += b - a
            if self._new_out_n > _LOG_MAX:
                self._resolve()
        return None

    def _time_release(self, t_s, f, a, b) -> tuple[int, float, float, float] | None:
        """Out of the band with a release pending: the force may still be on the plateau
        (under the band's low edge but near the level), pass above the band (not a
        release: forgotten), or reach the end floor: then returns (sample index,
        ``release_s``, measured seconds, start time s) and the release is done."""
        level_n = self._rel_level_n
        if level_n is None:  # set with every pending release
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
