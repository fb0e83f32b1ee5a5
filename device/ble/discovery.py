"""Finding devices (for ``massagectl scan`` and the connect dialog) on whichever backend
``device.ble.factory`` picks: every device heard, with what its advertisement says (name,
service UUIDs, manufacturer company ids); the driver registry (``device.links.drivers.
with_kinds``, a layer above) tells which are ours and of what kind. bleak's errors become
ours here."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bleak.exc import BleakError

from device.ble import factory
from device.errors import LinkError


@dataclass(frozen=True)
class FoundDevice:
    name: str | None
    address: str
    rssi_dbm: int
    service_uuids: tuple[str, ...] = ()
    company_ids: tuple[int, ...] = ()
    #: ``ball``, ``progressor``, ``forceboard``, ``whc06``; None: not known (yet)
    kind: str | None = None

    @property
    def url(self) -> str:
        """The URL that opens it by address (a sensor's kind is not in its address)."""
        if self.kind in (None, "ball"):
            return f"ble://{self.address}"
        return f"ble://{self.address}?kind={self.kind}"


async def scan_for_devices(timeout_s: float, *, hci: str | None = None) -> list[FoundDevice]:
    """Every device heard during ``timeout_s``, strongest first."""
    scanner = factory.make_scanner(hci=hci)
    try:
        async with scanner:
            await asyncio.sleep(timeout_s)
    except (BleakError, OSError) as exc:
        missing = factory.no_bluetooth(exc, hci)
        if missing is not None:
            raise missing from exc
        if not isinstance(exc, BleakError):
            raise
        raise LinkError(f"cannot scan ({factory.describe(hci)}): {exc}") from exc
    found = [
        FoundDevice(
            adv.local_name or device.name,
            device.address,
            adv.rssi,
            tuple(adv.service_uuids),
            tuple(adv.manufacturer_data),
        )
        for device, adv in scanner.discovered_devices_and_advertisement_data.values()
    ]
    return sorted(found, key=lambda d: (-d.rssi_dbm, d.address))
