"""``massagectl scan``: the BLE devices massagectl can use (our ball and the force sensors of
docs/devices.md), each with its kind; ``--all`` lists every device heard."""

from __future__ import annotations

import json
import sys

from device.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser(
        "scan",
        help="list the BLE devices massagectl can use, with their kind",
        description=(
            "Listen for BLE advertisements for a while and list the devices massagectl can "
            "use: its ball and the force sensors of docs/devices.md (Tindeq Progressor, "
            "PitchSix Force Board, WH-C06 scale), with their kind (ball, progressor, "
            "forceboard, whc06), name, address and signal strength (RSSI, dBm). Connect to "
            "one with 'massagectl stream ble://NAME' or ble://ADDRESS (a sensor's: "
            "ble://ADDRESS?kind=KIND)."
        ),
    )
    p.add_argument(
        "--all", action="store_true", help="also list devices no driver knows (kind null)"
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
    from device.ble.discovery import scan_for_devices
    from device.links.drivers import with_kinds

    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    found = with_kinds(await scan_for_devices(args.timeout, hci=args.hci), include_unknown=args.all)
    for device in found:
        if args.json:
            print(
                json.dumps(
                    {
                        "kind": device.kind,
                        "name": device.name,
                        "address": device.address,
                        "rssi_dbm": device.rssi_dbm,
                    }
                )
            )
        else:
            print(
                f"{device.kind or '?':<10} {device.name or '?':<16} {device.address}  "
                f"{device.rssi_dbm} dBm"
            )
    if not args.json:
        print(f"{len(found)} device(s) found in {args.timeout:g} s", file=sys.stderr)
    return 0
