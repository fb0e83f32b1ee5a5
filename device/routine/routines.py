"""Guided routines as data: the TOML format (docs/routines.md), its validation, and the
built-in routines shipped in ``device/routine/builtin/``.

A routine is a list of steps. Each step is parsed into a frozen dataclass and validated
against the zone table (``dsp.zones``): a target band above 80 % of the (possibly lowered)
limit, vibration above the zone's cap, pressure on the front or side of the neck, a stretch
with vibration, an unknown field or a wrong type are rejected with a ``RoutineError`` whose
message names the file, the step and the field.

The runner walks ``Routine.units()``: one ``StepUnit`` per concrete thing to do (a step at
one side, one position, one repetition) carrying its effective zone, limit and band, so it
never has to recompute them.

Public API: ``load_routine(name_or_path, zones=None)``, ``parse_routine(text, origin,
zones=None)``, ``builtin_names()``, ``builtin_path(name)``, the dataclasses ``Routine``,
``Step``, ``Position``, ``Vibration``, ``ResumePolicy``, ``StepUnit`` and the enums
``StepKind``, ``Technique``, ``Side``, ``ResumeKind``, ``RoutineMode``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Literal, overload

from device.datafile import loads_toml, read_text
from device.errors import RoutineError
from dsp.zones import BAND_MAX_FRACTION, DEFAULT_ZONES, UnknownZoneError, Zone, get_zone, with_limit

#: The routine file format this module reads.
FORMAT_VERSION = 1
#: A squeeze (or any pressure) must be let go over at least this long: a slow release.
MIN_RELEASE_S = 2.0
#: The longest hold, cue or rest accepted: longer is almost surely minutes typed as seconds.
MAX_DURATION_S = 600.0
MAX_REPETITIONS = 20
#: Vibration pattern names; the patterns themselves are the vibration module's business.
VIBRATION_PATTERNS = ("constant", "pulse", "wave", "ramp", "knead")
#: Placeholders an instruction may use; filled per side by ``StepUnit.instruction``.
INSTRUCTION_FIELDS = ("side", "opposite")

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class StepKind(StrEnum):
    CUE = "cue"
    PRESS_AND_HOLD = "press_and_hold"
    TIMED_PRESSURE = "timed_pressure"
    STRETCH = "stretch"
    AFTERCARE = "aftercare"

    @property
    def applies_pressure(self) -> bool:
        return self in (StepKind.PRESS_AND_HOLD, StepKind.TIMED_PRESSURE)


class Technique(StrEnum):
    """How the pressure of a timed_pressure step moves (for the instruction and plots)."""

    CIRCLES = "circles"
    ROLLING = "rolling"
    SUSTAINED = "sustained"
    #: Long gliding strokes (partner mode).
    STROKES = "strokes"


class Side(StrEnum):
    LEFT = "left"
    RIGHT = "right"
    BOTH = "both"
    NONE = "none"

    @property
    def concrete(self) -> tuple[Side, ...]:
        """The sides a unit is done on, in order: both = left, then right."""
        if self is Side.BOTH:
            return (Side.LEFT, Side.RIGHT)
        return (self,)


class ResumeKind(StrEnum):
    #: After a stop, ask the user whether to go on (the default).
    ASK = "ask"
    #: Go on by itself once force has stayed under the reset threshold, then ``after_s``.
    AUTO_AFTER_RESET = "auto_after_reset"
    #: A stop ends the routine.
    END = "end"


class RoutineMode(StrEnum):
    SELF = "self"
    #: Someone else holds the device: live pressure is shown large, for both people.
    PARTNER = "partner"


@dataclass(frozen=True)
class ResumePolicy:
    kind: ResumeKind = ResumeKind.ASK
    #: For AUTO_AFTER_RESET: seconds to wait once the stop has reset. None otherwise.
    after_s: float | None = None


@dataclass(frozen=True)
class Vibration:
    """A step's vibration: pattern None means off (intensity then 0)."""

    pattern: str | None = None
    intensity_pct: float = 0.0

    @property
    def is_on(self) -> bool:
        return self.pattern is not None and self.intensity_pct > 0


VIBRATION_OFF = Vibration()


@dataclass(frozen=True)
class Position:
    """Where on the body a pressure step presses. Unset fields fall back to the step's."""

    name: str | None
    zone: str
    band_n: tuple[float, float] | None
    limit_n: float | None
    intensity_pct: float | None = None
    instruction: str | None = None


@dataclass(frozen=True)
class Step:
    index: int  # 1-based, as shown to people and in error messages
    id: str
    kind: StepKind
    title: str
    instruction: str
    #: cue and aftercare: how long the text is shown (the user may go on sooner).
    duration_s: float | None = None
    technique: Technique | None = None
    #: The step's own zone (positions may each name another).
    zone: str | None = None
    band_n: tuple[float, float] | None = None
    limit_n: float | None = None
    hold_min_s: float | None = None
    hold_max_s: float | None = None
    #: Pressure steps: shortest allowed release (slower is fine). Stretch: slow return time.
    release_s: float | None = None
    repetitions: int = 1
    sides: Side = Side.NONE
    positions: tuple[Position, ...] = ()
    rest_s: float = 0.0
    vibration: Vibration = VIBRATION_OFF
    resume: ResumePolicy = ResumePolicy()

    @property
    def applies_pressure(self) -> bool:
        return self.kind.applies_pressure

    @property
    def nominal_hold_s(self) -> float:
        """The middle of the hold range (0 for cue and aftercare)."""
        if self.hold_min_s is None or self.hold_max_s is None:
            return 0.0
        return (self.hold_min_s + self.hold_max_s) / 2

    def units(self, zones: Mapping[str, Zone] | None = None) -> tuple[StepUnit, ...]:
        """Every concrete unit of this step, in the order the runner does them:
        for each side (both = left then right), each repetition sweeps the positions in
        order. A step without positions has one implicit position at its own zone."""
        table = DEFAULT_ZONES if zones is None else zones
        positions = self.positions or (
            (Position(None, self.zone, self.band_n, self.limit_n),)
            if self.zone is not None
            else (None,)
        )
        out: list[StepUnit] = []
        for side in self.sides.concrete:
            for rep in range(1, self.repetitions + 1):
                for pos in positions:
                    out.append(_make_unit(self, side, pos, rep, len(out), table))
        return tuple(out)

    def display_instruction(self) -> str:
        """The instruction with its side placeholders filled for a listing (both sides)."""
        return fill_instruction(self.instruction, self.sides)

    def approx_duration_s(self) -> float:
        """Routine time of the step: cue/aftercare duration, or per unit the nominal hold
        plus the release, with the rest between units."""
        if self.kind in (StepKind.CUE, StepKind.AFTERCARE):
            return float(self.duration_s or 0.0)
        n = len(self.units())
        per_unit = self.nominal_hold_s + (self.release_s or 0.0)
        return n * per_unit + max(0, n - 1) * self.rest_s


@dataclass(frozen=True)
class StepUnit:
    """One concrete thing to do: a step at one side, position and repetition.

    ``zone`` is the zone with its effective limit already applied (feed it to the
    supervisor as is); ``band_n`` is None for steps without pressure.
    """

    step: Step
    #: 0-based position of the unit within its step.
    index: int
    side: Side
    position: Position | None
    repetition: int
    zone: Zone
    limit_n: float
    band_n: tuple[float, float] | None
    vibration: Vibration

    @property
    def zone_name(self) -> str:
        return self.zone.name

    @property
    def instruction(self) -> str:
        """The step's instruction (and the position's, if any) for this side."""
        text = self.step.instruction
        if self.position is not None and self.position.instruction:
            text = f"{text} {self.position.instruction}"
        return fill_instruction(text, self.side)

    @property
    def label(self) -> str:
        """A short name for progress lines, e.g. "trapezius-squeeze left, shoulder 1/2"."""
        parts = [self.step.id]
        if self.side is not Side.NONE:
            parts.append(self.side.value)
        if self.position is not None and self.position.name:
            parts.append(self.position.name)
        if self.step.repetitions > 1:
            parts.append(f"{self.repetition}/{self.step.repetitions}")
        return " ".join(parts)


@dataclass(frozen=True)
class Routine:
    name: str
    title: str
    summary: str
    mode: RoutineMode
    steps: tuple[Step, ...]
    #: Where it was read from (a path, or "builtin:NAME").
    origin: str

    def units(self, zones: Mapping[str, Zone] | None = None) -> Iterator[StepUnit]:
        """All units of all steps, in order."""
        for step in self.steps:
            yield from step.units(zones)

    def approx_duration_s(self) -> float:
        return sum(s.approx_duration_s() for s in self.steps)

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)


def fill_instruction(text: str, side: Side) -> str:
    """Fill {side} and {opposite}; for BOTH (display only) name the order of the sides."""
    words = {
        Side.LEFT: ("left", "right"),
        Side.RIGHT: ("right", "left"),
        Side.BOTH: ("left (then right)", "right (then left)"),
        Side.NONE: ("", "other"),
    }[side]
    return text.format(side=words[0], opposite=words[1])


def _make_unit(
    step: Step,
    side: Side,
    pos: Position | None,
    rep: int,
    index: int,
    table: Mapping[str, Zone],
) -> StepUnit:
    zone = get_zone(pos.zone if pos is not None else step.zone, dict(table))
    limit_n = zone.limit_n
    if pos is not None and pos.limit_n is not None:
        limit_n = pos.limit_n
    if limit_n != zone.limit_n:
        zone, _ = with_limit(zone, limit_n)
    vibration = step.vibration
    if pos is not None and pos.intensity_pct is not None and vibration.pattern is not None:
        vibration = Vibration(vibration.pattern, pos.intensity_pct)
    return StepUnit(
        step=step,
        index=index,
        side=side,
        position=pos,
        repetition=rep,
        zone=zone,
        limit_n=zone.limit_n,
        band_n=pos.band_n if pos is not None else None,
        vibration=vibration,
    )


# ---------------------------------------------------------------- parsing and validation

_ROUTINE_FIELDS = {"format", "name", "title", "summary", "mode", "resume", "steps"}
_COMMON = {"id", "kind", "title", "instruction"}
_PRESSURE = {
    "zone",
    "band_n",
    "limit_n",
    "hold_min_s",
    "hold_max_s",
    "release_s",
    "repetitions",
    "sides",
    "positions",
    "rest_s",
    "vibration",
    "resume",
}
_STEP_FIELDS: dict[StepKind, set[str]] = {
    StepKind.CUE: _COMMON | {"duration_s"},
    StepKind.AFTERCARE: _COMMON | {"duration_s"},
    StepKind.PRESS_AND_HOLD: _COMMON | _PRESSURE,
    StepKind.TIMED_PRESSURE: _COMMON | _PRESSURE | {"technique"},
    StepKind.STRETCH: _COMMON
    | {"zone", "hold_min_s", "hold_max_s", "release_s", "repetitions", "sides", "rest_s"}
    | {"resume"},
}
_POSITION_FIELDS = {"name", "zone", "band_n", "limit_n", "intensity_pct", "instruction"}
_VIBRATION_FIELDS = {"pattern", "intensity_pct"}
_RESUME_FIELDS = {"policy", "after_s"}


class _Ctx:
    """Where we are in the file, for error messages: file, step, field."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.step: str | None = None

    def error(self, field: str | None, message: str) -> RoutineError:
        where = [self.origin]
        if self.step is not None:
            where.append(self.step)
        if field is not None:
            where.append(f"field '{field}'")
        return RoutineError(f"{': '.join(where)}: {message}")


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), "a " + type(value).__name__
    )


def _check_fields(ctx: _Ctx, table: dict, allowed: set[str], prefix: str, what: str) -> None:
    for key in table:
        if key not in allowed:
            raise ctx.error(
                prefix + key,
                f"unknown field for {what} (allowed: {', '.join(sorted(allowed))})",
            )


# The overloads tell the type checker that a required field is never None (missing, it raises).
@overload
def _str(ctx: _Ctx, table: dict, key: str, field: str, *, required: Literal[True]) -> str: ...
@overload
def _str(ctx: _Ctx, table: dict, key: str, field: str, *, required: bool) -> str | None: ...
def _str(ctx: _Ctx, table: dict, key: str, field: str, *, required: bool) -> str | None:
    if key not in table:
        if required:
            raise ctx.error(field, "is required")
        return None
    value = table[key]
    if not isinstance(value, str):
        raise ctx.error(field, f"must be a string, not {_type_name(value)}")
    if not value.strip():
        raise ctx.error(field, "must not be empty")
    return value.strip()


@overload
def _num(
    ctx: _Ctx,
    table: dict,
    key: str,
    field: str,
    *,
    required: Literal[True],
    minimum: float = ...,
    strict: bool = ...,
    maximum: float | None = ...,
    unit: str = ...,
) -> float: ...
@overload
def _num(
    ctx: _Ctx,
    table: dict,
    key: str,
    field: str,
    *,
    required: bool = ...,
    minimum: float = ...,
    strict: bool = ...,
    maximum: float | None = ...,
    unit: str = ...,
) -> float | None: ...
def _num(
    ctx: _Ctx,
    table: dict,
    key: str,
    field: str,
    *,
    required: bool = False,
    minimum: float = 0.0,
    strict: bool = False,
    maximum: float | None = None,
    unit: str = "",
) -> float | None:
    if key not in table:
        if required:
            raise ctx.error(field, "is required")
        return None
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ctx.error(
            field, f"must be a number{unit and ' (' + unit + ')'}, not {_type_name(value)}"
        )
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ctx.error(field, "must be a finite number")
    if (strict and value <= minimum) or value < minimum:
        bound = "greater than" if strict else "at least"
        raise ctx.error(field, f"must be {bound} {minimum:g}{unit and ' ' + unit}, got {value:g}")
    if maximum is not None and value > maximum:
        raise ctx.error(field, f"must be at most {maximum:g}{unit and ' ' + unit}, got {value:g}")
    return value


def _enum(ctx: _Ctx, table: dict, key: str, field: str, enum: type[StrEnum], default: Any) -> Any:
    if key not in table:
        return default
    value = table[key]
    choices = [m.value for m in enum]
    if not isinstance(value, str) or value not in choices:
        raise ctx.error(field, f"must be one of {', '.join(choices)}, got {value!r}")
    return enum(value)


def _band(ctx: _Ctx, table: dict, key: str, field: str) -> tuple[float, float] | None:
    if key not in table:
        return None
    value = table[key]
    if (
        not isinstance(value, list)
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, int | float) for v in value)
    ):
        raise ctx.error(field, f"must be two numbers [low, high] in N, got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if not 0 <= lo < hi:
        raise ctx.error(field, f"needs 0 <= low < high, got [{lo:g}, {hi:g}] N")
    return (lo, hi)


def _instruction(ctx: _Ctx, text: str | None, field: str, sides: Side) -> None:
    """Placeholders must be known, and only used by a step that has a side."""
    if text is None:
        return
    try:
        parts = [(f, spec) for _, f, spec, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise ctx.error(field, f"bad placeholder: {exc} (write {{{{ for a brace)") from None
    for name, spec in parts:
        if name not in INSTRUCTION_FIELDS:
            raise ctx.error(
                field,
                f"unknown placeholder {{{name}}} (known: "
                + ", ".join("{" + f + "}" for f in INSTRUCTION_FIELDS)
                + ")",
            )
        if sides is Side.NONE:
            raise ctx.error(field, f"uses {{{name}}} but the step has no side (sides = none)")
        if spec and "{" in spec:
            raise ctx.error(field, f"placeholder {{{name}:{spec}}}: no placeholder in a format")
    # The format specs and conversions ({side:d}, {side!z}) are checked by filling the text
    # the way the runner and the listings will, for every side it can be done on.
    for side in (*sides.concrete, sides):
        try:
            fill_instruction(text, side)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise ctx.error(
                field, f"bad placeholder: {exc} (the sides are words: {{side}}, {{opposite}})"
            ) from None


def _resume(ctx: _Ctx, value: Any, field: str) -> ResumePolicy:
    table = {"policy": value} if isinstance(value, str) else value
    if not isinstance(table, dict):
        raise ctx.error(field, f"must be a policy name or a table, not {_type_name(value)}")
    _check_fields(ctx, table, _RESUME_FIELDS, field + ".", "resume")
    kind = _enum(ctx, table, "policy", field + ".policy", ResumeKind, None)
    if kind is None:
        raise ctx.error(field + ".policy", "is required")
    after_s = _num(ctx, table, "after_s", field + ".after_s", maximum=MAX_DURATION_S, unit="s")
    if kind is ResumeKind.AUTO_AFTER_RESET and after_s is None:
        raise ctx.error(field + ".after_s", "is required for auto_after_reset")
    if kind is not ResumeKind.AUTO_AFTER_RESET and after_s is not None:
        raise ctx.error(field + ".after_s", f"only applies to auto_after_reset, not {kind}")
    return ResumePolicy(kind, after_s)


def _vibration(ctx: _Ctx, value: Any) -> Vibration:
    if not isinstance(value, dict):
        raise ctx.error("vibration", f"must be a table, not {_type_name(value)}")
    _check_fields(ctx, value, _VIBRATION_FIELDS, "vibration.", "vibration")
    pattern = _str(ctx, value, "pattern", "vibration.pattern", required=True)
    if pattern not in VIBRATION_PATTERNS:
        raise ctx.error(
            "vibration.pattern",
            f"unknown pattern {pattern!r} (known: {', '.join(VIBRATION_PATTERNS)})",
        )
    intensity = _num(
        ctx,
        value,
        "intensity_pct",
        "vibration.intensity_pct",
        required=True,
        maximum=100,
        unit="%",
    )
    return Vibration(pattern, intensity)


# A zone name gives a zone (an unknown one raises); no name gives None.
@overload
def _zone(ctx: _Ctx, name: str, field: str, zones: Mapping[str, Zone]) -> Zone: ...
@overload
def _zone(ctx: _Ctx, name: str | None, field: str, zones: Mapping[str, Zone]) -> Zone | None: ...
def _zone(ctx: _Ctx, name: str | None, field: str, zones: Mapping[str, Zone]) -> Zone | None:
    if name is None:
        return None
    try:
        return get_zone(name, dict(zones))
    except UnknownZoneError:
        raise ctx.error(field, f"unknown zone {name!r} (known: {', '.join(zones)})") from None


def _position(ctx: _Ctx, value: Any, i: int) -> tuple[dict, str]:
    prefix = f"positions[{i}]"
    if not isinstance(value, dict):
        raise ctx.error(prefix, f"must be a table, not {_type_name(value)}")
    _check_fields(ctx, value, _POSITION_FIELDS, prefix + ".", "a position")
    return value, prefix


def _parse_step(
    ctx: _Ctx, raw: Any, index: int, zones: Mapping[str, Zone], default_resume: ResumePolicy
) -> Step:
    ctx.step = f"step {index}"
    if not isinstance(raw, dict):
        raise ctx.error(None, f"must be a table ([[steps]]), not {_type_name(raw)}")
    step_id = _str(ctx, raw, "id", "id", required=True)
    if not _ID_RE.match(step_id):
        raise ctx.error("id", f"must be lower-case letters, digits, '-' or '_', got {step_id!r}")
    ctx.step = f"step {index} ({step_id})"
    kind = _enum(ctx, raw, "kind", "kind", StepKind, None)
    if kind is None:
        raise ctx.error("kind", f"is required (one of {', '.join(k.value for k in StepKind)})")
    if kind is StepKind.STRETCH:
        if "vibration" in raw:
            raise ctx.error("vibration", "a stretch runs with vibration off: remove this field")
        for key in ("band_n", "limit_n", "positions"):
            if key in raw:
                raise ctx.error(key, "a stretch applies no pressure: remove this field")
    _check_fields(ctx, raw, _STEP_FIELDS[kind], "", f"a {kind.value} step")
    title = _str(ctx, raw, "title", "title", required=True)
    instruction = _str(ctx, raw, "instruction", "instruction", required=True)

    if kind in (StepKind.CUE, StepKind.AFTERCARE):
        duration_s = _num(
            ctx,
            raw,
            "duration_s",
            "duration_s",
            required=True,
            strict=True,
            maximum=MAX_DURATION_S,
            unit="s",
        )
        _instruction(ctx, instruction, "instruction", Side.NONE)
        return Step(index, step_id, kind, title, instruction, duration_s=duration_s)

    hold_min_s = _num(
        ctx,
        raw,
        "hold_min_s",
        "hold_min_s",
        required=True,
        strict=True,
        maximum=MAX_DURATION_S,
        unit="s",
    )
    hold_max_s = _num(
        ctx,
        raw,
        "hold_max_s",
        "hold_max_s",
        required=True,
        strict=True,
        maximum=MAX_DURATION_S,
        unit="s",
    )
    if hold_max_s < hold_min_s:
        raise ctx.error(
            "hold_max_s", f"must be at least hold_min_s ({hold_min_s:g} s), got {hold_max_s:g}"
        )
    reps = raw.get("repetitions", 1)
    if isinstance(reps, bool) or not isinstance(reps, int):
        raise ctx.error("repetitions", f"must be an integer, not {_type_name(reps)}")
    if not 1 <= reps <= MAX_REPETITIONS:
        raise ctx.error("repetitions", f"must be 1 to {MAX_REPETITIONS}, got {reps}")
    sides = _enum(ctx, raw, "sides", "sides", Side, Side.NONE)
    _instruction(ctx, instruction, "instruction", sides)
    rest_s = _num(ctx, raw, "rest_s", "rest_s", maximum=MAX_DURATION_S, unit="s") or 0.0
    resume = _resume(ctx, raw["resume"], "resume") if "resume" in raw else default_resume
    step_zone_name = _str(ctx, raw, "zone", "zone", required=False)
    step_zone = _zone(ctx, step_zone_name, "zone", zones)

    release_s = _num(
        ctx,
        raw,
        "release_s",
        "release_s",
        minimum=MIN_RELEASE_S,
        maximum=MAX_DURATION_S,
        unit="s",
    )
    release_s = MIN_RELEASE_S if release_s is None else release_s

    if kind is StepKind.STRETCH:
        return Step(
            index,
            step_id,
            kind,
            title,
            instruction,
            zone=step_zone_name,
            hold_min_s=hold_min_s,
            hold_max_s=hold_max_s,
            release_s=release_s,
            repetitions=reps,
            sides=sides,
            rest_s=rest_s,
            resume=resume,
        )

    # Pressure steps.
    technique = None
    if kind is StepKind.TIMED_PRESSURE:
        technique = _enum(ctx, raw, "technique", "technique", Technique, None)
        if technique is None:
            choices = ", ".join(t.value for t in Technique)
            raise ctx.error("technique", f"is required (one of {choices})")
    vibration = _vibration(ctx, raw["vibration"]) if "vibration" in raw else VIBRATION_OFF
    step_band = _band(ctx, raw, "band_n", "band_n")
    step_limit = _num(ctx, raw, "limit_n", "limit_n", strict=True, unit="N")

    raw_positions = raw.get("positions")
    if raw_positions is None:
        entries: list[tuple[dict, str]] = [({}, "")]
    elif not isinstance(raw_positions, list) or not raw_positions:
        raise ctx.error("positions", "must be a non-empty array of tables ([[steps.positions]])")
    else:
        entries = [_position(ctx, p, i) for i, p in enumerate(raw_positions, start=1)]

    positions: list[Position] = []
    for table, prefix in entries:
        dot = prefix + "." if prefix else ""
        name = _str(ctx, table, "name", dot + "name", required=bool(prefix))
        pos_zone_name = _str(ctx, table, "zone", dot + "zone", required=False)
        zone_field = dot + "zone" if pos_zone_name is not None else "zone"
        zone_name = pos_zone_name or step_zone_name
        if zone_name is None:
            raise ctx.error(zone_field, "is required for a pressure step (here or per position)")
        zone = _zone(ctx, zone_name, zone_field, zones)
        if zone.forbidden:
            raise ctx.error(
                zone_field,
                f"no pressure step may target {zone.name} ({zone.meaning}): keep off the "
                "front and sides of the neck",
            )
        limit_n = _num(ctx, table, "limit_n", dot + "limit_n", strict=True, unit="N")
        limit_field = dot + "limit_n" if limit_n is not None else "limit_n"
        if limit_n is None and zone is step_zone:
            limit_n = step_limit
        # a profile that lowered this zone's limit scales the step's figures with it
        scale = profile_scale(zone)
        if limit_n is not None:
            limit_n = _scaled(limit_n, scale)
            if limit_n > zone.ceiling_n:
                raise ctx.error(
                    limit_field,
                    f"{limit_n:g} N is above the {zone.name} ceiling of {zone.ceiling_n:g} N",
                )
            if limit_n > zone.limit_n:
                raise ctx.error(
                    limit_field,
                    f"{limit_n:g} N is above the {zone.name} limit of {zone.limit_n:g} N: a "
                    "routine may only lower a zone's limit",
                )
        effective_limit_n = zone.limit_n if limit_n is None else limit_n
        band = _band(ctx, table, "band_n", dot + "band_n")
        band_field = dot + "band_n" if band is not None else "band_n"
        if band is None:
            band = step_band
        if band is None:
            raise ctx.error(band_field, "is required for a pressure step (here or per position)")
        band = (_scaled(band[0], scale), _scaled(band[1], scale))
        band_max_n = round(BAND_MAX_FRACTION * effective_limit_n, 9)
        if band[1] > band_max_n + 1e-9:
            raise ctx.error(
                band_field,
                f"band top {band[1]:g} N is above {BAND_MAX_FRACTION * 100:g} % of the "
                f"{zone.name} limit ({effective_limit_n:g} N), i.e. above {band_max_n:g} N",
            )
        intensity = _num(ctx, table, "intensity_pct", dot + "intensity_pct", maximum=100, unit="%")
        if intensity is not None and not vibration.is_on:
            raise ctx.error(
                dot + "intensity_pct", "the step has no vibration: set the step's vibration"
            )
        effective_pct = vibration.intensity_pct if intensity is None else intensity
        if vibration.is_on and effective_pct > zone.vibration_cap_pct and _cap_lowered(zone):
            # a profile lowered the cap: the step plays at the person's cap
            intensity = effective_pct = zone.vibration_cap_pct
        if vibration.is_on and effective_pct > zone.vibration_cap_pct:
            field = dot + "intensity_pct" if intensity is not None else "vibration.intensity_pct"
            raise ctx.error(
                field,
                f"vibration {effective_pct:g} % is above the {zone.name} cap of "
                f"{zone.vibration_cap_pct:g} %",
            )
        pos_instruction = _str(ctx, table, "instruction", dot + "instruction", required=False)
        _instruction(ctx, pos_instruction, dot + "instruction", sides)
        positions.append(Position(name, zone.name, band, limit_n, intensity, pos_instruction))

    return Step(
        index, step_id, kind, title, instruction,
        technique=technique, zone=step_zone_name, band_n=step_band, limit_n=step_limit,
        hold_min_s=hold_min_s, hold_max_s=hold_max_s, release_s=release_s,
        repetitions=reps, sides=sides, positions=tuple(positions), rest_s=rest_s,
        vibration=vibration, resume=resume,
    )  # fmt: skip


def profile_scale(zone: Zone) -> float:
    """How much a profile lowered ``zone``'s limit: its limit over the default one (1 for a
    default zone, never above 1). A routine's bands and limits in that zone are written for
    the default limit and are multiplied by this (docs/profiles.md)."""
    default = DEFAULT_ZONES.get(zone.name)
    if default is None or zone.limit_n >= default.limit_n:
        return 1.0
    return zone.limit_n / default.limit_n


def _cap_lowered(zone: Zone) -> bool:
    default = DEFAULT_ZONES.get(zone.name)
    return default is not None and zone.vibration_cap_pct < default.vibration_cap_pct


def _scaled(value_n: float, scale: float) -> float:
    return value_n if scale == 1.0 else round(value_n * scale, 2)


def parse_routine(
    text: str, origin: str = "<routine>", zones: Mapping[str, Zone] | None = None
) -> Routine:
    """Parse and validate routine TOML. ``origin`` names the file in error messages;
    ``zones`` is the zone table to validate against (default: ``DEFAULT_ZONES``; pass a
    profile's table to check the routine under its lowered limits)."""
    table = DEFAULT_ZONES if zones is None else zones
    ctx = _Ctx(origin)
    raw = loads_toml(text, origin, RoutineError)
    _check_fields(ctx, raw, _ROUTINE_FIELDS, "", "a routine")
    if "format" in raw and (isinstance(raw["format"], bool) or raw["format"] != FORMAT_VERSION):
        raise ctx.error(
            "format", f"this version reads format {FORMAT_VERSION}, got {raw['format']!r}"
        )
    name = _str(ctx, raw, "name", "name", required=True)
    if not _ID_RE.match(name):
        raise ctx.error("name", f"must be lower-case letters, digits, '-' or '_', got {name!r}")
    title = _str(ctx, raw, "title", "title", required=True)
    summary = _str(ctx, raw, "summary", "summary", required=False) or ""
    mode = _enum(ctx, raw, "mode", "mode", RoutineMode, RoutineMode.SELF)
    default_resume = _resume(ctx, raw["resume"], "resume") if "resume" in raw else ResumePolicy()
    raw_steps = raw.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ctx.error("steps", "at least one step is required ([[steps]])")
    steps = []
    seen: set[str] = set()
    for i, raw_step in enumerate(raw_steps, start=1):
        step = _parse_step(ctx, raw_step, i, table, default_resume)
        if step.id in seen:
            raise ctx.error("id", f"duplicate step id {step.id!r}")
        seen.add(step.id)
        steps.append(step)
    return Routine(name, title, summary, mode, tuple(steps), origin)


# ---------------------------------------------------------------- built-ins and lookup

_BUILTIN_PACKAGE = "device.routine.builtin"


def builtin_names() -> list[str]:
    """Names of the built-in routines, sorted."""
    folder = resources.files(_BUILTIN_PACKAGE)
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def builtin_text(name: str) -> str:
    """The TOML text of built-in routine ``name`` (RoutineError if there is none)."""
    if name not in builtin_names():
        raise RoutineError(
            f"no built-in routine {name!r} (built-in: {', '.join(builtin_names())}); "
            "a path to a routine file works too"
        )
    return resources.files(_BUILTIN_PACKAGE).joinpath(f"{name}.toml").read_text("utf-8")


def load_routine(name_or_path: str | Path, zones: Mapping[str, Zone] | None = None) -> Routine:
    """A built-in routine by name, or a routine file by path (anything with a '/' or a
    '.toml' suffix, or an existing file)."""
    text_arg = str(name_or_path)
    looks_like_path = (
        isinstance(name_or_path, Path) or "/" in text_arg or text_arg.endswith(".toml")
    )
    if not looks_like_path and text_arg in builtin_names():
        return parse_routine(builtin_text(text_arg), f"builtin:{text_arg}", zones)
    path = Path(name_or_path)
    if looks_like_path or path.is_file():
        return parse_routine(read_text(path, RoutineError, "routine"), str(path), zones)
    builtin_text(text_arg)  # raises the "no built-in routine" error
    raise AssertionError("unreachable")
