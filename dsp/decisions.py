"""What the supervisor and the hold tracker decide, and the supervisor's states."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dsp.events import Cause, EventKind


class SafetyState(StrEnum):
    """ARMED: all clear. WARNING: filtered force at or over 80 % of the limit.
    STOPPED: a latched stop (force rules, vibration time). FAULT: a latched fault (signal or
    link broken); FAULT wins over STOPPED when both apply."""

    ARMED = "armed"
    WARNING = "warning"
    STOPPED = "stopped"
    FAULT = "fault"


@dataclass(frozen=True)
class Decision:
    """One event decided from the force stream.

    ``t_s``: device time (seconds) of the sample that triggered it (for host-time rules,
    the last sample received). ``detection_delay_s``: the estimated time between the cause
    arising and that sample (the lag of the estimate that crossed, the required persistence,
    or for a stale stream the host time waited). ``force_n``: filtered force at ``t_s``.
    ``detail``: rule-specific facts (threshold_n, path, rate_n_per_s, hold times...).
    """

    kind: EventKind
    cause: Cause | None
    t_s: float
    detection_delay_s: float = 0.0
    force_n: float = float("nan")
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (kind and cause as their string values)."""
        return {
            "kind": str(self.kind),
            "cause": None if self.cause is None else str(self.cause),
            "t_s": self.t_s,
            "detection_delay_s": self.detection_delay_s,
            "force_n": self.force_n,
            **({"detail": dict(self.detail)} if self.detail else {}),
        }
