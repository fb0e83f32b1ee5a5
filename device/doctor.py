"""``massagectl doctor``'s checks of what talks to devices (docs/doctor.md): the BLE backend,
serial ports and whether this user may open them, the config folder, liblsl, the versions.
Each check is one ``Check``: ok or a problem, what was found, and the fix in words. The Qt
check is the face's (``ui/commands/doctor.py``): it starts Qt in a child process.

Nothing here raises for what it finds: a check that fails is a problem line, never a
traceback. Tests inject each problem (no D-Bus, an unreadable port, a config folder that
cannot be written) by patching what a check reads, not by changing the machine.
"""

from __future__ import annotations

import asyncio
import grp
import os
import platform
import sys
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version

from device.ble.factory import ENV_VAR, bumble_transport
from device.config.known_devices import config_dir
from device.errors import UsageError

#: The distributions whose versions doctor reports (optional ones say "not installed").
PACKAGES = (
    "massagectl", "numpy", "scipy", "bleak", "bumble", "pyserial", "PySide6-Essentials",
    "pyqtgraph", "msgspec", "mne-lsl", "pyedflib",
)  # fmt: skip
PROBE_TIMEOUT_S = 5.0


@dataclass
class Check:
    name: str
    ok: bool
    found: str
    fix: str = ""
    #: a problem with something only some commands need (the lsl extra): doctor's exit
    #: code stays 0 for it
    optional: bool = False

    @property
    def status(self) -> str:
        return "ok" if self.ok else "problem"

    def to_dict(self) -> dict:
        return {"status": self.status, **asdict(self)}


def check_versions() -> Check:
    parts = [f"Python {platform.python_version()} ({sys.executable})"]
    for name in PACKAGES:
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} not installed")
    ok = sys.version_info >= (3, 11)
    return Check("versions", ok, "; ".join(parts), "" if ok else "use Python 3.11 or newer")


# ---- BLE ------------------------------------------------------------------------------------


def _system_bus_path() -> str:
    """The system D-Bus socket path (DBUS_SYSTEM_BUS_ADDRESS's unix:path=, else the
    standard place)."""
    address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "")
    for part in address.split(";"):
        kind, _, rest = part.partition(":")
        if kind != "unix":
            continue
        for item in rest.split(","):
            key, _, value = item.partition("=")
            if key == "path":
                return value
    return "/var/run/dbus/system_bus_socket"


async def _bluez_on_dbus() -> tuple[bool, str]:
    """Whether BlueZ owns its name on the system D-Bus; (False, why) when the bus or BlueZ
    is not there."""
    from dbus_fast import BusType, Message
    from dbus_fast.aio import MessageBus

    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    try:
        reply = await bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="NameHasOwner",
                signature="s",
                body=["org.bluez"],
            )
        )
    finally:
        bus.disconnect()
    if reply is None or not reply.body or not reply.body[0]:
        return False, "the system D-Bus is there but BlueZ (bluetoothd) is not running"
    return True, "BlueZ answers on the system D-Bus"


async def _open_hci(transport: str) -> None:
    from device.ble.bumble_host import probe_transport

    await probe_transport(transport)


async def check_ble(hci: str | None = None) -> Check:
    """The BLE backend: a Bumble transport (``--hci`` or MASSAGECTL_BLE) that opens, or on
    Linux BlueZ reachable over the system D-Bus; other systems' stacks are bleak's own."""
    ways_out = (
        f"or use a Bumble HCI transport with --hci TRANSPORT or {ENV_VAR}=bumble:TRANSPORT "
        "(e.g. the one 'massagectl sim ble' prints)"
    )
    try:
        transport = bumble_transport(hci)
    except UsageError as exc:
        return Check("ble", False, str(exc), f"set {ENV_VAR}=bumble:TRANSPORT or unset it")
    if transport is not None:
        where = "--hci" if hci is not None else ENV_VAR
        try:
            await asyncio.wait_for(_open_hci(transport), PROBE_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError, ImportError) as exc:
            return Check(
                "ble",
                False,
                f"Bumble transport {transport!r} ({where}) does not open: "
                f"{type(exc).__name__}: {exc}",
                "start what serves it ('massagectl sim ble' prints its transport), plug in "
                f"the dongle, or fix {where}",
            )
        return Check("ble", True, f"Bumble transport {transport!r} ({where}) opens")
    if not sys.platform.startswith("linux"):
        return Check("ble", True, f"the OS's Bluetooth stack ({sys.platform}) through bleak")
    try:
        ok, found = await asyncio.wait_for(_bluez_on_dbus(), PROBE_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError, ImportError) as exc:
        return Check(
            "ble",
            False,
            f"the system D-Bus cannot be reached at {_system_bus_path()} "
            f"({type(exc).__name__}: {getattr(exc, 'strerror', None) or exc})",
            "start D-Bus and BlueZ (systemctl start dbus bluetooth), " + ways_out,
        )
    if not ok:
        return Check("ble", False, found, "start BlueZ (systemctl start bluetooth), " + ways_out)
    return Check("ble", True, found)


# ---- serial ---------------------------------------------------------------------------------


def _in_group(name: str) -> bool | None:
    """Whether this user is in group ``name``; None when there is no such group."""
    try:
        gid = grp.getgrnam(name).gr_gid
    except KeyError:
        return None
    return os.geteuid() == 0 or gid in os.getgroups() or gid == os.getegid()


def check_serial() -> list[Check]:
    """One check per serial port pyserial lists: whether this user may open it."""
    from serial.tools import list_ports

    ports = sorted(list_ports.comports(), key=lambda p: p.device)
    if not ports:
        return [Check("serial", True, "no serial ports found (nothing plugged in)")]
    checks = []
    dialout = _in_group("dialout") if sys.platform.startswith("linux") else None
    for port in ports:
        label = f"{port.device} ({port.description})" if port.description else port.device
        if os.access(port.device, os.R_OK | os.W_OK):
            checks.append(Check("serial", True, f"{label}: this user may open it"))
            continue
        if dialout is False:
            fix = (
                "add yourself to the 'dialout' group (sudo usermod -aG dialout $USER), then "
                "log out and in again"
            )
        else:
            fix = "ask for read and write access to the port (its group, or a udev rule)"
        found = f"{label}: this user may not open it" + (
            " (not in the 'dialout' group)" if dialout is False else ""
        )
        checks.append(Check("serial", False, found, fix))
    return checks


# ---- files and LSL ----------------------------------------------------------------------------


def check_config_folder() -> Check:
    folder = config_dir()
    fix_env = "or set MASSAGECTL_CONFIG_DIR to a folder you may write"
    if folder.exists() and not folder.is_dir():
        return Check(
            "config",
            False,
            f"{folder} is a file, not a folder",
            f"move the file {folder} away, {fix_env}",
        )
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        what = "it" if existing == folder else f"{existing}, where it would be made,"
        return Check(
            "config",
            False,
            f"{folder}: {what} cannot be written by this user",
            f"give yourself write access to {existing}, {fix_env}",
        )
    made = "" if folder.exists() else " (made at the first pairing or recording)"
    return Check("config", True, f"{folder} is writable{made}")


def check_lsl() -> Check:
    try:
        from mne_lsl import lsl
    except ImportError:
        return Check(
            "lsl",
            False,
            "the lsl extra is not installed (liblsl not found)",
            "only --lsl needs it: pip install 'massagectl[lsl]'",
            optional=True,
        )
    except (OSError, RuntimeError) as exc:
        return Check(
            "lsl", False, f"liblsl does not load: {exc}", "reinstall mne-lsl", optional=True
        )
    return Check("lsl", True, f"liblsl {lsl.library_version()} (mne-lsl)")


async def device_checks(hci: str | None = None) -> list[Check]:
    return [
        check_versions(),
        await check_ble(hci),
        *check_serial(),
        check_config_folder(),
        check_lsl(),
    ]
