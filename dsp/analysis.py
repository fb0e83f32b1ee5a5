"""Offline analysis of a force trace through the live pipeline (``massagectl analyze``).

The trace (device times in s, force already in newtons) goes through ForcePipeline with an
identity calibration, in large batches, with stops re-armed as soon as the rules allow so
that every episode is seen. Holds shorter than DIP_TOLERANCE_S (the force passing through
the band) are not reported. Sensor-fault rules on raw counts (flatline, saturation) are off:
a CSV of newtons has no ADC rails, and synthetic traces may be exactly constant.
The report is plain JSON-ready data; its schema is in docs/analyze.md. Its entries are the
pipeline's typed events (dsp.events), put into the report's form in one place: ``_entry``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from dsp.calibration import Calibration
from dsp.decisions import SafetyState
from dsp.events import (
    Cause,
    Event,
    EventKind,
    FastRelease,
    Fault,
    HoldEnded,
    Stop,
    Warning,  # the event (shadows the builtin here)
)
from dsp.hold import DIP_TOLERANCE_S, HoldTracker
from dsp.pipeline import ForcePipeline
from dsp.zones import Zone

#: Samples per batch offline: large, so that per-batch overhead vanishes.
OFFLINE_BATCH = 1 << 16
#: The slowest trace analyze takes (Hz): the protocol's 10 Hz, less a little for a rate
#: estimated from jittery timestamps.
MIN_TRACE_RATE_HZ = 9.5
#: Default shortest allowed release (s) when a band is given: DESIGN.md's slow release.
DEFAULT_RELEASE_MIN_S = 2.0
#: The report's entry types (docs/analyze.md) and the event type each comes from: the one
#: mapping of analyze's entries onto dsp.events (``_entry`` writes them). ``warning``,
#: ``stop``, ``fault`` and ``fast_release`` are those events under their kind's name;
#: ``hold`` is a HoldEnded (``complete`` false when it was cut short by the end of the trace
#: or of its step: ``interrupted`` set); ``over_limit`` is the episode that a Stop with cause
#: over_limit starts (reported just before that stop).
OVER_LIMIT = "over_limit"
HOLD = "hold"
ENTRY_TYPES: dict[str, type[Event]] = {
    OVER_LIMIT: Stop,
    EventKind.WARNING.value: Warning,
    EventKind.STOP.value: Stop,
    EventKind.FAULT.value: Fault,
    HOLD: HoldEnded,
    EventKind.FAST_RELEASE.value: FastRelease,
}
EVENT_TYPES = tuple(ENTRY_TYPES)
#: ``HoldEnded.interrupted`` of a hold still open when the trace or its step ends.
CUT_AT_TRACE_END = "trace_end"
CUT_AT_STEP_END = "step_end"


def _r(x: float, nd: int = 4) -> float:
    return round(float(x), nd)


def analyze_trace(
    t_s: np.ndarray,
    force_n: np.ndarray,
    zone: Zone,
    *,
    band_n: tuple[float, float] | None = None,
    hold_min_s: float | None = None,
    hold_max_s: float | None = None,
    release_min_s: float | None = DEFAULT_RELEASE_MIN_S,
    motor_hz: float | None = None,
    rate_hz: float | None = None,
) -> dict[str, Any]:
    """Run the pipeline over a whole trace; returns ``{"events": [...], "summary": {...}}``."""
    t = np.asarray(t_s, dtype=np.float64)
    f = np.asarray(force_n, dtype=np.float64)
    rate, dt = _rate_and_intervals(t, rate_hz)
    pipe = ForcePipeline(
        rate, Calibration.identity(), zone, auto_rearm=True, flatline_s=None, raw_limits_counts=None
    )
    pipe.set_zone(zone, band=band_n, hold=(hold_min_s, hold_max_s, release_min_s))
    if motor_hz:
        cap = zone.vibration_cap_pct
        pipe.set_vibration(cap if cap > 0 else 1.0, motor_hz)
    figures = _Figures(band_n, zone.limit_n)
    filtered_parts, fast_parts = [], []  # looked at again only around over-limit stops
    decisions: list[Event] = []
    for a in range(0, t.size, OFFLINE_BATCH):
        b = min(t.size, a + OFFLINE_BATCH)
        out = pipe.on_batch(t[a:b], f[a:b], float(t[b - 1]))
        figures.add(a, dt[a:b], out.filtered_n)
        filtered_parts.append(out.filtered_n)
        fast_parts.append(out.fast_n)
        decisions.extend(out.events)
    filtered = fast = None
    if any(isinstance(d, Stop) and d.cause is Cause.OVER_LIMIT for d in decisions):
        filtered, fast = np.concatenate(filtered_parts), np.concatenate(fast_parts)
    open_holds = []
    hold = pipe.hold
    if hold is not None and hold.in_hold:  # still holding when the trace ends
        open_holds.append(_open_hold(hold, float(t[-1]), CUT_AT_TRACE_END))
    events = _events(decisions, open_holds, t, f, fast, filtered, lambda _t: zone)
    return {
        "events": events,
        "summary": _summary(events, t, f, figures, zone, band_n, rate, motor_hz),
    }


class _Figures:
    """The summary's figures of the filtered force, gathered batch by batch (while each
    batch is at hand): its peak (the first sample of the largest value; NaN counts as the
    largest, as in np.argmax), and the time in the band and at or over the limit (each
    sample stands for the interval to the next one)."""

    def __init__(self, band_n: tuple[float, float] | None, limit_n: float) -> None:
        self.band_n, self.limit_n = band_n, limit_n
        self.peak_i = -1
        self.peak_n = math.nan
        self.in_band_s = 0.0
        self.over_limit_s = 0.0

    def add(self, a: int, dt: np.ndarray, filtered: np.ndarray) -> None:
        """The batch of samples from index ``a``: intervals ``dt`` (s), ``filtered`` (N)."""
        k = int(np.argmax(filtered))
        peak_n = float(filtered[k])
        if self.peak_i < 0 or (
            not math.isnan(self.peak_n) and (math.isnan(peak_n) or peak_n > self.peak_n)
        ):
            self.peak_i, self.peak_n = a + k, peak_n
        if self.band_n is not None:
            lo, hi = self.band_n
            self.in_band_s += float(dt.sum(where=(filtered >= lo) & (filtered <= hi)))
        if not peak_n < self.limit_n:  # (a NaN peak hides whether any sample is over)
            self.over_limit_s += float(dt[filtered >= self.limit_n].sum())


def _rate_and_intervals(t: np.ndarray, rate_hz: float | None) -> tuple[float, np.ndarray]:
    """The trace's rate (Hz: ``rate_hz``, else from the median sample interval) and each
    sample's interval to the next one (s; the last: one nominal period)."""
    if t.size < 2:
        raise ValueError("a trace needs at least 2 samples")
    dt = np.empty_like(t)
    np.subtract(t[1:], t[:-1], out=dt[:-1])
    rate = float(rate_hz) if rate_hz else float(1.0 / _median(dt[:-1], t))
    if not rate >= MIN_TRACE_RATE_HZ:
        raise ValueError(f"a trace at {rate:.3g} Hz: analyze needs 10 Hz or more")
    dt[-1] = 1.0 / rate
    return rate, dt


#: From this many values on, ``_median`` first tries counting around a subsample's middle.
_MEDIAN_BY_COUNT_MIN = 4096


def _median(x: np.ndarray, finite_check: np.ndarray) -> np.floating:
    """``np.median(x)``, exactly, with ``x`` free of NaN when ``finite_check`` (whose values
    ``x`` is computed from) sums to a finite number. A trace's sample intervals mostly
    repeat a few values: when a subsample's middle value is both middle values of ``x``
    (counted in two passes), it is the median; else np.median (a partial sort)."""
    n = x.size
    if n >= _MEDIAN_BY_COUNT_MIN and math.isfinite(float(finite_check.sum())):
        sub = np.sort(x[:: n // 1024])
        c = sub[sub.size // 2]
        below = int(np.count_nonzero(x < c))
        up_to = int(np.count_nonzero(x <= c))
        if below <= (n - 1) // 2 and n // 2 < up_to and abs(float(c)) < 1e300:
            return c  # np.median's mean of the two middle values: (c + c) / 2 == c
    return np.median(x)


def _open_hold(hold: HoldTracker, end_s: float, why: str) -> HoldEnded:
    """A hold cut short at ``end_s`` (the trace's or its step's end: ``why``)."""
    return HoldEnded(
        t_s=end_s,
        start_s=hold.start_s,
        end_s=end_s,
        duration_s=end_s - hold.start_s,
        reached_min=hold.min_s is not None and end_s - hold.start_s >= hold.min_s,
        interrupted=why,
    )


def _entry(e: Event, **extra: Any) -> dict[str, Any]:
    """The report entry of an event (``ENTRY_TYPES``); ``extra``: fields added to it."""
    if isinstance(e, Stop | Fault):
        return {
            "type": str(e.kind),
            "t_s": _r(e.t_s),
            "cause": None if e.cause is None else str(e.cause),
            "force_n": _r(e.force_n, 3) if math.isfinite(e.force_n) else None,
            "detection_delay_s": _r(e.detection_delay_s),
            **extra,
        }
    if isinstance(e, Warning):
        return {"type": str(e.kind), "t_s": _r(e.t_s), "force_n": _r(e.force_n, 3), **extra}
    if isinstance(e, HoldEnded):
        return {
            "type": HOLD,
            "start_s": _r(e.start_s),
            "end_s": _r(e.end_s),
            "duration_s": _r(e.duration_s),
            "reached_min": bool(e.reached_min),
            "complete": e.interrupted is None,
            **extra,
        }
    if isinstance(e, FastRelease):
        return {
            "type": str(e.kind),
            "t_s": _r(e.t_s),
            "release_s": _r(e.release_s),
            "release_min_s": e.release_min_s,
            **extra,
        }
    raise ValueError(f"analyze reports no {e.kind} events")


def _over_limit_entry(stop: Stop, zone: Zone, t, f, fast, filtered) -> dict[str, Any]:
    """The ``over_limit`` entry: the episode ``stop`` starts, until both force estimates are
    back under the reset level."""
    reset_n = zone.reset_n
    i = int(np.searchsorted(t, stop.t_s))
    below = np.flatnonzero((filtered[i:] < reset_n) & (fast[i:] < reset_n))
    j = i + int(below[0]) if below.size else t.size
    k = i + int(np.argmax(filtered[i:j])) if j > i else i
    return {
        "type": OVER_LIMIT,
        "t_s": _r(stop.t_s),
        "peak_n": _r(filtered[k], 3),
        "peak_t_s": _r(t[k]),
        "peak_raw_n": _r(f[i:j].max() if j > i else f[i], 3),
        "limit_n": zone.limit_n,
        "path": stop.path,
    }


def _events(
    decisions: Iterable[Event],
    open_holds: Iterable[HoldEnded],
    t,
    f,
    fast,
    filtered,
    zone_at: Callable[[float], Zone],
) -> list[dict[str, Any]]:
    """Report entries from the pipeline's events; ``open_holds``: holds cut short;
    ``zone_at(t_s)``: the zone in force at a time."""
    events: list[dict[str, Any]] = []
    for d in (*decisions, *open_holds):
        if isinstance(d, HoldEnded) and d.duration_s < DIP_TOLERANCE_S:
            continue  # the force passing through the band: not a hold
        if isinstance(d, Stop) and d.cause is Cause.OVER_LIMIT:
            events.append(_over_limit_entry(d, zone_at(d.t_s), t, f, fast, filtered))
        if isinstance(d, Stop | Fault | Warning | HoldEnded | FastRelease):
            events.append(_entry(d))
    events.sort(key=_when)
    return events


def _when(entry: dict[str, Any]) -> float:
    """An entry's time: ``t_s``, or a hold's ``start_s``."""
    return entry.get("t_s", entry.get("start_s", 0.0))


def _summary(events, t, f, figures: _Figures, zone, band_n, rate, motor_hz) -> dict[str, Any]:
    k = figures.peak_i
    counts = dict.fromkeys(EVENT_TYPES, 0)
    for e in events:
        counts[e["type"]] += 1
    return {
        "samples": int(t.size),
        "duration_s": _r(t[-1] - t[0] + 1.0 / rate, 3),
        "rate_hz": _r(rate, 3),
        "zone": zone.name,
        "limit_n": zone.limit_n,
        "band_n": None if band_n is None else [float(band_n[0]), float(band_n[1])],
        "motor_hz": motor_hz,
        "peak_n": _r(figures.peak_n, 3),
        "peak_t_s": _r(t[k]),
        "peak_raw_n": _r(f.max(), 3),
        "time_in_band_s": None if band_n is None else _r(figures.in_band_s, 3),
        "time_over_limit_s": _r(figures.over_limit_s, 3),
        "counts": counts,
    }


@dataclass(frozen=True)
class Segment:
    """What was in force from device time ``start_s`` (exclusive: from the first sample after
    it) until the next segment: the zone, the hold band and timing, and the vibration.

    A live session changes these between batches, right after the batch that ends at the
    event's time, hence "after ``start_s``". ``label`` names the step (unit) for reports.
    """

    start_s: float
    zone: Zone
    band_n: tuple[float, float] | None = None
    hold_min_s: float | None = None
    hold_max_s: float | None = None
    release_min_s: float | None = None
    vibration_pct: float = 0.0
    motor_hz: float | None = None
    label: str | None = None
    #: A step (re)starts here: the hold tracker starts afresh even with an unchanged setup.
    new_step: bool = False
    #: A recorded stop or fault that latched the live supervisor here and that force alone
    #: cannot show (a firmware flag, a lost keepalive, a stale stream, the user's key):
    #: latched here too, so that re-arming and what follows happen as they did live.
    latch: Stop | Fault | None = None

    def same_hold_setup(self, other: Segment) -> bool:
        return (self.zone, self.band_n, self.hold_min_s, self.hold_max_s, self.release_min_s) == (
            other.zone,
            other.band_n,
            other.hold_min_s,
            other.hold_max_s,
            other.release_min_s,
        )


def analyze_segments(
    t_s: np.ndarray,
    force_n: np.ndarray,
    segments: list[Segment],
    *,
    rate_hz: float | None = None,
) -> dict[str, Any]:
    """Like ``analyze_trace``, with the zone, band, hold timing and vibration changing where
    ``segments`` say (a recorded session's timeline). Returns ``{"events", "summary",
    "segments"}``: ``segments`` has per-segment label, times, zone, limit, band, peak, time in
    band, holds and stops. A hold still open when its segment's setup changes ends there
    (complete=False), as a live unit's hold ends with the unit."""
    t = np.asarray(t_s, dtype=np.float64)
    f = np.asarray(force_n, dtype=np.float64)
    if t.size >= 2 and not segments:
        raise ValueError("at least one segment is needed")
    rate, dt = _rate_and_intervals(t, rate_hz)
    segs = sorted(segments, key=lambda s: s.start_s)
    starts = np.searchsorted(t, [s.start_s for s in segs], side="right")
    starts[0] = 0
    ends = np.append(starts[1:], t.size)
    pipe = ForcePipeline(
        rate,
        Calibration.identity(),
        segs[0].zone,
        auto_rearm=True,
        flatline_s=None,
        raw_limits_counts=None,
    )
    filtered = np.empty_like(f)
    fast = np.empty_like(f)
    limit = np.empty_like(f)
    decisions: list[Event] = []
    open_holds: list[HoldEnded] = []
    latched: list[dict[str, Any]] = []
    prev: Segment | None = None
    for seg, a, b in zip(segs, starts.tolist(), ends.tolist(), strict=True):
        if prev is None or seg.new_step or not seg.same_hold_setup(prev):
            hold = pipe.hold
            if hold is not None and hold.in_hold and a > 0:
                open_holds.append(_open_hold(hold, float(t[a - 1]), CUT_AT_STEP_END))
            pipe.set_zone(
                seg.zone,
                band=seg.band_n,
                hold=(seg.hold_min_s, seg.hold_max_s, seg.release_min_s),
            )
        if prev is None or (seg.vibration_pct, seg.motor_hz) != (prev.vibration_pct, prev.motor_hz):
            pipe.set_vibration(seg.vibration_pct, seg.motor_hz if seg.vibration_pct > 0 else None)
        if seg.latch is not None:
            fault = isinstance(seg.latch, Fault)
            pipe.supervisor.state = SafetyState.FAULT if fault else SafetyState.STOPPED
            at = replace(
                seg.latch,
                t_s=seg.start_s,
                force_n=float(filtered[a - 1]) if a > 0 else math.nan,
                detection_delay_s=0.0,
            )
            latched.append(_entry(at, recorded=True))
        prev = seg
        limit[a:b] = seg.zone.limit_n
        for c in range(a, b, OFFLINE_BATCH):
            d = min(b, c + OFFLINE_BATCH)
            out = pipe.on_batch(t[c:d], f[c:d], float(t[d - 1]))
            filtered[c:d] = out.filtered_n
            fast[c:d] = out.fast_n
            decisions.extend(out.events)
    if pipe.hold is not None and pipe.hold.in_hold:
        open_holds.append(_open_hold(pipe.hold, float(t[-1]), CUT_AT_TRACE_END))

    def zone_at(time_s: float) -> Zone:
        i = max(0, int(np.searchsorted(t, time_s, side="left")))
        k = int(np.searchsorted(starts, min(i, t.size - 1), side="right")) - 1
        return segs[max(0, k)].zone

    events = _events(decisions, open_holds, t, f, fast, filtered, zone_at) + latched
    events.sort(key=_when)
    in_band = np.zeros(t.size, dtype=bool)
    for seg, a, b in zip(segs, starts.tolist(), ends.tolist(), strict=True):
        if seg.band_n is not None and b > a:
            lo, hi = seg.band_n
            in_band[a:b] = (filtered[a:b] >= lo) & (filtered[a:b] <= hi)
    steps = _steps(segs, starts, ends, t, f, filtered, dt, in_band, events)
    k = int(np.argmax(filtered))
    counts = dict.fromkeys(EVENT_TYPES, 0)
    for e in events:
        counts[e["type"]] += 1
    banded = any(s.band_n is not None for s in segs)
    summary = {
        "samples": int(t.size),
        "duration_s": _r(t[-1] - t[0] + 1.0 / rate, 3),
        "rate_hz": _r(rate, 3),
        "zones": sorted({s.zone.name for s in segs}),
        "steps": len(steps),
        "peak_n": _r(filtered[k], 3),
        "peak_t_s": _r(t[k]),
        "peak_raw_n": _r(f.max(), 3),
        "time_in_band_s": _r(float(dt[in_band].sum()), 3) if banded else None,
        "time_over_limit_s": _r(float(dt[filtered >= limit].sum()), 3),
        "counts": counts,
    }
    return {"events": events, "summary": summary, "steps": steps}


def _steps(segs, starts, ends, t, f, filtered, dt, in_band, events) -> list[dict[str, Any]]:
    """Segments grouped by step label (a restarted step stays one entry, as in a live run's
    summary; vibration changes do not split a step); the time between steps has label None."""
    groups: list[tuple[Segment, int, int, float]] = []
    for seg, a, b in zip(segs, starts.tolist(), ends.tolist(), strict=True):
        if b <= a:
            continue
        if groups and groups[-1][0].label == seg.label:
            first, ga, _, vib = groups[-1]
            groups[-1] = (first, ga, b, max(vib, seg.vibration_pct))
        else:
            groups.append((seg, a, b, seg.vibration_pct))
    steps = []
    for seg, a, b, vib in groups:
        t_a, t_b = float(t[a]), float(t[b - 1])
        inside = [e for e in events if t_a <= _when(e) <= t_b]
        steps.append(
            {
                "label": seg.label,
                "start_s": _r(t_a),
                "end_s": _r(t_b),
                "zone": seg.zone.name,
                "limit_n": seg.zone.limit_n,
                "band_n": None if seg.band_n is None else [float(x) for x in seg.band_n],
                "vibration_pct_max": vib,
                "peak_n": _r(filtered[a:b].max(), 3),
                "peak_raw_n": _r(f[a:b].max(), 3),
                "time_in_band_s": None
                if seg.band_n is None
                else _r(float(dt[a:b][in_band[a:b]].sum()), 3),
                "holds": [e for e in inside if e["type"] == HOLD],
                "stops": [e for e in inside if e["type"] in (EventKind.STOP, EventKind.FAULT)],
            }
        )
    return steps
