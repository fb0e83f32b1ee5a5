"""Drivers for force sensors that speak their own protocols (docs/devices.md), and the
registry that picks one from what a device advertises.

One table (``REGISTRY``): kind -> how to recognise it (name pattern, service UUID,
manufacturer company id) and where its driver class lives; drivers are imported only when
used (as python-can does for its interfaces). ``ball`` is our own device (protocol v2), whose
link is ``device.links.ble.BleLink``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeVar

from firmware_bridge.gatt import SERVICE_UUID as BALL_SERVICE_UUID

if TYPE_CHECKING:
    from device.links.drivers.base import SensorDriver

#: the kinds ``scan --json`` reports and ``sim ble --device`` takes
KINDS = ("ball", "progressor", "forceboard", "whc06")


@dataclass(frozen=True)
class DriverEntry:
    kind: str
    #: what it is, in words (for ``scan``)
    label: str
    #: the advertised name, as a regular expression matched from the start
    name_pattern: str | None
    #: a service UUID in its advertisement
    service_uuid: str | None
    #: a manufacturer-data company id in its advertisement
    company_id: int | None
    #: "module:Class" of the driver (None: our own protocol, BleLink)
    driver: str | None


REGISTRY: tuple[DriverEntry, ...] = (
    DriverEntry("ball", "massagectl ball (protocol v2)", None, BALL_SERVICE_UUID, None, None),
    DriverEntry(
        "progressor",
        "Tindeq Progressor (or a clone)",
        r"Progressor",
        "7e4e1701-1ea6-40c9-9dcc-13d34ffead57",
        None,
        "device.links.drivers.progressor:ProgressorDriver",
    ),
    DriverEntry(
        "forceboard",
        "PitchSix Force Board",
        r"Force Board$",
        "9a88d67f-8df2-4afe-9e0d-c2bbbe773dd0",
        None,
        "device.links.drivers.forceboard:ForceBoardDriver",
    ),
    DriverEntry(
        "whc06",
        "WH-C06 crane scale (advertising only)",
        r"IF_B7$",
        None,
        0x0100,
        "device.links.drivers.whc06:WhC06Driver",
    ),
)


def entry(kind: str) -> DriverEntry:
    for e in REGISTRY:
        if e.kind == kind:
            return e
    raise KeyError(kind)


def kind_of(
    name: str | None,
    service_uuids: Iterable[str] = (),
    manufacturer_data: Mapping[int, bytes] | None = None,
) -> str | None:
    """The kind of a device from its advertisement (name, services, manufacturer data), or
    None for a device no driver knows."""
    services = {u.lower() for u in service_uuids}
    companies = set(manufacturer_data or ())
    for e in REGISTRY:
        if e.service_uuid is not None and e.service_uuid in services:
            return e.kind
    for e in REGISTRY:
        named = e.name_pattern is not None and name and re.match(e.name_pattern, name)
        if named and (e.company_id is None or not companies or e.company_id in companies):
            return e.kind
    return None


_Found = TypeVar("_Found")


def with_kinds(found: Iterable[_Found], *, include_unknown: bool = False) -> list[_Found]:
    """Scan results (``device.ble.discovery.FoundDevice``) with their ``kind`` set; those
    no driver knows are left out unless ``include_unknown``."""
    out = []
    for d in found:
        kind = kind_of(
            d.name,  # type: ignore[attr-defined]
            d.service_uuids,  # type: ignore[attr-defined]
            dict.fromkeys(d.company_ids, b""),  # type: ignore[attr-defined]
        )
        if kind is not None or include_unknown:
            out.append(replace(d, kind=kind))  # type: ignore[type-var]
    return out


def kind_for_name(name: str) -> str | None:
    """The kind a ``ble://NAME`` asks for, from the name alone (None: not a known pattern)."""
    for e in REGISTRY:
        if e.name_pattern is not None and re.match(e.name_pattern, name):
            return e.kind
    return None


def driver_class(kind: str) -> type[SensorDriver]:
    """The driver class of ``kind``, imported now."""
    spec = entry(kind).driver
    if spec is None:
        raise KeyError(f"{kind} speaks our own protocol: it has no sensor driver")
    module, _, cls = spec.partition(":")
    return getattr(importlib.import_module(module), cls)
