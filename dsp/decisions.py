"""The supervisor's states. What the supervisor and the hold tracker decide are typed events
(``dsp.events``: Stop, Fault, Warning, Reduce, Rearmed, HoldStarted, ...)."""

from __future__ import annotations

from enum import StrEnum


class SafetyState(StrEnum):
    """ARMED: all clear. WARNING: filtered force at or over 80 % of the limit.
    STOPPED: a latched stop (force rules, vibration time). FAULT: a latched fault (signal or
    link broken); FAULT wins over STOPPED when both apply."""

    ARMED = "armed"
    WARNING = "warning"
    STOPPED = "stopped"
    FAULT = "fault"
