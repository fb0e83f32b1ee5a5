"""Finding devices that offer the massagectl service (for ``massagectl scan`` and pairing),
on whichever backend ``device.ble.factory`` picks. bleak's errors become ours here."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bleak.exc import BleakError

from device.ble import factory
from device.errors import LinkError
from firmware_bridge.gatt import SERVICE_UUID


@dataclass(frozen=True)
class FoundDevice:
    name: str | None
    address: str
    rssi_dbm: int


async def scan_for_devices(timeout_s: float, *, hci: str | None = None) -> list[FoundDevice]:
    """Devices heard advertising our service during ``timeout_s``, strongest first."""
    scanner = factory.make_scanner(hci=hci, service_uuids=[SERVICE_UUID])
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
        FoundDevice(adv.local_name or device.name, device.address, adv.rssi)
        for device, adv in scanner.discovered_devices_and_advertisement_data.values()
    ]
    return sorted(found, key=lambda d: (-d.rssi_dbm, d.address))
