"""Body zones and their force limits (DESIGN.md, "Default zones").

A zone has a limit (where the host stops), a ceiling (the most a profile may raise the limit
to), and a vibration cap in percent. Warning starts at 80 % of the limit; a latched stop may
be re-armed after force stays under 70 % of the limit for 1 s.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

WARNING_FRACTION = 0.8
RESET_FRACTION = 0.7
RESET_HOLD_S = 1.0
#: A step's target band must end at or below this fraction of its zone's limit.
BAND_MAX_FRACTION = 0.8
#: In a forbidden zone, contact above the limit for this long is a stop.
FORBIDDEN_CONTACT_S = 0.2
DEFAULT_ZONE = "neck_back"


@dataclass(frozen=True)
class Zone:
    name: str
    meaning: str
    limit_n: float
    ceiling_n: float
    vibration_cap_pct: float
    #: Pressure is to be avoided here (front and sides of the neck): no pressure step may
    #: target it, and contact above the limit for FORBIDDEN_CONTACT_S is a stop.
    forbidden: bool = False

    @property
    def warning_n(self) -> float:
        return WARNING_FRACTION * self.limit_n

    @property
    def reset_n(self) -> float:
        return RESET_FRACTION * self.limit_n

    @property
    def band_max_n(self) -> float:
        return BAND_MAX_FRACTION * self.limit_n


DEFAULT_ZONES: dict[str, Zone] = {
    z.name: z
    for z in (
        Zone("neck_front", "front of the neck (carotid, jugular)", 2.0, 5.0, 0.0, forbidden=True),
        Zone("neck_side", "side of the neck (carotid, jugular)", 2.0, 5.0, 0.0, forbidden=True),
        Zone("neck_back", "back of the neck, beside the spine", 10.0, 20.0, 30.0),
        Zone("suboccipital", "under the skull base, beside the spine", 10.0, 20.0, 30.0),
        Zone("suboccipital_lying", "head resting on two balls, per ball", 30.0, 40.0, 20.0),
        Zone("upper_trapezius", "shoulder toward the base of the neck", 40.0, 60.0, 80.0),
        Zone("levator_scapulae", "side-back of the neck into the shoulder blade", 30.0, 45.0, 60.0),
        Zone("upper_back", "shoulder blades, ball against a wall", 80.0, 120.0, 100.0),
    )
}


class UnknownZoneError(KeyError):
    """A zone name that is not in the table."""


def get_zone(name: str | None, zones: dict[str, Zone] | None = None) -> Zone:
    """The zone called ``name`` (neck_back when ``name`` is None)."""
    table = DEFAULT_ZONES if zones is None else zones
    key = DEFAULT_ZONE if name is None else name
    try:
        return table[key]
    except KeyError:
        known = ", ".join(table)
        raise UnknownZoneError(f"unknown zone {key!r} (known: {known})") from None


def with_limit(zone: Zone, limit_n: float) -> tuple[Zone, str | None]:
    """``zone`` with its limit set to ``limit_n``, capped at the zone's ceiling.

    Returns the new zone and a warning text when the request was capped (None otherwise).
    Lowering is always allowed; a limit must be positive.
    """
    if not limit_n > 0:
        raise ValueError(f"limit must be positive, got {limit_n} N")
    if limit_n > zone.ceiling_n:
        return (
            replace(zone, limit_n=zone.ceiling_n),
            f"{zone.name}: limit {limit_n:g} N is above the ceiling; capped at "
            f"{zone.ceiling_n:g} N",
        )
    return replace(zone, limit_n=limit_n), None
