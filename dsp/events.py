"""The one list of event kinds and stop/fault causes (DESIGN.md, "Events and causes").

Every layer (supervisor, runner, recording, UI) names events and causes with these enums, so
a cause written to ``events.jsonl`` reads back as the same member.
"""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    STEP_STARTED = "step_started"
    STEP_FINISHED = "step_finished"
    HOLD_STARTED = "hold_started"
    HOLD_REACHED_MIN = "hold_reached_min"
    HOLD_PASSED_MAX = "hold_passed_max"
    HOLD_ENDED = "hold_ended"
    FAST_RELEASE = "fast_release"
    WARNING = "warning"
    REDUCE = "reduce"
    STOP = "stop"
    FAULT = "fault"
    REARMED = "rearmed"
    LINK_LOST = "link_lost"
    LINK_RESTORED = "link_restored"
    COMMAND_SENT = "command_sent"
    SCREENING = "screening"


class Cause(StrEnum):
    OVER_LIMIT = "over_limit"
    RATE_OF_RISE = "rate_of_rise"
    FORBIDDEN_ZONE_CONTACT = "forbidden_zone_contact"
    STALE_STREAM = "stale_stream"
    SEQ_GAP = "seq_gap"
    CRC_BURST = "crc_burst"
    FLATLINE = "flatline"
    SATURATION = "saturation"
    MAX_VIBRATION_TIME = "max_vibration_time"
    FIRMWARE_LIMIT = "firmware_limit"
    KEEPALIVE_LOST = "keepalive_lost"
    LINK_LOST = "link_lost"
    USER_STOP = "user_stop"
    USER_REPORTED_SYMPTOM = "user_reported_symptom"


#: Causes that describe a broken signal or link rather than too much force: they are faults.
FAULT_CAUSES = frozenset(
    {
        Cause.STALE_STREAM,
        Cause.SEQ_GAP,
        Cause.CRC_BURST,
        Cause.FLATLINE,
        Cause.SATURATION,
        Cause.KEEPALIVE_LOST,
        Cause.LINK_LOST,
    }
)
