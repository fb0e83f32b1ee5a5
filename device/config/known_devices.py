"""Known devices: the devices a user has paired, kept in ``known-devices.json`` in the
config folder (platformdirs' user config folder for "massagectl"; ``MASSAGECTL_CONFIG_DIR``
overrides it, and every test sets it).

One record per device: name, address, model, serial number, firmware, the calibration
pairing measured (scale and offset, when, how: ``tare`` or ``two_point``), the bonding
keys when the BLE backend could bond (Bumble's ``PairingKeys`` as a dict: they stay with
the device, and ``forget`` removes both), and when it was paired. The file also holds the
host's own BLE identity (a static random address and an IRK) for the Bumble backend: a
bond is made between two addresses, so the host must come back with the same one.

Writes are atomic (a temporary file in the same folder, fsync, rename) and the previous
good file is kept as ``known-devices.json.bak``. A file that cannot be read is never
overwritten: every read and write raises ``KnownDevicesError`` naming the file, what is
wrong, and the backup, until a person fixes or removes it.

Every operation reads the file afresh and writes it whole: the file is tiny, and another
massagectl (``pair`` in one terminal, ``stream`` in another) may have changed it. A change
(read, modify, write) holds a file lock (``known-devices.json.lock``, the ``filelock``
library) from the read to the rename, so two processes writing at once both keep their
change. Reading is checked against a schema (msgspec): a record of the wrong shape (a
numeric address, a list for a name) is a ``KnownDevicesError`` naming the field.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from filelock import FileLock
from filelock import Timeout as LockTimeout

from device.datafile import loads_json, read_text, validation_message
from device.errors import InputFileError, UsageError
from device.urls import DeviceUrl, parse_url
from dsp.calibration import Calibration, CalibrationError

ENV_CONFIG_DIR = "MASSAGECTL_CONFIG_DIR"
FILE_NAME = "known-devices.json"
FORMAT_VERSION = 1
CALIBRATION_METHODS = ("tare", "two_point")
#: How long a change waits for another process's change to the file to finish.
LOCK_TIMEOUT_S = 10.0


class KnownDevicesError(InputFileError):
    """The known-devices file cannot be read or written."""


def config_dir() -> Path:
    """The config folder: ``MASSAGECTL_CONFIG_DIR`` if set, else the platform's."""
    override = os.environ.get(ENV_CONFIG_DIR, "").strip()
    if override:
        return Path(override)
    import platformdirs

    return platformdirs.user_config_path("massagectl", appauthor=False)


#: The recordings' default place, under the config folder (``--record`` without a folder).
RECORDINGS_DIR_NAME = "recordings"


def recordings_dir() -> Path:
    """Where ``--record`` without a folder records (one new folder per session) and where
    ``massagectl recordings`` looks: ``recordings/`` in the config folder."""
    return config_dir() / RECORDINGS_DIR_NAME


def now_iso() -> str:
    """Now, UTC, ISO 8601 to the second (for ``paired_at`` and calibration ``when``)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def normalize_address(address: str) -> str:
    """``aa:bb:...`` or Bumble's ``AA:BB:.../P`` -> ``AA:BB:...``."""
    return address.split("/", 1)[0].strip().upper()


@dataclass
class StoredCalibration:
    """A calibration measured at pairing: ``raw = force_n * scale + offset``."""

    scale_counts_per_n: float
    offset_counts: float
    #: "tare" (the device's scale, a fresh zero) or "two_point" (zero and a known force)
    how: str
    #: when it was measured (ISO 8601, UTC)
    when: str
    #: the known force of a two-point calibration (newtons)
    known_force_n: float | None = None

    def to_calibration(self) -> Calibration:
        return Calibration(self.scale_counts_per_n, self.offset_counts)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredCalibration:
        cal = cls(
            scale_counts_per_n=float(data["scale_counts_per_n"]),
            offset_counts=float(data["offset_counts"]),
            how=str(data["how"]),
            when=str(data["when"]),
            known_force_n=(
                float(data["known_force_n"]) if data.get("known_force_n") is not None else None
            ),
        )
        if cal.how not in CALIBRATION_METHODS:
            raise ValueError(f"calibration.how must be one of {CALIBRATION_METHODS}")
        cal.to_calibration()  # finite, non-zero scale
        return cal


#: the kinds of device a record can hold (``device.links.drivers.KINDS``, a layer above)
DEVICE_KINDS = ("ball", "progressor", "forceboard", "whc06")


@dataclass
class KnownDevice:
    """One paired device."""

    name: str
    address: str
    model: str = ""
    serial_number: str = ""
    firmware: str = ""
    manufacturer: str = ""
    calibration: StoredCalibration | None = None
    #: Bonding: ``{"keys": <Bumble PairingKeys dict>, "authenticated": bool,
    #: "secure_connections": bool, "backend": str}``; None when not bonded
    bond: dict[str, Any] | None = None
    #: why there is no bond, when the backend could not make one (shown by ``devices``)
    bond_note: str = ""
    paired_at: str = ""
    #: the BLE backend used to pair ("os" or "bumble:<transport>")
    backend: str = ""
    #: what it is: "ball", "progressor", "forceboard" or "whc06" (records from before the
    #: force sensors have none: they are balls)
    kind: str = "ball"

    def __post_init__(self) -> None:
        self.address = normalize_address(self.address)
        if self.kind not in DEVICE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(DEVICE_KINDS)}")

    def matches(self, target: str) -> bool:
        """True if ``target`` is this device's name or address (any case)."""
        return target == self.name or normalize_address(target) == self.address

    @property
    def bonded(self) -> bool:
        return bool(self.bond and self.bond.get("keys"))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)  # asdict, without the deep copies
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KnownDevice:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
        if not data.get("name") or not data.get("address"):
            raise ValueError("a device needs a name and an address")
        values = dict(data)
        cal = values.get("calibration")
        values["calibration"] = StoredCalibration.from_dict(cal) if cal else None
        bond = values.get("bond")
        if bond is not None and not isinstance(bond, dict):
            raise ValueError("bond must be an object")
        return cls(**values)


# ---- the file's schema (msgspec): what a record must look like to be read -----------------

_Number = Annotated[float, msgspec.Meta(ge=-1e300, le=1e300)]
_Text = Annotated[str, msgspec.Meta(min_length=1)]


class _CalibrationSchema(msgspec.Struct, forbid_unknown_fields=True):
    scale_counts_per_n: _Number
    offset_counts: _Number
    how: Literal["tare", "two_point"]
    when: str
    known_force_n: _Number | None = None


class _DeviceSchema(msgspec.Struct, forbid_unknown_fields=True):
    name: _Text
    address: _Text
    model: str = ""
    serial_number: str = ""
    firmware: str = ""
    manufacturer: str = ""
    calibration: _CalibrationSchema | None = None
    bond: dict[str, Any] | None = None
    bond_note: str = ""
    paired_at: str = ""
    backend: str = ""
    kind: Literal["ball", "progressor", "forceboard", "whc06"] = "ball"


class _HostSchema(msgspec.Struct):
    address: _Text
    irk_hex: _Text


class _FileSchema(msgspec.Struct):
    version: int
    devices: list[_DeviceSchema] = []
    host: _HostSchema | None = None


@dataclass
class HostIdentity:
    """The host's own BLE identity for the Bumble backend: a static random address (the
    two top bits set) and an identity resolving key (16 bytes, hex)."""

    address: str
    irk_hex: str


@dataclass
class _Contents:
    devices: list[KnownDevice] = field(default_factory=list)
    host: HostIdentity | None = None
    #: set by a change that found nothing to change: the file is not written
    unchanged: bool = False


class KnownDevices:
    """The known-devices file in ``folder`` (default: ``config_dir()``)."""

    def __init__(self, folder: Path | str | None = None) -> None:
        self.folder = Path(folder) if folder is not None else config_dir()
        self.path = self.folder / FILE_NAME
        self.backup_path = self.folder / (FILE_NAME + ".bak")
        self.lock_path = self.folder / (FILE_NAME + ".lock")

    # ---- reading --------------------------------------------------------------------------

    def _corrupt(self, why: str) -> KnownDevicesError:
        why = why.removeprefix(f"{self.path}: ").removeprefix(": ")
        backup = (
            f"the last good copy is {self.backup_path}"
            if self.backup_path.exists()
            else "there is no backup"
        )
        return KnownDevicesError(
            f"{self.path}: cannot read the known devices ({why}); it was left as it is: fix "
            f"it or move it away ({backup}; without the file, pair your devices again)"
        )

    def _load(self) -> _Contents:
        if not self.path.exists() and not self.path.is_symlink():
            return _Contents()
        text = read_text(self.path, self._corrupt)
        data = loads_json(text, "", self._corrupt)
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise self._corrupt(f"not a version {FORMAT_VERSION} known-devices file")
        try:
            checked = msgspec.convert(data, _FileSchema)
        except msgspec.ValidationError as exc:
            raise self._corrupt(f"bad record: {validation_message(exc)}") from None
        try:
            devices = [KnownDevice.from_dict(msgspec.to_builtins(d)) for d in checked.devices]
        except (ValueError, CalibrationError) as exc:
            raise self._corrupt(f"bad record: {exc}") from None
        host = checked.host
        return _Contents(devices, HostIdentity(host.address, host.irk_hex) if host else None)

    def devices(self) -> list[KnownDevice]:
        """Every known device, in the order they were first paired."""
        return self._load().devices

    def find(self, target: str) -> KnownDevice | None:
        """The device named ``target`` or with address ``target``, or None."""
        for device in self._load().devices:
            if device.matches(target):
                return device
        return None

    def host_identity(self) -> HostIdentity | None:
        return self._load().host

    # ---- writing --------------------------------------------------------------------------

    @staticmethod
    def _text(contents: _Contents) -> str:
        data = {
            "version": FORMAT_VERSION,
            "host": asdict(contents.host) if contents.host else None,
            "devices": [d.to_dict() for d in contents.devices],
        }
        return msgspec.json.format(msgspec.json.encode(data), indent=2).decode() + "\n"

    def _save(self, contents: _Contents) -> None:
        text = self._text(contents)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                shutil.copy2(self.path, self.backup_path)  # the previous good file
            fd, tmp = tempfile.mkstemp(prefix=FILE_NAME + ".", suffix=".tmp", dir=self.folder)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(text)
                    out.flush()
                    os.fsync(out.fileno())
                os.chmod(tmp, 0o600)  # bonding keys are secrets
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise KnownDevicesError(f"{self.path}: cannot write the known devices: {exc}") from exc

    @contextlib.contextmanager
    def _changing(self) -> Iterator[_Contents]:
        """Hold the lock for one read-modify-write: yield the contents to change, then write
        them (only if the block ended without an error)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            lock = FileLock(self.lock_path, timeout=LOCK_TIMEOUT_S)
            lock.acquire()
        except LockTimeout:
            raise KnownDevicesError(
                f"{self.path}: another massagectl kept the known devices locked for "
                f"{LOCK_TIMEOUT_S:g} s ({self.lock_path})"
            ) from None
        except OSError as exc:
            raise KnownDevicesError(
                f"{self.path}: cannot lock the known devices: {exc.strerror or exc}"
            ) from None
        try:
            contents = self._load()
            yield contents
            if not contents.unchanged:
                self._save(contents)
        finally:
            lock.release()

    def put(self, device: KnownDevice, host: HostIdentity | None = None) -> None:
        """Store ``device``, replacing the record with its address (or, failing that, its
        name). Bonding keys already stored for that address are kept unless ``device``
        brings its own. ``host``: the host identity a bond in ``device`` was made with,
        written in the same write."""
        with self._changing() as contents:
            if host is not None:
                contents.host = host
            old = next((d for d in contents.devices if d.address == device.address), None)
            if old is None:
                old = next((d for d in contents.devices if d.name == device.name), None)
            if old is not None:
                if device.bond is None and old.address == device.address:
                    device.bond = old.bond
                contents.devices[contents.devices.index(old)] = device
            else:
                contents.devices.append(device)

    def remove(self, target: str) -> KnownDevice:
        """Forget the device named ``target`` (or with that address), keys and all."""
        with self._changing() as contents:
            for device in contents.devices:
                if device.matches(target):
                    contents.devices.remove(device)
                    return device
            contents.unchanged = True
            raise UsageError(f"no known device {target!r} (see 'massagectl devices')")

    def set_host_identity(self, identity: HostIdentity) -> None:
        with self._changing() as contents:
            contents.host = identity

    # ---- bonding keys (for the Bumble backend's key store) --------------------------------

    def bond_keys(self, address: str) -> dict[str, Any] | None:
        """The stored bonding keys (a Bumble PairingKeys dict) for ``address``, or None."""
        device = self.find(normalize_address(address))
        if device is None or device.bond is None or not device.bonded:
            return None
        return dict(device.bond["keys"])

    def bonded_addresses(self) -> list[str]:
        return [d.address for d in self._load().devices if d.bonded]

    def set_bond(self, address: str, bond: dict[str, Any], host: HostIdentity | None) -> None:
        """Keep ``bond`` with the record of ``address`` (a record named by its address is
        started if there is none), and the host identity it was made with. ``pair`` does
        not come here: it holds its bond in memory and ``put``s it with the record."""
        address = normalize_address(address)
        with self._changing() as contents:
            device = next((d for d in contents.devices if d.address == address), None)
            if device is None:
                device = KnownDevice(name=address, address=address, paired_at=now_iso())
                contents.devices.append(device)
            device.bond = bond
            device.bond_note = ""
            if host is not None:
                contents.host = host

    def delete_bond(self, address: str) -> None:
        address = normalize_address(address)
        with self._changing() as contents:
            contents.unchanged = True
            for device in contents.devices:
                if device.address == address and device.bond is not None:
                    device.bond = None
                    contents.unchanged = False


# ---- what sessions use ------------------------------------------------------------------


def record_for(url: str | DeviceUrl, store: KnownDevices | None = None) -> KnownDevice | None:
    """The known device a ``ble://NAME`` or ``ble://ADDRESS`` URL names, or None (other
    schemes have no records)."""
    parsed = url if isinstance(url, DeviceUrl) else parse_url(url)
    if parsed.scheme != "ble":
        return None
    return (store or KnownDevices()).find(parsed.target)


def calibration_for(url: str | DeviceUrl, store: KnownDevices | None = None) -> Calibration | None:
    """The calibration stored at pairing for the device ``url`` names, or None: every
    session passes it to ``DeviceSession(calibration=...)``, where it overrides the one the
    device reports in DeviceInfo."""
    record = record_for(url, store)
    if record is None or record.calibration is None:
        return None
    return record.calibration.to_calibration()
