"""Zone profiles: a TOML file that lowers zone limits (and vibration caps) for one person.

Format (docs/profiles.md)::

    [zones.neck_back]
    limit_n = 8             # newtons; lowering is always allowed
    vibration_cap_pct = 20  # percent (0-100); lowering is always allowed

The table starts from ``dsp.zones.DEFAULT_ZONES``. A limit above the zone's ceiling is
capped at the ceiling, and a vibration cap above the default cap is capped at the default
(DESIGN.md: "a profile may lower a limit; raising is capped by the ceiling"): both with a
warning, never silently. Unknown zones, unknown fields, wrong types and bad TOML are
``InputFileError``\\s naming the file and the field.

The default profile is ``profile.toml`` in the config folder (``MASSAGECTL_CONFIG_DIR``, else
platformdirs' user config folder for "massagectl"); it is used when present and no profile
is given. Commands call ``load_zones(profile_path)`` and pass the table on
(``load_routine(name, zones=...)``, ``Routine.units(zones)``, ``get_zone(name, zones)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from device.config.known_devices import config_dir
from device.datafile import finite, loads_toml, read_text
from device.errors import InputFileError
from dsp.zones import DEFAULT_ZONES, Zone, with_limit

#: The default profile's file name, in the config folder.
DEFAULT_PROFILE_NAME = "profile.toml"
#: Fields a ``[zones.NAME]`` table may set.
ZONE_FIELDS = ("limit_n", "vibration_cap_pct")


@dataclass(frozen=True)
class ZoneProfile:
    """A loaded profile: where from, the resulting zone table, what it asked for per zone
    (``requested``: zone -> field -> value as written) and the capping warnings."""

    path: Path
    zones: dict[str, Zone]
    requested: dict[str, dict[str, float]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def to_meta(self) -> dict[str, Any]:
        """What a recording's session.json keeps of it: the file, the request, and the
        limits and caps in force for the zones it changed."""
        return {
            "path": str(self.path),
            "requested": self.requested,
            "zones": {
                name: {
                    "limit_n": self.zones[name].limit_n,
                    "vibration_cap_pct": self.zones[name].vibration_cap_pct,
                }
                for name in self.requested
            },
            "warnings": list(self.warnings),
        }


def default_profile_path() -> Path:
    """``profile.toml`` in the config folder (it may not exist)."""
    return config_dir() / DEFAULT_PROFILE_NAME


def _number(path: Path, where: str, value: Any, unit: str) -> float:
    if not finite(value):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise InputFileError(f"{path}: {where}: must be a number ({unit}), got {shown}")
    return float(value)


def parse_profile(text: str, path: str | Path = "<profile>") -> ZoneProfile:
    """Parse profile ``text`` (``path`` names it in errors and warnings)."""
    p = Path(path)
    data = loads_toml(text, str(p))
    unknown = [k for k in data if k != "zones"]
    if unknown:
        raise InputFileError(f"{p}: {unknown[0]}: unknown field (a profile has [zones.NAME])")
    zones_data = data.get("zones", {})
    if not isinstance(zones_data, dict):
        raise InputFileError(f"{p}: zones: must be tables such as [zones.neck_back]")
    table = dict(DEFAULT_ZONES)
    requested: dict[str, dict[str, float]] = {}
    warnings: list[str] = []
    for name, fields in zones_data.items():
        where = f"zones.{name}"
        if name not in DEFAULT_ZONES:
            raise InputFileError(f"{p}: {where}: unknown zone (known: {', '.join(DEFAULT_ZONES)})")
        if not isinstance(fields, dict):
            raise InputFileError(f"{p}: {where}: must be a table, e.g. [{where}] limit_n = 8")
        for key in fields:
            if key not in ZONE_FIELDS:
                raise InputFileError(
                    f"{p}: {where}.{key}: unknown field (known: {', '.join(ZONE_FIELDS)})"
                )
        zone = table[name]
        asked: dict[str, float] = {}
        if "limit_n" in fields:
            limit_n = _number(p, f"{where}.limit_n", fields["limit_n"], "newtons")
            if not limit_n > 0:
                raise InputFileError(f"{p}: {where}.limit_n: must be positive, got {limit_n:g}")
            asked["limit_n"] = limit_n
            zone, warning = with_limit(zone, limit_n)
            if warning:
                warnings.append(f"{p}: {warning}")
        if "vibration_cap_pct" in fields:
            cap = _number(p, f"{where}.vibration_cap_pct", fields["vibration_cap_pct"], "percent")
            if not 0 <= cap <= 100:
                raise InputFileError(
                    f"{p}: {where}.vibration_cap_pct: must be 0-100 %, got {cap:g}"
                )
            asked["vibration_cap_pct"] = cap
            default_cap = DEFAULT_ZONES[name].vibration_cap_pct
            if cap > default_cap:
                warnings.append(
                    f"{p}: {name}: vibration cap {cap:g} % is above the default; capped at "
                    f"{default_cap:g} %"
                )
                cap = default_cap
            zone = replace(zone, vibration_cap_pct=cap)
        table[name] = zone
        requested[name] = asked
    return ZoneProfile(p, table, requested, tuple(warnings))


def load_profile(path: str | Path) -> ZoneProfile:
    """Read and parse the profile at ``path``; InputFileError when it cannot be read."""
    p = Path(path)
    return parse_profile(read_text(p, what="profile"), p)


def find_profile(profile_path: str | Path | None) -> ZoneProfile | None:
    """The profile given, else the default one when present, else None."""
    if profile_path is not None:
        return load_profile(profile_path)
    default = default_profile_path()
    if default.is_file():
        return load_profile(default)
    return None


def load_zones(profile_path: str | None) -> tuple[dict[str, Zone], list[str]]:
    """The zone table to use and the warnings to show: from ``profile_path`` when given,
    else from the default profile when there is one, else the defaults (a copy)."""
    profile = find_profile(profile_path)
    if profile is None:
        return dict(DEFAULT_ZONES), []
    return profile.zones, list(profile.warnings)
