"""Makes bleak scanners and clients, and picks their backend (DESIGN.md, Conventions):

- the OS's default bleak backend (BlueZ, CoreBluetooth, WinRT), unless
- ``MASSAGECTL_BLE=bumble:<transport>`` selects the in-project Bumble backend on that HCI
  transport (``bumble:tcp-client:127.0.0.1:PORT`` for ``massagectl sim ble``,
  ``bumble:usb:0`` for a USB dongle), and
- an ``hci=`` option (the CLI's ``--hci TRANSPORT``) means the same and wins over the
  environment. ``os`` (or an empty value) asks for the OS backend explicitly.

Bumble is imported only when it is chosen.
"""

from __future__ import annotations

import os
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import BaseBleakScanner
from bleak.exc import BleakBluetoothNotAvailableError, BleakDBusError

from device.errors import LinkError, UsageError

ENV_VAR = "MASSAGECTL_BLE"
_PREFIX = "bumble:"


def _parse(value: str, where: str) -> str | None:
    value = value.strip()
    if value in ("", "os", "default"):
        return None
    transport = value.removeprefix(_PREFIX)
    if not transport:
        raise UsageError(
            f"{where}: {value!r} names no Bumble HCI transport "
            "(e.g. tcp-client:127.0.0.1:9000 or usb:0)"
        )
    return transport


def bumble_transport(hci: str | None = None) -> str | None:
    """The Bumble HCI transport to use, or None for the OS's bleak backend. ``hci`` (from
    ``--hci``; ``bumble:`` in front is optional) wins over ``MASSAGECTL_BLE``."""
    if hci is not None:
        return _parse(hci, "--hci")
    env = os.environ.get(ENV_VAR, "").strip()
    if env in ("", "os", "default"):
        return None
    if not env.startswith(_PREFIX):
        raise UsageError(f"{ENV_VAR}={env!r}: expected 'bumble:<transport>' or 'os'")
    return _parse(env, ENV_VAR)


class NoBluetoothError(LinkError):
    """The OS's BLE stack or its adapter is not there (no BlueZ, no adapter, switched off,
    access denied): the message names what is missing and the two ways out."""


#: D-Bus answers meaning nobody serves BlueZ's name (bluetoothd is not running).
_NO_BLUEZ_DBUS_ERRORS = frozenset(
    {"org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"}
)


def no_bluetooth(exc: BaseException, hci: str | None = None) -> NoBluetoothError | None:
    """The one-line error for ``exc`` when it says the OS's BLE stack itself is missing
    (bleak on BlueZ reaches the system D-Bus through a socket, so a machine without one
    fails with an OSError; no adapter, a switched-off one or denied access is bleak's
    BleakBluetoothNotAvailableError), else None. Only on the OS backend: a Bumble
    transport's failures say what they are already."""
    if bumble_transport(hci) is not None:
        return None
    if isinstance(exc, BleakBluetoothNotAvailableError):
        what = f"Bluetooth is not available ({exc.reason.name.lower()}: {exc.args[0]})"
    elif isinstance(exc, BleakDBusError) and exc.dbus_error in _NO_BLUEZ_DBUS_ERRORS:
        what = "BlueZ (bluetoothd) is not running"
    elif isinstance(exc, OSError):
        what = (
            "BlueZ cannot be reached on the system D-Bus "
            f"({type(exc).__name__}: {exc.strerror or exc})"
        )
    else:
        return None
    return NoBluetoothError(
        f"no Bluetooth adapter to use: {what}. Either connect or switch on an adapter "
        "(on Linux with BlueZ running), or use a Bumble HCI transport with --hci TRANSPORT "
        f"or {ENV_VAR}=bumble:TRANSPORT (e.g. the one 'massagectl sim ble' prints)"
    )


def describe(hci: str | None = None) -> str:
    """Which backend is in use, for messages: 'bumble:<transport>' or 'os'."""
    transport = bumble_transport(hci)
    return f"bumble:{transport}" if transport else "os"


def backends(
    hci: str | None = None,
) -> tuple[type[BaseBleakScanner] | None, type[BaseBleakClient] | None]:
    """``(scanner_backend, client_backend)`` for bleak's ``backend=``; ``(None, None)``
    means bleak's default for this OS."""
    transport = bumble_transport(hci)
    if transport is None:
        return None, None
    from device.ble.bumble_backend import backend_classes

    return backend_classes(transport)


def make_scanner(*, hci: str | None = None, **kwargs: Any) -> BleakScanner:
    """A ``BleakScanner`` on the chosen backend (``kwargs`` go to BleakScanner)."""
    scanner_cls, _ = backends(hci)
    return BleakScanner(backend=scanner_cls, **kwargs)


def make_client(device: BLEDevice | str, *, hci: str | None = None, **kwargs: Any) -> BleakClient:
    """A ``BleakClient`` for ``device`` on the chosen backend (``kwargs`` go to BleakClient)."""
    _, client_cls = backends(hci)
    return BleakClient(device, backend=client_cls, **kwargs)


def link_security(address: str, *, hci: str | None = None) -> dict[str, bool] | None:
    """Whether the link to ``address`` is encrypted: ``{"encrypted": bool}`` on the
    Bumble backend, None on the OS backends (bleak has no API for it; the OS stack
    encrypts a bonded device's link itself)."""
    transport = bumble_transport(hci)
    if transport is None:
        return None
    from device.ble import bumble_host

    return bumble_host.link_security(transport, address)
