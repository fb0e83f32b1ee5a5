"""The events of a session, typed, and the names of their kinds and causes (DESIGN.md, "One
owner per concept" and "Events and causes").

Every layer names events and causes with ``EventKind`` and ``Cause``; every event is one of
the frozen dataclasses below, one per kind. Producers (the supervisor and hold tracker, the
supervised loop, the routine runner, the faces' commands) make them; listeners, the recorder
and every reader get them; a recording stores their ``to_dict()`` and ``event_from_dict``
reads them back, so a cause written to ``events.jsonl`` reads back as the same member.
``describe_cause`` is the one place a cause is put into words.

The dict form (docs/recording.md) is::

    {"kind": "stop", "cause": "over_limit", "t_s": 68.543, "detection_delay_s": 0.0056,
     "force_n": 8.44, "detail": {"limit_n": 10.0, "path": "fast", ...},
     "unit": "trapezius-squeeze left neck base 1/2", "t_host_s": 2.87}

The common fields are at the top (``cause`` is ``null`` for kinds without one; ``detail`` is
left out when empty; ``unit`` and ``t_host_s`` when not set); the kind's own fields are in
``detail``, under their field names (``StepStarted.step_kind`` is ``detail.kind``). A stop's
or fault's rule-specific facts, and other facts marked optional below, are left out of
``detail`` when they do not apply (None). Reading tolerates fields it does not know (at the
top and in ``detail``), so recordings with more or fewer facts read; a field a kind needs
that is missing is an ``EventFormatError``.

Pure: no I/O, and nothing of ours outside ``dsp``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from enum import StrEnum
from typing import Any, ClassVar, Self, assert_never


class EventKind(StrEnum):
    STEP_STARTED = "step_started"
    STEP_FINISHED = "step_finished"
    STEP_PAUSED = "step_paused"
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
    CLOCK_JUMP = "clock_jump"
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


class StepOutcome(StrEnum):
    """How a routine step ended (``StepFinished.outcome``)."""

    #: done: its hold completed, or its time ran out with the band reached
    COMPLETED = "completed"
    #: the person never pressed into the step's target band (the step ends early)
    BAND_NOT_REACHED = "band_not_reached"
    #: in the band, but no hold lasted its minimum before the step's time ran out
    HOLD_NOT_COMPLETED = "hold_not_completed"
    #: stopped too many times (the routine goes on with the next step)
    STOPPED_TOO_OFTEN = "stopped_too_often"
    #: the session ended during the step (STOP, a symptom, a stop policy, a lost link)
    SESSION_ENDED = "session_ended"


def describe_outcome(outcome: StepOutcome | str | None) -> str:
    """A step's outcome in short words for people (lower case, no full stop)."""
    if not outcome:
        return ""
    try:
        member = StepOutcome(outcome)
    except ValueError:
        return str(outcome).replace("_", " ")
    match member:
        case StepOutcome.COMPLETED:
            return "done"
        case StepOutcome.BAND_NOT_REACHED:
            return "the target band was never reached"
        case StepOutcome.HOLD_NOT_COMPLETED:
            return "no hold lasted long enough"
        case StepOutcome.STOPPED_TOO_OFTEN:
            return "stopped too often: skipped"
        case StepOutcome.SESSION_ENDED:
            return "the session ended during this step"
        case _:
            assert_never(member)


class EventFormatError(ValueError):
    """An event dict that cannot be read: an unknown kind, a missing or malformed field."""


# ---- causes in words ---------------------------------------------------------------------------


def _words(cause: Cause) -> str:
    # a match on every member: mypy (assert_never) and tests/dsp/test_events.py fail when a
    # new Cause has no words here
    match cause:
        case Cause.OVER_LIMIT:
            return "too much pressure for this spot"
        case Cause.RATE_OF_RISE:
            return "pressure rose too fast near the neck"
        case Cause.FORBIDDEN_ZONE_CONTACT:
            return "pressure on the front or side of the neck"
        case Cause.STALE_STREAM:
            return "the device stopped sending data"
        case Cause.SEQ_GAP:
            return "data from the device went missing"
        case Cause.CRC_BURST:
            return "data from the device arrived damaged"
        case Cause.FLATLINE:
            return "the force reading is stuck (a sensor fault?)"
        case Cause.SATURATION:
            return "the force sensor is at the end of its range"
        case Cause.MAX_VIBRATION_TIME:
            return "vibration time for this session is used up"
        case Cause.FIRMWARE_LIMIT:
            return "the device's own pressure limit tripped"
        case Cause.KEEPALIVE_LOST:
            return "the device lost contact with this computer and stopped"
        case Cause.LINK_LOST:
            return "the connection to the device was lost"
        case Cause.USER_STOP:
            return "stopped by you"
        case Cause.USER_REPORTED_SYMPTOM:
            return "you reported pain, dizziness or tingling"
        case _:
            assert_never(cause)


def describe_cause(cause: Cause | str | None) -> str:
    """A stop or fault cause in short words for people (lower case, no full stop: faces put
    it after "STOPPED: " or capitalise it). Accepts a ``Cause``, its value, or another
    alarm text (e.g. "internal error", shown with spaces for underscores); None or "": ""."""
    if not cause:
        return ""
    try:
        member = Cause(cause)
    except ValueError:
        return str(cause).replace("_", " ")
    return _words(member)


# ---- typed events ------------------------------------------------------------------------------

#: Field metadata: an optional fact, left out of ``detail`` when None.
_FACT: Mapping[str, Any] = {"omit_none": True}
#: Field metadata: a tuple of numbers (a list in the dict).
_TUPLE: Mapping[str, Any] = {"tuple": True}


def _reads_as(value: Any, **more: Any) -> dict[str, Any]:
    """Field metadata: required when an event is made, read as ``value`` from an older
    recording that does not have it."""
    return {"read_default": value, **more}


#: Fields at the top of the dict, not in ``detail``.
_HEAD = ("t_s", "force_n", "detection_delay_s", "unit", "t_host_s", "cause")


@dataclass(frozen=True, kw_only=True)
class Event:
    """What every event has.

    ``t_s``: device time (seconds, unwrapped) of the sample it belongs to (for host-time
    rules and the loop's own events, the last sample received). ``force_n``: filtered force
    at ``t_s`` (NaN when none). ``detection_delay_s``: for a decision of the supervisor or
    the hold tracker, the estimated time between the cause arising and ``t_s`` (the lag of
    the estimate that crossed, the required persistence, the host time waited); 0.0 for
    events that are not decisions. ``unit``: the routine unit (step, side, position,
    repetition) it belongs to, set by the supervised loop's context. ``t_host_s``: host
    seconds since the loop (or the recorder, which restamps it) started.
    """

    kind: ClassVar[EventKind]
    t_s: float
    force_n: float = math.nan
    detection_delay_s: float = 0.0
    unit: str | None = None
    t_host_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The plain, JSON-ready form (enums as their values; NaN stays NaN: the recorder
        writes it as null)."""
        cause = getattr(self, "cause", None)
        out: dict[str, Any] = {
            "kind": str(self.kind),
            "cause": None if cause is None else str(cause),
            "t_s": self.t_s,
            "detection_delay_s": self.detection_delay_s,
            "force_n": self.force_n,
        }
        detail: dict[str, Any] = {}
        for f in _own_fields(type(self)):
            value = getattr(self, f.name)
            if value is None and f.metadata.get("omit_none"):
                continue
            if value is None and f.metadata.get("empty_is_none"):
                value = []
            detail[f.metadata.get("key", f.name)] = _plain(value)
        if detail:
            out["detail"] = detail
        if self.unit is not None:
            out["unit"] = self.unit
        if self.t_host_s is not None:
            out["t_host_s"] = self.t_host_s
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        """Read the dict form of this kind (unknown fields are ignored; EventFormatError
        when the kind differs or a needed field is missing or malformed)."""
        if d.get("kind") != cls.kind.value:
            raise EventFormatError(f"not a {cls.kind} event: kind {d.get('kind')!r}")
        detail = d.get("detail") or {}
        if not isinstance(detail, Mapping):
            raise EventFormatError(f"{cls.kind}: detail is not an object")
        unit = d.get("unit")
        if unit is not None and not isinstance(unit, str):
            raise EventFormatError(f"{cls.kind}: unit must be a string, got {_short(unit)}")
        kwargs: dict[str, Any] = {
            "t_s": _number(cls.kind, "t_s", d.get("t_s"), None),
            "force_n": _number(cls.kind, "force_n", d.get("force_n"), math.nan),
            "detection_delay_s": _number(
                cls.kind, "detection_delay_s", d.get("detection_delay_s"), 0.0
            ),
            "unit": unit,
            "t_host_s": None
            if d.get("t_host_s") is None
            else _number(cls.kind, "t_host_s", d["t_host_s"], None),
        }
        names = {f.name: f for f in fields(cls)}
        if "cause" in names and d.get("cause") is not None:
            try:
                kwargs["cause"] = Cause(d["cause"])
            except ValueError:
                raise EventFormatError(f"{cls.kind}: unknown cause {_short(d['cause'])}") from None
        elif "cause" in names and not _has_default(names["cause"]):
            raise EventFormatError(f"a {cls.kind} event needs a cause")
        for f in _own_fields(cls):
            key = f.metadata.get("key", f.name)
            if key in detail:
                kwargs[f.name] = _decode(cls.kind, key, f, detail[key])
            elif _has_default(f):
                continue
            elif "read_default" in f.metadata:
                kwargs[f.name] = f.metadata["read_default"]
            else:
                raise EventFormatError(f"a {cls.kind} event needs detail.{key}")
        return cls(**kwargs)


def _own_fields(cls: type[Event]) -> tuple[Field[Any], ...]:
    """The fields of a kind that go into ``detail``, in declaration order."""
    return tuple(f for f in fields(cls) if f.name not in _HEAD)


def _has_default(f: Field[Any]) -> bool:
    return f.default is not MISSING or f.default_factory is not MISSING


def _plain(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _is_number(value: Any) -> bool:
    """A real number that a float can hold (not a boolean, not a 400-digit integer)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, float) or abs(value) < 2**1023


def _number(kind: EventKind, name: str, value: Any, default: float | None) -> float:
    if value is None and default is not None:
        return default
    if not _is_number(value):
        raise EventFormatError(f"a {kind} event needs a number {name}, got {_short(value)}")
    return float(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


#: What a detail field's annotation accepts (after "| None" is taken off).
_CHECKS: dict[str, tuple[str, Any]] = {
    "str": ("a string", lambda v: isinstance(v, str)),
    "float": ("a number", _is_number),
    "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "dict[str, Any]": ("an object", lambda v: isinstance(v, Mapping)),
}


def _decode(kind: EventKind, key: str, f: Field[Any], value: Any) -> Any:
    if f.metadata.get("tuple") or f.metadata.get("empty_is_none"):
        if value is None or (f.metadata.get("empty_is_none") and value == []):
            return None
        if (
            not isinstance(value, list | tuple)
            or len(value) != 2
            or not all(_is_number(v) and math.isfinite(v) for v in value)
        ):
            raise EventFormatError(
                f"{kind}: detail.{key} is not two finite numbers [low, high]: {_short(value)}"
            )
        return tuple(float(v) for v in value)
    annotation = str(f.type)
    optional = annotation.endswith(" | None")
    if value is None:
        if optional:
            return None
        raise EventFormatError(f"{kind}: detail.{key} must not be null")
    base = annotation.removesuffix(" | None")
    what, ok = _CHECKS.get(base, ("", None))
    if ok is None:
        return value
    if not ok(value):
        raise EventFormatError(f"{kind}: detail.{key} must be {what}, got {_short(value)}")
    if base == "float":
        return float(value)
    if base == "dict[str, Any]":
        return dict(value)
    return value


@dataclass(frozen=True, kw_only=True)
class StepStarted(Event):
    """A step starts: from ``t_s`` on, force is judged in ``zone`` against ``limit_n`` with
    the target band ``band_n`` and hold timing, and the vibration below plays.

    One field set for every producer (the routine runner: a unit; ``massagectl vibrate``:
    step and kind ``"vibrate"``; ``stream --record``: step and kind ``"stream"``), every field
    always in the dict (null where it does not apply):

    ``step`` the step id; ``step_kind`` (``detail.kind``) the routine's step kind
    (``press_and_hold``, ``timed_pressure``, ``stretch``, ``cue``, ``aftercare``...) or
    ``vibrate`` / ``stream``; ``zone`` its zone name; ``limit_n`` the limit in force (a
    profile may have lowered it); ``band_n`` the target band (lo, hi) N or None (``[]`` in the
    dict); ``side`` ``left`` / ``right`` / ``none``; ``vibration_pct`` the pattern's intensity
    as asked (0: off; the zone's cap applies on top); ``pattern`` its name or None;
    ``motor_hz`` the motor frequency commanded, or None without vibration; ``hold_min_s``,
    ``hold_max_s``, ``release_s`` a press-and-hold step's hold timing (None otherwise).
    Recordings made before this set had fewer fields: those read as none / 0 / None.
    """

    kind: ClassVar[EventKind] = EventKind.STEP_STARTED
    step: str
    step_kind: str = field(metadata={"key": "kind"})
    zone: str
    limit_n: float
    band_n: tuple[float, float] | None = field(metadata=_reads_as(None, empty_is_none=True))
    side: str = field(metadata=_reads_as("none"))
    vibration_pct: float = field(metadata=_reads_as(0.0))
    pattern: str | None = field(metadata=_reads_as(None))
    motor_hz: float | None = field(metadata=_reads_as(None))
    hold_min_s: float | None = field(metadata=_reads_as(None))
    hold_max_s: float | None = field(metadata=_reads_as(None))
    release_s: float | None = field(metadata=_reads_as(None))


@dataclass(frozen=True, kw_only=True)
class StepFinished(Event):
    """A step ends: ``completed`` or not, after ``restarts`` restarts, with its ``outcome``
    (a ``StepOutcome`` value; None in recordings made before it). From here on no band is
    in force; the zone stays until the next step starts. ``paused``: only in recordings made
    before ``step_paused`` existed, where a pause was written as a step_finished.
    ``time_in_band_s`` (filtered force inside the step's band) and ``peak_n`` (filtered
    force) are the unit's, counted from its start (restarts and pauses included); None from
    producers that do not measure them (older recordings)."""

    kind: ClassVar[EventKind] = EventKind.STEP_FINISHED
    step: str
    completed: bool
    restarts: int = 0
    outcome: str | None = field(default=None, metadata=_FACT)
    paused: bool = False
    time_in_band_s: float | None = field(default=None, metadata=_FACT)
    peak_n: float | None = field(default=None, metadata=_FACT)


@dataclass(frozen=True, kw_only=True)
class StepPaused(Event):
    """The person paused a step: vibration stops, no band is in force (no hold, no time in
    band) while supervision goes on in the step's zone; on resume the same step starts over
    (a new ``step_started``). The pause belongs to the step: it is not a ``step_finished``."""

    kind: ClassVar[EventKind] = EventKind.STEP_PAUSED
    step: str


@dataclass(frozen=True, kw_only=True)
class HoldStarted(Event):
    """Filtered force entered the target band ``band_n`` (lo, hi) N: a hold starts at ``t_s``."""

    kind: ClassVar[EventKind] = EventKind.HOLD_STARTED
    band_n: tuple[float, float] = field(metadata=_TUPLE)


@dataclass(frozen=True, kw_only=True)
class HoldReachedMin(Event):
    """The hold has lasted its minimum ``hold_s`` seconds."""

    kind: ClassVar[EventKind] = EventKind.HOLD_REACHED_MIN
    hold_s: float


@dataclass(frozen=True, kw_only=True)
class HoldPassedMax(Event):
    """The hold has lasted its maximum ``hold_s`` seconds: time to release."""

    kind: ClassVar[EventKind] = EventKind.HOLD_PASSED_MAX
    hold_s: float


@dataclass(frozen=True, kw_only=True)
class HoldEnded(Event):
    """A hold ended: in the band from ``start_s`` to ``end_s`` (``duration_s``; dips under the
    tolerance included); ``reached_min`` it lasted the minimum. ``t_s`` is when the end was
    confirmed (``detection_delay_s`` after ``end_s``). ``interrupted`` names why it was cut
    short (``"stream_restart"``: a reconnect), None otherwise."""

    kind: ClassVar[EventKind] = EventKind.HOLD_ENDED
    start_s: float
    end_s: float
    duration_s: float
    reached_min: bool
    interrupted: str | None = field(default=None, metadata=_FACT)


@dataclass(frozen=True, kw_only=True)
class FastRelease(Event):
    """A release faster than allowed: ``release_s`` (the time a steady release at the pace
    measured takes from the hold level to zero) under ``release_min_s``; measured over
    ``measured_s`` from ``from_s``, from the hold level ``hold_level_n``."""

    kind: ClassVar[EventKind] = EventKind.FAST_RELEASE
    release_s: float
    release_min_s: float
    from_s: float = field(metadata=_reads_as(math.nan))
    measured_s: float = field(metadata=_reads_as(math.nan))
    hold_level_n: float | None = field(metadata=_reads_as(None))


@dataclass(frozen=True, kw_only=True)
class Warning(Event):  # the kind's name: it shadows the builtin where imported
    """Filtered force reached ``warning_n`` (80 % of ``limit_n``)."""

    kind: ClassVar[EventKind] = EventKind.WARNING
    warning_n: float
    limit_n: float


@dataclass(frozen=True, kw_only=True)
class Reduce(Event):
    """Vibration must come down to ``intensity_pct``: ``reason`` ``"warning"`` (near the
    limit) or ``"zone_cap"`` (over ``zone``'s cap)."""

    kind: ClassVar[EventKind] = EventKind.REDUCE
    intensity_pct: float
    reason: str
    zone: str | None = field(default=None, metadata=_FACT)


@dataclass(frozen=True, kw_only=True)
class Stop(Event):
    """A latched stop: vibration stays off until re-armed. ``cause`` says why; the facts of
    the rule that decided follow (None, and left out of the dict, where they do not apply).
    """

    kind: ClassVar[EventKind] = EventKind.STOP
    cause: Cause
    #: over_limit, rate_of_rise, forbidden_zone_contact: the zone's limit then
    limit_n: float | None = field(default=None, metadata=_FACT)
    #: over_limit: "fast" or "filtered", the force estimate that crossed first, and the fast one
    path: str | None = field(default=None, metadata=_FACT)
    fast_n: float | None = field(default=None, metadata=_FACT)
    #: rate_of_rise: how fast the fast force rose
    rate_n_per_s: float | None = field(default=None, metadata=_FACT)
    #: forbidden_zone_contact: the zone touched
    zone: str | None = field(default=None, metadata=_FACT)
    #: max_vibration_time: vibration so far and the allowance
    vibration_s: float | None = field(default=None, metadata=_FACT)
    max_vibration_s: float | None = field(default=None, metadata=_FACT)
    #: force rules: the supervisor's commanded vibration was on; "ease_off" when it was not
    vibrating: bool | None = field(default=None, metadata=_FACT)
    advice: str | None = field(default=None, metadata=_FACT)
    #: an over-limit found while another stop was already latched
    already_latched: bool | None = field(default=None, metadata=_FACT)
    #: set by the supervised loop: a pattern was running (a pulse's off phase counts)
    was_vibrating: bool | None = field(default=None, metadata=_FACT)
    #: user_reported_symptom: what the person reported
    symptom: str | None = field(default=None, metadata=_FACT)
    #: "none" on a device without a motor (monitor mode): the alarm was raised, nothing
    #: was stopped
    motor: str | None = field(default=None, metadata=_FACT)


@dataclass(frozen=True, kw_only=True)
class Fault(Event):
    """A latched fault: the signal or the link is broken. ``cause`` None: the safety loop
    itself failed (``error`` says how). Facts as for ``Stop``."""

    kind: ClassVar[EventKind] = EventKind.FAULT
    cause: Cause | None = None
    #: stale_stream: host seconds waited, and the allowance
    waited_s: float | None = field(default=None, metadata=_FACT)
    stale_after_s: float | None = field(default=None, metadata=_FACT)
    #: seq_gap: batches lost at once, the data time lost, gaps within 1 s
    missing_batches: int | None = field(default=None, metadata=_FACT)
    blind_s: float | None = field(default=None, metadata=_FACT)
    gaps_1s: int | None = field(default=None, metadata=_FACT)
    #: crc_burst: CRC errors within 1 s
    crc_errors_1s: int | None = field(default=None, metadata=_FACT)
    #: flatline, saturation: the raw reading
    raw_counts: float | None = field(default=None, metadata=_FACT)
    #: link_lost and a failed loop: what went wrong; gave_up: a reconnecting session gave up
    error: str | None = field(default=None, metadata=_FACT)
    gave_up: bool | None = field(default=None, metadata=_FACT)
    #: set by the supervised loop, as for Stop
    was_vibrating: bool | None = field(default=None, metadata=_FACT)


@dataclass(frozen=True, kw_only=True)
class Rearmed(Event):
    """A latched stop or fault was re-armed (force eased off for long enough)."""

    kind: ClassVar[EventKind] = EventKind.REARMED


@dataclass(frozen=True, kw_only=True)
class LinkLost(Event):
    """The link to the device was lost (``error``). ``reconnecting``: a reconnecting session
    tries again (loss number ``count``); otherwise the loop ends."""

    kind: ClassVar[EventKind] = EventKind.LINK_LOST
    cause: Cause = Cause.LINK_LOST
    error: str | None = field(metadata=_reads_as(None))
    count: int | None = field(default=None, metadata=_FACT)
    reconnecting: bool | None = field(default=None, metadata=_FACT)


@dataclass(frozen=True, kw_only=True)
class LinkRestored(Event):
    """The link is back after loss number ``count``: ``gap_s`` host seconds, ``attempts``."""

    kind: ClassVar[EventKind] = EventKind.LINK_RESTORED
    count: int
    gap_s: float
    attempts: int


@dataclass(frozen=True, kw_only=True)
class ClockJump(Event):
    """The device's clock jumped by ``jump_s`` seconds (negative: back) against its batch
    sequence; jump number ``count`` of the session. Device time on the host (``t_s``) does
    not show it: it runs on where the sequence puts it."""

    kind: ClassVar[EventKind] = EventKind.CLOCK_JUMP
    jump_s: float
    count: int


@dataclass(frozen=True, kw_only=True)
class CommandSent(Event):
    """A command went to the device: ``"vibrate"`` (``intensity_pct``, ``frequency_hz``;
    0 % is sent as a stop of the motor), ``"play_pattern"`` (a version 3 device plays
    ``pattern`` itself, at most ``intensity_pct``: the step's intensity capped by the zone),
    ``"stop"``, or ``"auto_zero"`` (the host re-zeroed its calibration: ``offset_counts``)."""

    kind: ClassVar[EventKind] = EventKind.COMMAND_SENT
    command: str
    intensity_pct: float | None = field(default=None, metadata=_FACT)
    frequency_hz: float | None = field(default=None, metadata=_FACT)
    offset_counts: float | None = field(default=None, metadata=_FACT)
    pattern: str | None = field(default=None, metadata=_FACT)


@dataclass(frozen=True, kw_only=True)
class Screening(Event):
    """The screening before the session: ``passed``, and its ``record`` (as in
    session.json)."""

    kind: ClassVar[EventKind] = EventKind.SCREENING
    passed: bool
    record: dict[str, Any] = field(default_factory=dict)


#: The type of each kind.
EVENT_TYPES: Mapping[EventKind, type[Event]] = {
    cls.kind: cls
    for cls in (
        StepStarted,
        StepFinished,
        StepPaused,
        HoldStarted,
        HoldReachedMin,
        HoldPassedMax,
        HoldEnded,
        FastRelease,
        Warning,
        Reduce,
        Stop,
        Fault,
        Rearmed,
        LinkLost,
        LinkRestored,
        ClockJump,
        CommandSent,
        Screening,
    )
}
if set(EVENT_TYPES) != set(EventKind):  # pragma: no cover - a new kind needs its type
    raise RuntimeError(f"event kinds without a type: {set(EventKind) - set(EVENT_TYPES)}")


def event_from_dict(d: Mapping[str, Any]) -> Event:
    """The typed event of a dict (``Event.to_dict`` or a line of ``events.jsonl``), by its
    ``kind``. Unknown fields are ignored; EventFormatError for an unknown kind or a needed
    field missing or malformed."""
    try:
        kind = EventKind(str(d.get("kind")))
    except ValueError:
        raise EventFormatError(f"unknown event kind {_short(d.get('kind'))}") from None
    return EVENT_TYPES[kind].from_dict(d)
