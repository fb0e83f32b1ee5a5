"""``massagectl pair``, ``massagectl devices`` and ``massagectl forget``: the known devices
(docs/pairing.md)."""

from __future__ import annotations

import json
import sys

from device.errors import UsageError

_HCI_HELP = (
    "use the Bumble backend on this HCI transport, e.g. tcp-client:127.0.0.1:PORT from "
    "'massagectl sim ble', or usb:0 (same as MASSAGECTL_BLE=bumble:TRANSPORT, and wins over it)"
)


def register(sub) -> None:
    p = sub.add_parser(
        "pair",
        help="pair a BLE device: bond, tare, calibrate and remember it",
        description=(
            "Find the device by name or address, bond with it (LE Secure Connections where "
            "the BLE backend can), read its Device Information, tare it (let it lie still "
            "and unloaded) and, with --known-n, calibrate its scale against a known force "
            "you press and hold. The device and its calibration are remembered in the "
            "config folder; every later session with ble://NAME uses that calibration."
        ),
    )
    p.add_argument("target", metavar="NAME|ADDRESS", help="advertised name or BLE address")
    p.add_argument("--hci", metavar="TRANSPORT", help=_HCI_HELP)
    p.add_argument(
        "--known-n",
        type=float,
        metavar="F",
        help="also calibrate the scale: press and hold F newtons when asked",
    )
    p.add_argument(
        "--press-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="wait up to S seconds for the known press (default 60)",
    )
    p.add_argument(
        "--tare-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help=(
            "wait up to S seconds for the ball to lie still with nothing on it for the "
            "tare (default 30)"
        ),
    )
    p.add_argument(
        "--speed",
        type=float,
        default=None,
        metavar="K",
        help="simulated devices only: the simulator runs K times faster",
    )
    p.add_argument("--json", action="store_true", help="print the stored record as JSON")
    p.set_defaults(func=run_pair)

    d = sub.add_parser(
        "devices",
        help="list the paired devices",
        description="List the devices remembered by 'massagectl pair', with calibration "
        "and bonding.",
    )
    d.add_argument("--json", action="store_true", help="one JSON object per device")
    d.set_defaults(func=run_devices)

    f = sub.add_parser(
        "forget",
        help="forget a paired device (record, calibration and bonding keys)",
        description="Remove a device remembered by 'massagectl pair', with its calibration "
        "and bonding keys. The device itself may still hold its half of the bond.",
    )
    f.add_argument("target", metavar="NAME|ADDRESS")
    f.set_defaults(func=run_forget)


def _target_url(target: str) -> str:
    target = target.removeprefix("ble://")
    if not target or "?" in target or "/" in target:
        raise UsageError(f"{target!r}: give a device name or a BLE address")
    return f"ble://{target}"


async def run_pair(args) -> int:
    from device.config.known_devices import KnownDevices
    from device.links import open_link
    from device.pairing.pair import pair_device

    if args.press_timeout <= 0:
        raise UsageError("--press-timeout must be positive")
    if not args.tare_timeout > 0:
        raise UsageError("--tare-timeout must be positive")
    options = {"hci": args.hci} if args.hci is not None else {}
    link = open_link(_target_url(args.target), speed=args.speed, **options)

    waiting = WaitView(sys.stderr)

    def say(text: str) -> None:
        waiting.clear()
        print(text, file=sys.stderr, flush=True)

    store = KnownDevices()
    result = await pair_device(
        link,
        known_force_n=args.known_n,
        press_timeout_s=args.press_timeout,
        tare_timeout_s=args.tare_timeout,
        say=say,
        store=store,
        watch=waiting.show,
    )
    waiting.clear()
    record = result.device
    if args.json:
        print(json.dumps(_public(record.to_dict())))
    else:
        cal = record.calibration
        print(
            f"paired {record.name} ({record.address}): {record.model} fw {record.firmware} "
            f"sn {record.serial_number}; calibration {cal.how} {cal.scale_counts_per_n:.2f} "
            f"counts/N, zero {cal.offset_counts:.0f}; "
            + ("bonded" if record.bonded else f"not bonded ({record.bond_note})")
        )
        print(f"saved in {store.path}", file=sys.stderr)
    return 0


_STATE_WORDS = {
    "loaded": "let go of the ball",
    "moving": "keep the ball still",
    "zeroed": "let go: zeroing again",
    "ready": "still and unloaded: zeroing",
}


class WaitView:
    """The guided wait's live reading and countdown (``device.pairing.pair.WaitReading``).
    On a terminal one line rewritten in place at every look; without one (a log, a pipe, a
    service) nothing is asked of anyone: a plain countdown line when the wait starts and then
    every ``EVERY_S`` seconds of the countdown, so the log shows that it waits and for how
    long."""

    EVERY_S = 5.0

    def __init__(self, stream) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._open_line = False
        self._last_bucket: int | None = None

    def text(self, reading) -> str:
        return (
            f"waiting for the ball: {reading.force_n:+.1f} N, {_STATE_WORDS[reading.state]}; "
            f"{reading.left_s:.0f} s left of {reading.timeout_s:g} s"
        )

    def show(self, reading) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + self.text(reading))
            self.stream.flush()
            self._open_line = True
            return
        if reading.state == "ready":
            return
        bucket = int((reading.timeout_s - reading.left_s) // self.EVERY_S)
        if bucket != self._last_bucket:
            self._last_bucket = bucket
            print(self.text(reading), file=self.stream, flush=True)

    def clear(self) -> None:
        """End the rewritten line before any other text."""
        if self._open_line:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._open_line = False


def _public(data: dict) -> dict:
    """A record for printing: bonding keys are secrets and are not shown."""
    bond = data.get("bond")
    if bond:
        data["bond"] = {k: v for k, v in bond.items() if k != "keys"}
        data["bond"]["has_keys"] = bool(bond.get("keys"))
    return data


def run_devices(args) -> int:
    from device.config.known_devices import KnownDevices

    store = KnownDevices()
    devices = store.devices()
    for d in devices:
        if args.json:
            print(json.dumps(_public(d.to_dict())))
            continue
        cal = d.calibration
        cal_text = (
            f"{cal.how} {cal.scale_counts_per_n:.2f} counts/N zero {cal.offset_counts:.0f} "
            f"({cal.when})"
            if cal
            else "no calibration"
        )
        bond_text = (
            "bonded" if d.bonded else f"not bonded{': ' + d.bond_note if d.bond_note else ''}"
        )
        print(f"{d.name:<10} {d.address}  {d.model} fw {d.firmware}  {cal_text}  {bond_text}")
    if not args.json:
        print(f"{len(devices)} known device(s) in {store.path}", file=sys.stderr)
    return 0


def run_forget(args) -> int:
    from device.config.known_devices import KnownDevices

    removed = KnownDevices().remove(args.target.removeprefix("ble://"))
    print(f"forgot {removed.name} ({removed.address})")
    return 0
