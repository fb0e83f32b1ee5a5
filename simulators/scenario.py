"""Scenario files (TOML, docs/scenarios.md): what the simulated person presses, and how the
simulated hardware misbehaves (noise, drift, motor leakage and detuning, clock drift)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path


class ScenarioError(ValueError):
    """A scenario file that cannot be read or has a bad value; the message names the field."""


@dataclass(frozen=True)
class PressPoint:
    """From ``t_s`` on, the pressing force moves linearly to ``force_n`` over ``ramp_s``."""

    t_s: float
    force_n: float
    ramp_s: float = 0.0


@dataclass(frozen=True)
class SensorConfig:
    scale_counts_per_n: float = 1000.0
    offset_counts: int = 12_000
    noise_n: float = 0.05
    drift_n_per_min: float = 0.1
    saturation_n: float = 300.0


@dataclass(frozen=True)
class MotorConfig:
    #: Vibration leaking into the force sensor at full intensity (newtons, peak).
    leak_peak_n: float = 3.0
    #: True frequency = commanded * (1 + detune_pct / 100); motors slow under load.
    detune_pct: float = 4.0
    spinup_s: float = 0.06
    brake_s: float = 0.04
    default_hz: int = 150
    #: The motor slows under load by this many percent per newton of pressing force (a
    #: handheld massager pressed into a muscle runs slower than it was told to).
    load_slowdown_pct_per_n: float = 0.0


@dataclass(frozen=True)
class ClockConfig:
    drift_ppm: float = 30.0
    #: Device time at power-on in µs (u32 wraps every 71.6 min; a test may start near it).
    start_us: int = 0


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
    start_pct: float = 96.0
    idle_drain_pct_per_h: float = 4.0
    motor_drain_pct_per_h: float = 30.0


@dataclass(frozen=True)
class Scenario:
    name: str = "unnamed"
    press: tuple[PressPoint, ...] = ()
    #: When set, the press script starts over every ``repeat_s`` seconds.
    repeat_s: float | None = None
    seed: int = 1
    sensor: SensorConfig = field(default_factory=SensorConfig)
    motor: MotorConfig = field(default_factory=MotorConfig)
    clock: ClockConfig = field(default_factory=ClockConfig)
    battery: BatteryConfig = field(default_factory=BatteryConfig)
    adc: AdcConfig = field(default_factory=AdcConfig)
    #: Reserved for fault injection (a later issue): raw tables, validated then.
    faults: tuple[dict, ...] = ()

    def force_at(self, t_s: float) -> float:
        """The true pressing force at scenario time ``t_s`` (newtons)."""
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


def _section(cls, table: dict, where: str):
    if not isinstance(table, dict):
        raise ScenarioError(f"{where}: expected a table")
    known = {f.name: f for f in fields(cls)}
    values = {}
    for key, value in table.items():
        if key not in known:
            raise ScenarioError(f"{where}.{key}: unknown field (known: {', '.join(known)})")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(f"{where}.{key}: expected a number, got {value!r}")
        values[key] = int(value) if known[key].type in ("int", int) else float(value)
    return cls(**values)


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


def parse_scenario(data: dict, source: str = "<scenario>") -> Scenario:
    known = {
        "name",
        "press",
        "repeat_s",
        "seed",
        "sensor",
        "motor",
        "clock",
        "battery",
        "adc",
        "fault",
    }
    for key in data:
        if key not in known:
            raise ScenarioError(f"{source}: {key}: unknown field")
    presses: list[PressPoint] = []
    for i, p in enumerate(data.get("press", [])):
        where = f"{source}: press[{i}]"
        if not isinstance(p, dict) or "t_s" not in p or "force_n" not in p:
            raise ScenarioError(f"{where}: needs t_s and force_n")
        point = _section(PressPoint, p, where)
        if point.ramp_s < 0 or point.force_n < 0:
            raise ScenarioError(f"{where}: force_n and ramp_s must not be negative")
        if presses and point.t_s < presses[-1].t_s:
            raise ScenarioError(f"{where}: t_s must not go back in time")
        presses.append(point)
    repeat = data.get("repeat_s")
    if repeat is not None and (not isinstance(repeat, int | float) or repeat <= 0):
        raise ScenarioError(f"{source}: repeat_s must be a positive number")
    faults = data.get("fault", [])
    if not isinstance(faults, list):
        raise ScenarioError(f"{source}: fault must be an array of tables ([[fault]])")
    return Scenario(
        name=str(data.get("name", Path(source).stem)),
        press=tuple(presses),
        repeat_s=float(repeat) if repeat is not None else None,
        seed=int(data.get("seed", 1)),
        sensor=_section(SensorConfig, data.get("sensor", {}), f"{source}: sensor"),
        motor=_section(MotorConfig, data.get("motor", {}), f"{source}: motor"),
        clock=_section(ClockConfig, data.get("clock", {}), f"{source}: clock"),
        battery=_section(BatteryConfig, data.get("battery", {}), f"{source}: battery"),
        adc=_adc(data.get("adc", {}), f"{source}: adc"),
        faults=tuple(faults),
    )


def load_scenario(path: str | Path | None = None) -> Scenario:
    """The scenario in ``path`` (TOML), or the default one when ``path`` is None."""
    if path is None:
        text = resources.files("simulators.scenarios").joinpath("default.toml").read_text()
        return parse_scenario(tomllib.loads(text), "default.toml")
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{p}: no such scenario file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{p}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{p}: not valid TOML: {exc}") from exc
    return parse_scenario(data, str(p))
