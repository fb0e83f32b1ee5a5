"""Offline analysis of a force trace through the live pipeline (``massagectl analyze``).

The trace (device times in s, force already in newtons) goes through ForcePipeline with an
identity calibration, in large batches, with stops re-armed as soon as the rules allow so
that every episode is seen. Holds shorter than DIP_TOLERANCE_S (the force passing through
the band) are not reported. Sensor-fault rules on raw counts (flatline, saturation) are off:
a CSV of newtons has no ADC rails, and synthetic traces may be exactly constant.
The report is plain JSON-ready data; its schema is in docs/analyze.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dsp.calibration import Calibration
from dsp.events import Cause, EventKind
from dsp.hold import DIP_TOLERANCE_S
from dsp.pipeline import ForcePipeline
from dsp.zones import Zone

#: Samples per batch offline: large, so that per-batch overhead vanishes.
OFFLINE_BATCH = 1 << 16
#: Default shortest allowed release (s) when a band is given: DESIGN.md's slow release.
DEFAULT_RELEASE_MIN_S = 2.0
EVENT_TYPES = ("over_limit", "warning", "stop", "fault", "hold", "fast_release")


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
    if t.size < 2:
        raise ValueError("a trace needs at least 2 samples")
    rate = float(rate_hz) if rate_hz else float(1.0 / np.median(np.diff(t)))
    pipe = ForcePipeline(
        rate, Calibration.identity(), zone, auto_rearm=True, flatline_s=None, raw_limits_counts=None
    )
    pipe.set_zone(zone, band=band_n, hold=(hold_min_s, hold_max_s, release_min_s))
    if motor_hz:
        cap = zone.vibration_cap_pct
        pipe.set_vibration(cap if cap > 0 else 1.0, motor_hz)
    filtered = np.empty_like(f)
    fast = np.empty_like(f)
    decisions = []
    for a in range(0, t.size, OFFLINE_BATCH):
        b = min(t.size, a + OFFLINE_BATCH)
        out = pipe.on_batch(t[a:b], f[a:b], float(t[b - 1]))
        filtered[a:b] = out.filtered_n
        fast[a:b] = out.fast_n
        decisions.extend(out.events)
    events = _events(decisions, pipe, t, f, fast, filtered, zone)
    return {
        "events": events,
        "summary": _summary(events, t, f, filtered, zone, band_n, rate, motor_hz),
    }


def _events(decisions, pipe, t, f, fast, filtered, zone) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    reset_n = zone.reset_n
    for d in decisions:
        if d.kind is EventKind.STOP and d.cause is Cause.OVER_LIMIT:
            i = int(np.searchsorted(t, d.t_s))
            # the episode lasts until both force estimates are back under the reset level
            below = np.flatnonzero((filtered[i:] < reset_n) & (fast[i:] < reset_n))
            j = i + int(below[0]) if below.size else t.size
            k = i + int(np.argmax(filtered[i:j])) if j > i else i
            events.append(
                {
                    "type": "over_limit",
                    "t_s": _r(d.t_s),
                    "peak_n": _r(filtered[k], 3),
                    "peak_t_s": _r(t[k]),
                    "peak_raw_n": _r(f[i:j].max() if j > i else f[i], 3),
                    "limit_n": zone.limit_n,
                    "path": d.detail.get("path"),
                }
            )
        if d.kind in (EventKind.STOP, EventKind.FAULT):
            events.append(
                {
                    "type": str(d.kind),
                    "t_s": _r(d.t_s),
                    "cause": str(d.cause),
                    "force_n": _r(d.force_n, 3),
                    "detection_delay_s": _r(d.detection_delay_s),
                }
            )
        elif d.kind is EventKind.WARNING:
            events.append({"type": "warning", "t_s": _r(d.t_s), "force_n": _r(d.force_n, 3)})
        elif d.kind is EventKind.HOLD_ENDED and d.detail["duration_s"] >= DIP_TOLERANCE_S:
            events.append(_hold(d.detail, complete=True))
        elif d.kind is EventKind.FAST_RELEASE:
            events.append(
                {
                    "type": "fast_release",
                    "t_s": _r(d.t_s),
                    "release_s": _r(d.detail["release_s"]),
                    "release_min_s": d.detail["release_min_s"],
                }
            )
    hold = pipe.hold
    if hold is not None and hold.in_hold:  # still holding when the trace ends
        end_s = float(t[-1])
        events.append(
            _hold(
                {
                    "start_s": hold.start_s,
                    "end_s": end_s,
                    "duration_s": end_s - hold.start_s,
                    "reached_min": hold.min_s is not None and end_s - hold.start_s >= hold.min_s,
                },
                complete=False,
            )
        )
    events.sort(key=lambda e: e.get("t_s", e.get("start_s", 0.0)))
    return events


def _hold(detail: dict[str, Any], complete: bool) -> dict[str, Any]:
    return {
        "type": "hold",
        "start_s": _r(detail["start_s"]),
        "end_s": _r(detail["end_s"]),
        "duration_s": _r(detail["duration_s"]),
        "reached_min": bool(detail["reached_min"]),
        "complete": complete,
    }


def _summary(events, t, f, filtered, zone, band_n, rate, motor_hz) -> dict[str, Any]:
    # each sample stands for the interval to the next one (the last: one nominal period)
    dt = np.empty_like(t)
    dt[:-1] = np.diff(t)
    dt[-1] = 1.0 / rate
    k = int(np.argmax(filtered))
    counts = dict.fromkeys(EVENT_TYPES, 0)
    for e in events:
        counts[e["type"]] += 1
    in_band = None
    if band_n is not None:
        mask = (filtered >= band_n[0]) & (filtered <= band_n[1])
        in_band = _r(float(dt[mask].sum()), 3)
    return {
        "samples": int(t.size),
        "duration_s": _r(t[-1] - t[0] + 1.0 / rate, 3),
        "rate_hz": _r(rate, 3),
        "zone": zone.name,
        "limit_n": zone.limit_n,
        "band_n": None if band_n is None else [float(band_n[0]), float(band_n[1])],
        "motor_hz": motor_hz,
        "peak_n": _r(filtered[k], 3),
        "peak_t_s": _r(t[k]),
        "peak_raw_n": _r(f.max(), 3),
        "time_in_band_s": in_band,
        "time_over_limit_s": _r(float(dt[filtered >= zone.limit_n].sum()), 3),
        "counts": counts,
    }
