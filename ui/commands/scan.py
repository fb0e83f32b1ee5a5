"""``massagectl scan``: BLE devices that offer the massagectl service."""

from __future__ import annotations

import asyncio
import json
import sys

from device.errors import LinkError, UsageError


def register(sub) -> None:
    p = sub.add_parser(
        "scan",
        help="list BLE devices that offer the massagectl service",
        description=(
            "Listen for BLE advertisements for a while and list the devices that advertise "
            "the massagectl service: name, address and signal strength (RSSI, dBm). Connect "
            "to one with 'massagectl stream ble://NAME' or ble://ADDRESS."
        ),
    )
    p.add_argument(
        "--timeout", type=float, default=5.0, metavar="S", help="listen for S seconds (default 5)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per device on stdout")
    p.add_argument(
        "--hci",
        metavar="TRANSPORT",
        help=(
            "use the Bumble backend on this HCI transport, e.g. tcp-client:127.0.0.1:PORT "
            "from 'massagectl sim ble', or usb:0 (same as MASSAGECTL_BLE=bumble:TRANSPORT, "
            "and wins over it)"
        ),
    )
    p.set_defaults(func=run)


async def run(args) -> int:
    from bleak.exc import BleakError

    from device.ble import factory
    from firmware_bridge.gatt import SERVICE_UUID

    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    scanner = factory.make_scanner(hci=args.hci, service_uuids=[SERVICE_UUID])
    try:
        async with scanner:
            await asyncio.sleep(args.timeout)
    except BleakError as exc:
        raise LinkError(f"cannot scan ({factory.describe(args.hci)}): {exc}") from exc
    found = sorted(
        scanner.discovered_devices_and_advertisement_data.values(),
        key=lambda pair: (-pair[1].rssi, pair[0].address),
    )
    for device, adv in found:
        if args.json:
            print(
                json.dumps(
                    {
                        "name": adv.local_name or device.name,
                        "address": device.address,
                        "rssi_dbm": adv.rssi,
                    }
                )
            )
        else:
            print(f"{adv.local_name or device.name or '?':<10} {device.address}  {adv.rssi} dBm")
    if not args.json:
        print(f"{len(found)} device(s) found in {args.timeout:g} s", file=sys.stderr)
    return 0
