"""A scripted person for the demo and the routine tests: told each step as plain data, it
presses the way the step asks, and once presses too hard near the neck.

It knows nothing of the host: the runner announces a step (a dict of plain numbers and
strings) through the ``sim://`` link, and the user plans a force curve from that moment in
simulator time. The firmware's physics reads the force from ``force_at``.

Step data it understands (all optional but ``kind``): ``kind`` (cue, press_and_hold,
timed_pressure, stretch, aftercare), ``zone``, ``band_n`` [lo, hi], ``limit_n``,
``hold_min_s``, ``hold_max_s``, ``release_s``, ``duration_s``, ``technique``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

NEAR_NECK_ZONES = ("neck_back", "suboccipital")
PRESS_RAMP_S = 1.0
#: How far into a hold the scripted over-press comes, and how it goes.
OVERPRESS_AT_FRACTION = 0.4
OVERPRESS_FACTOR = 1.5
OVERPRESS_RAMP_S = 0.15
#: The person notices the alarm and lets go: the over-press lasts this long at its peak.
OVERPRESS_HOLD_S = 0.2
OVERPRESS_RELEASE_S = 0.3


@dataclass
class _Plan:
    """Piecewise-linear force: (t_s, force_n) knots from the step's announcement on."""

    knots: list[tuple[float, float]] = field(default_factory=list)
    wobble_n: float = 0.0

    def at(self, t_s: float) -> float:
        k = self.knots
        if not k or t_s <= k[0][0]:
            return k[0][1] if k else 0.0
        for (t0, f0), (t1, f1) in zip(k, k[1:], strict=False):
            if t_s <= t1:
                f = f0 if t1 == t0 else f0 + (f1 - f0) * (t_s - t0) / (t1 - t0)
                break
        else:
            f = k[-1][1]
        if self.wobble_n and f > 0:
            f += self.wobble_n * math.sin(2 * math.pi * 0.5 * t_s)
        return max(0.0, f)


class ScriptedUser:
    """Presses per announced step. ``overpress=True``: once, in the first pressure step near
    the neck, it pushes to 1.5x the limit for a moment, then lets go."""

    def __init__(self, *, overpress: bool = True) -> None:
        self.overpress_pending = overpress
        self.overpressed_at_s: float | None = None
        #: The plan that held the over-press (kept: a restarted step replaces the live plan).
        self.overpress_plan: _Plan | None = None
        self.steps_seen: list[dict] = []
        self._plan = _Plan()

    def force_at(self, t_s: float) -> float:
        return self._plan.at(t_s)

    def on_step(self, step: dict, t_s: float) -> None:
        """A new step (or the same one again after a stop) starts at simulator time ``t_s``."""
        self.steps_seen.append(dict(step))
        kind = step.get("kind")
        band = step.get("band_n")
        now = self.force_at(t_s)
        if kind not in ("press_and_hold", "timed_pressure") or not band:
            self._plan = _Plan([(t_s, now), (t_s + 0.5, 0.0)])
            return
        lo, hi = band
        target = lo + 0.5 * (hi - lo)
        if kind == "press_and_hold":
            hold_min = float(step.get("hold_min_s") or 5.0)
            hold_max = float(step.get("hold_max_s") or hold_min + 5.0)
            hold = min(hold_min + 1.0, (hold_min + hold_max) / 2)
        else:
            hold = float(step.get("duration_s") or 30.0)
        release = float(step.get("release_s") or 1.0) + 0.5
        start = t_s + PRESS_RAMP_S
        knots = [(t_s, now), (start, target)]
        if self.overpress_pending and step.get("zone") in NEAR_NECK_ZONES:
            self.overpress_pending = False
            limit = float(step.get("limit_n") or hi / 0.8)
            t_over = start + OVERPRESS_AT_FRACTION * hold
            self.overpressed_at_s = t_over
            peak = t_over + OVERPRESS_RAMP_S
            knots += [
                (t_over, target),
                (peak, OVERPRESS_FACTOR * limit),
                (peak + OVERPRESS_HOLD_S, OVERPRESS_FACTOR * limit),
                (peak + OVERPRESS_HOLD_S + OVERPRESS_RELEASE_S, 0.0),
            ]
            # Then it waits: the runner announces the step again once it is safe.
            self._plan = self.overpress_plan = _Plan(knots)
            return
        knots += [(start + hold, target), (start + hold + release, 0.0)]
        wobble = 0.1 * (hi - lo) if step.get("technique") in ("rolling", "circles") else 0.0
        self._plan = _Plan(knots, wobble)
