"""Scenario files (TOML, docs/scenarios.md): what the simulated person presses, and how the
simulated hardware misbehaves (noise, drift, motor leakage and detuning, clock drift)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import msgspec

from simulators.faults import FaultSpec, FaultSpecError, parse_faults


class ScenarioError(ValueError):
    """A scenario file that cannot be read or has a bad value; the message names the field."""


# Value types with their ranges: a scenario is fully checked when it is read, so that the
# simulator never starts on a value that would kill its stepping task (a scale of 0, a NaN
# force, a seed that is a string). msgspec checks the types (no bool for a number, no str
# for an int) and the ranges; NaN fails every range.
_Seconds = Annotated[float, msgspec.Meta(ge=0.0, le=1e6)]
_Newtons = Annotated[float, msgspec.Meta(ge=0.0, le=1e4)]
_Percent = Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
_PerHour = Annotated[float, msgspec.Meta(ge=0.0, le=1e4)]
#: Raw counts are i32 on the wire; the scale must leave room for the sensor's range.
_Scale = Annotated[float, msgspec.Meta(gt=0.0, le=1e6)]
_Offset = Annotated[int, msgspec.Meta(ge=-(2**30), le=2**30)]
_Hz = Annotated[int, msgspec.Meta(ge=1, le=65535)]
_U32 = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
_Seed = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
_NoiseN = Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
_DriftN = Annotated[float, msgspec.Meta(ge=-100.0, le=100.0)]
_DetunePct = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
_TimeConstantS = Annotated[float, msgspec.Meta(ge=0.0, le=60.0)]
_Ppm = Annotated[float, msgspec.Meta(ge=-1e5, le=1e5)]


@dataclass(frozen=True)
class PressPoint:
    """From ``t_s`` on, the pressing force moves linearly to ``force_n`` over ``ramp_s``."""

    t_s: _Seconds
    force_n: _Newtons
    ramp_s: _Seconds = 0.0


@dataclass(frozen=True)
class SensorConfig:
    scale_counts_per_n: _Scale = 1000.0
    offset_counts: _Offset = 12_000
    noise_n: _NoiseN = 0.05
    drift_n_per_min: _DriftN = 0.1
    saturation_n: Annotated[float, msgspec.Meta(gt=0.0, le=1e4)] = 300.0


@dataclass(frozen=True)
class MotorConfig:
    #: Vibration leaking into the force sensor at full intensity (newtons, peak).
    leak_peak_n: _Newtons = 3.0
    #: True frequency = commanded * (1 + detune_pct / 100); motors slow under load.
    detune_pct: _DetunePct = 4.0
    spinup_s: _TimeConstantS = 0.06
    brake_s: _TimeConstantS = 0.04
    default_hz: _Hz = 150
    #: The motor slows under load by this many percent per newton of pressing force (a
    #: handheld massager pressed into a muscle runs slower than it was told to).
    load_slowdown_pct_per_n: _Percent = 0.0


@dataclass(frozen=True)
class ClockConfig:
    drift_ppm: _Ppm = 30.0
    #: Device time at power-on in µs (u32 wraps every 71.6 min; a test may start near it).
    start_us: _U32 = 0


#: ADC kinds: "integrating" (the mean over each conversion period, as the HX711 converts),
#: "sample_hold" (the value at the sample instant), "auto" (integrating at <= 80 Hz).
ADC_KINDS = ("auto", "integrating", "sample_hold")
#: At or under this stream rate the "auto" ADC integrates.
INTEGRATING_MAX_HZ = 80


@dataclass(frozen=True)
class AdcConfig:
    kind: str = "auto"
    #: The one rate the ADC runs at (Hz; 0: any rate the device offers). DeviceInfo then
    #: reports rate_min = rate_max = this.
    rate_hz: int = 0

    def integrates_at(self, rate_hz: float) -> bool:
        """Whether samples at ``rate_hz`` are means over the conversion period."""
        if self.kind == "auto":
            return 0 < rate_hz <= INTEGRATING_MAX_HZ
        return self.kind == "integrating"


@dataclass(frozen=True)
class BatteryConfig:
    start_pct: _Percent = 96.0
    idle_drain_pct_per_h: _PerHour = 4.0
    motor_drain_pct_per_h: _PerHour = 30.0


@dataclass(frozen=True)
class Scenario:
    name: str = "unnamed"
    press: tuple[PressPoint, ...] = ()
    #: When set, the press script starts over every ``repeat_s`` seconds.
    repeat_s: float | None = None
    #: The ball lies at rest (nothing pressed) for this long before the press script starts
    #: (its times, and ``repeat_s``, count from then).
    start_s: float = 0.0
    seed: int = 1
    sensor: SensorConfig = field(default_factory=SensorConfig)
    motor: MotorConfig = field(default_factory=MotorConfig)
    clock: ClockConfig = field(default_factory=ClockConfig)
    battery: BatteryConfig = field(default_factory=BatteryConfig)
    adc: AdcConfig = field(default_factory=AdcConfig)
    #: Injected faults (``[[fault]]`` tables; ``simulators.faults``).
    faults: tuple[FaultSpec, ...] = ()

    def force_at(self, t_s: float) -> float:
        """The true pressing force at scenario time ``t_s`` (newtons)."""
        if t_s < self.start_s:
            return 0.0
        t_s -= self.start_s
        if self.repeat_s:
            t_s = t_s % self.repeat_s
        force = 0.0
        for p in self.press:
            if t_s < p.t_s:
                break
            if p.ramp_s > 0 and t_s < p.t_s + p.ramp_s:
                return force + (p.force_n - force) * (t_s - p.t_s) / p.ramp_s
            force = p.force_n
        return force


def _message(exc: msgspec.ValidationError) -> str:
    """msgspec's "Expected `int`, got `str` - at `$.seed`" as "seed: expected `int`, got
    `str`"."""
    text = str(exc)
    message, sep, where = text.rpartition(" - at `$")
    if not sep:
        return text[:1].lower() + text[1:]
    return f"{where.rstrip('`').lstrip('.')}: {message[:1].lower() + message[1:]}"


def _section(cls, table: Any, where: str):
    if not isinstance(table, dict):
        raise ScenarioError(f"{where}: expected a table, got {_kind(table)}")
    known = [f.name for f in fields(cls)]
    for key in table:
        if key not in known:
            raise ScenarioError(f"{where}.{key}: unknown field (known: {', '.join(known)})")
    try:
        return msgspec.convert(table, cls)
    except msgspec.ValidationError as exc:
        raise ScenarioError(f"{where}.{_message(exc)}") from None


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names |= {list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _adc(table: dict, where: str) -> AdcConfig:
    if not isinstance(table, dict):
        raise ScenarioError(f"{where}: expected a table")
    kind = table.get("kind", "auto")
    if kind not in ADC_KINDS:
        raise ScenarioError(f"{where}.kind: one of {', '.join(ADC_KINDS)}, got {kind!r}")
    rest = _section(AdcConfig, {k: v for k, v in table.items() if k != "kind"}, where)
    if not (rest.rate_hz == 0 or 10 <= rest.rate_hz <= 2000):
        raise ScenarioError(f"{where}.rate_hz: 10-2000 Hz (0: any), got {rest.rate_hz}")
    return AdcConfig(kind=kind, rate_hz=rest.rate_hz)


class _Top(msgspec.Struct):
    """The top-level fields' types (the sections are checked by ``_section``)."""

    name: str = "unnamed"
    press: list[dict[str, Any]] = []
    repeat_s: Annotated[float, msgspec.Meta(gt=0.0, le=1e6)] | None = None
    start_s: _Seconds = 0.0
    seed: _Seed = 1
    sensor: dict[str, Any] = {}
    motor: dict[str, Any] = {}
    clock: dict[str, Any] = {}
    battery: dict[str, Any] = {}
    adc: dict[str, Any] = {}
    fault: list[dict[str, Any]] = []


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    """A checked Scenario from parsed TOML ``data``; ScenarioError naming ``source`` and the
    field for anything the simulator could not run on."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: expected a table, got {_kind(data)}")
    known = [f for f in _Top.__struct_fields__]
    for key in data:
        if key not in known:
            raise ScenarioError(f"{source}: {key}: unknown field (known: {', '.join(known)})")
    try:
        top = msgspec.convert(data, _Top)
    except msgspec.ValidationError as exc:
        raise ScenarioError(f"{source}: {_message(exc)}") from None
    presses: list[PressPoint] = []
    for i, p in enumerate(top.press):
        where = f"{source}: press[{i}]"
        if "t_s" not in p or "force_n" not in p:
            raise ScenarioError(f"{where}: needs t_s and force_n")
        point = _section(PressPoint, p, where)
        if presses and point.t_s < presses[-1].t_s:
            raise ScenarioError(f"{where}: t_s must not go back in time")
        presses.append(point)
    sensor = _section(SensorConfig, top.sensor, f"{source}: sensor")
    top_raw = sensor.saturation_n * sensor.scale_counts_per_n + abs(sensor.offset_counts)
    if not top_raw < 2**31:
        raise ScenarioError(
            f"{source}: sensor: saturation_n x scale_counts_per_n + offset_counts is "
            f"{top_raw:.4g} counts, beyond the 32-bit raw reading"
        )
    return Scenario(
        name=top.name if "name" in data else Path(source).stem,
        press=tuple(presses),
        repeat_s=top.repeat_s,
        start_s=top.start_s,
        seed=top.seed,
        sensor=sensor,
        motor=_section(MotorConfig, top.motor, f"{source}: motor"),
        clock=_section(ClockConfig, top.clock, f"{source}: clock"),
        battery=_section(BatteryConfig, top.battery, f"{source}: battery"),
        adc=_adc(top.adc, f"{source}: adc"),
        faults=_faults(top.fault, source),
    )


def _faults(tables: list, source: str) -> tuple[FaultSpec, ...]:
    try:
        return parse_faults(tables, source)
    except FaultSpecError as exc:
        raise ScenarioError(str(exc)) from None


def load_scenario(path: str | Path | None = None) -> Scenario:
    """The scenario in ``path`` (TOML), or the default one when ``path`` is None."""
    if path is None:
        text = resources.files("simulators.scenarios").joinpath("default.toml").read_text()
        return parse_scenario(tomllib.loads(text), "default.toml")
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(f"{p}: no such scenario file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{p}: is a folder, not a scenario file") from None
    except OSError as exc:
        raise ScenarioError(f"{p}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{p}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except RecursionError:
        raise ScenarioError(f"{p}: not valid TOML: nested too deep") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{p}: not valid TOML: {exc}") from None
    return parse_scenario(data, str(p))
