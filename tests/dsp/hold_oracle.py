"""The hold rules of dsp/hold.py, plainly, one sample at a time: the oracle that
tests/dsp/test_hold_differential.py holds ``dsp.hold.HoldTracker`` to.

Slow on purpose (a Python loop over the samples, the level a sum over a window of them) and
with nothing of the tracker's batching: a batch is only a run of samples, each taken as it
comes. The numbers are the documented ones (dsp/hold.py's docstring, docs/analyze.md "How a
release is timed"), written here rather than imported, so a change of them in dsp/hold.py
shows. Read each rule against dsp/hold.py's docstring:

- in the band: lo <= force <= hi (a NaN is out of it);
- a hold starts at an in-band sample when none is running, at the crossing of the band's
  edge (linear interpolation with the sample before; the sample's time when there is none);
- it leaves the band at the crossing likewise; back in the band within the dip tolerance it
  goes on; it ends at the first out-of-band sample the tolerance after leaving (``- 1e-9``),
  or at once at a sample at or under END_FLOOR_FRACTION of lo or where a release is complete,
  when it left downward after lasting the dip tolerance;
- min and max: at the first in-band sample the hold has lasted them (``- 1e-9``);
- hold level: the mean of the hold's in-band samples in (t - LEVEL_WINDOW_S, t];
- a release starts at the last sample at or above RELEASE_START_FRACTION of the level: an
  in-band sample the dip tolerance into the hold (then the level is its own), or an
  out-of-band one after it (against that level); it is forgotten when the force goes above
  the band or a new hold starts, and complete at the first out-of-band sample at or under
  RELEASE_END_FRACTION of the level: ``release_s`` = measured / (START - END fraction).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from dsp.events import Event, FastRelease, HoldEnded, HoldPassedMax, HoldReachedMin, HoldStarted

DIP_TOLERANCE_S = 0.3  # docs/analyze.md: "dips under 0.3 s included"
END_FLOOR_FRACTION = 0.2
LEVEL_WINDOW_S = 1.0  # docs/analyze.md: "over its last second"
RELEASE_START_FRACTION = 0.9  # docs/analyze.md: "at or above 90 % of that level"
RELEASE_END_FRACTION = 0.15  # docs/analyze.md: "at or under 15 % of it"


@dataclass
class HoldOracle:
    """``HoldTracker``'s arguments, and its interface: ``update``, ``in_hold``, ``start_s``."""

    band_n: tuple[float, float]
    min_s: float | None = None
    max_s: float | None = None
    release_min_s: float | None = None
    dip_s: float = DIP_TOLERANCE_S

    def __post_init__(self) -> None:
        self.lo_n, self.hi_n = self.band_n
        self.prev: tuple[float, float] | None = None  # the sample before: (t s, force N)
        self.in_hold = False
        self.start_s = 0.0
        self.last_in_s = 0.0
        self.out_since_s: float | None = None  # when the hold left the band (None: in it)
        self.down_exit = False
        self.reached_min = self.passed_max = False
        self.window_t: deque[float] = deque()  # the hold's in-band samples, the last second
        self.window_f: deque[float] = deque()
        self.from_s: float | None = None  # where a release to time starts (None: none)
        self.level_n = 0.0  # the hold level there

    def update(self, t_s: np.ndarray, filtered_n: np.ndarray) -> list[Event]:
        out: list[Event] = []
        for t, f in zip(t_s.tolist(), filtered_n.tolist(), strict=True):
            if self.lo_n <= f <= self.hi_n:
                self.in_band(t, f, out)
            else:
                self.out_of_band(t, f, out)
            self.prev = (t, f)
        return out

    def crossing_s(self, t: float, f: float) -> float:
        """When the force crossed the band's edge between the sample before and (t, f), one
        in the band and the other out of it; ``t`` when there is none before (or a NaN)."""
        if self.prev is None:
            return t
        tp, fp = self.prev
        out_n = f if self.lo_n <= fp <= self.hi_n else fp
        if out_n < self.lo_n:
            return tp + (t - tp) * (self.lo_n - fp) / (f - fp)
        if out_n > self.hi_n:
            return tp + (t - tp) * (self.hi_n - fp) / (f - fp)
        return t

    def in_band(self, t: float, f: float, out: list[Event]) -> None:
        if not self.in_hold:
            self.in_hold = True
            self.start_s = self.crossing_s(t, f)
            self.reached_min = self.passed_max = False
            self.window_t.clear()
            self.window_f.clear()
            self.from_s = None
            out.append(HoldStarted(t_s=self.start_s, force_n=f, band_n=(self.lo_n, self.hi_n)))
        self.out_since_s = None
        self.last_in_s = t
        self.window_t.append(t)
        self.window_f.append(f)
        while self.window_t[0] <= t - LEVEL_WINDOW_S:
            self.window_t.popleft()
            self.window_f.popleft()
        if t >= self.start_s + self.dip_s:
            level_n = sum(self.window_f) / len(self.window_f)
            if f >= RELEASE_START_FRACTION * level_n:
                self.from_s, self.level_n = t, level_n
        if self.min_s is not None and not self.reached_min and self.lasted(t, self.min_s):
            self.reached_min = True
            out.append(HoldReachedMin(t_s=t, force_n=f, hold_s=self.min_s))
        if self.max_s is not None and not self.passed_max and self.lasted(t, self.max_s):
            self.passed_max = True
            out.append(HoldPassedMax(t_s=t, force_n=f, hold_s=self.max_s))

    def lasted(self, t: float, hold_s: float) -> bool:
        """At ``t`` the hold has lasted ``hold_s`` seconds."""
        return t >= self.start_s + hold_s - 1e-9

    def out_of_band(self, t: float, f: float, out: list[Event]) -> None:
        if self.in_hold and self.out_since_s is None:
            self.out_since_s = self.crossing_s(t, f)
            self.down_exit = f < self.lo_n and self.last_in_s - self.start_s >= self.dip_s
        measured_s = None  # a release complete here: from ``from_s`` to t
        from_s = self.from_s
        if from_s is not None:
            if f > self.hi_n:
                self.from_s = None
            elif f <= RELEASE_END_FRACTION * self.level_n:
                measured_s = t - from_s
                self.from_s = None
            elif f >= RELEASE_START_FRACTION * self.level_n:
                self.from_s = t
        if self.in_hold and self.out_since_s is not None:
            let_go = self.down_exit and (
                f <= END_FLOOR_FRACTION * self.lo_n or measured_s is not None
            )
            if let_go or t >= self.out_since_s + self.dip_s - 1e-9:
                self.end_hold(t, f, self.out_since_s, out)
        if measured_s is not None and self.release_min_s is not None:
            release_s = measured_s / (RELEASE_START_FRACTION - RELEASE_END_FRACTION)
            if release_s < self.release_min_s:
                facts = {
                    "release_s": release_s,
                    "release_min_s": self.release_min_s,
                    "from_s": from_s,
                    "measured_s": measured_s,
                    "hold_level_n": self.level_n,
                }
                out.append(FastRelease(t_s=t, force_n=f, **facts))

    def end_hold(self, t: float, f: float, end_s: float, out: list[Event]) -> None:
        """The hold ends at (t, f): it was in the band from its start to ``end_s``."""
        self.in_hold = False
        self.out_since_s = None
        facts = {
            "start_s": self.start_s,
            "end_s": end_s,
            "duration_s": end_s - self.start_s,
            "reached_min": self.reached_min,
        }
        out.append(HoldEnded(t_s=t, force_n=f, detection_delay_s=t - end_s, **facts))
