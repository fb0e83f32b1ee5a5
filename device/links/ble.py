"""``ble://NAME`` or ``ble://AA:BB:CC:DD:EE:FF``: a device over Bluetooth LE, through bleak's
public API only (``BleakScanner``, ``BleakClient``); the backend class comes from
``device.ble.factory`` (the OS's, or Bumble on ``--hci`` / ``MASSAGECTL_BLE``).

On open: find the device advertising our service (by name or address, within
``scan_timeout_s``), connect, read Battery and Device Information, subscribe FORCE and
STATUS, and size batches from the negotiated MTU (one ForceBatch per notification). Each
notification is one protocol message (no framing, no CRC); commands are written to COMMAND.
A disconnect we did not ask for ends the link with LinkClosedError.

``ble://NAME?timeout=S`` sets how long to look for the device (default 10 s).

Bonding (docs/pairing.md): ``pair()`` bonds the open link through bleak's ``pair``; a
backend that cannot (macOS pairs on its own when a characteristic asks for it) gives a
``BondResult`` that says so rather than an error. On the Bumble backend a bonded device's
link is encrypted on every connect, and ``security`` tells whether it is.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakDeviceNotFoundError, BleakError

from device.ble import factory
from device.errors import (
    BadUrlError,
    DeviceNotFoundError,
    DeviceTimeoutError,
    LinkClosedError,
    LinkError,
)
from device.links.base import Link
from device.urls import DeviceUrl
from firmware_bridge import gatt
from firmware_bridge.messages import (
    MAX_SAMPLES_PER_BATCH,
    Keepalive,
    Message,
    ProtocolError,
    UnsupportedVersion,
    decode_message,
    encode_message,
)

DEFAULT_SCAN_TIMEOUT_S = 10.0
DEFAULT_CONNECT_TIMEOUT_S = 10.0

_DIS_FIELDS = {
    "manufacturer": gatt.MANUFACTURER_CHAR_UUID,
    "model": gatt.MODEL_CHAR_UUID,
    "serial_number": gatt.SERIAL_CHAR_UUID,
    "firmware": gatt.FIRMWARE_CHAR_UUID,
}


@dataclass(frozen=True)
class BondResult:
    """What ``BleLink.pair`` achieved: ``bonded``; ``encrypted`` (None: the backend cannot
    tell); ``note`` says why not bonded, in words for the user."""

    bonded: bool
    encrypted: bool | None
    note: str = ""


def scan_timeout_from_url(url: DeviceUrl, default_s: float) -> float:
    """A ``ble://`` URL's scan timeout (``timeout=S``, else ``default_s``), after checking
    that it has no parameter but ``timeout`` and ``kind``."""
    unknown = set(url.params) - {"timeout", "kind"}
    if unknown:
        raise BadUrlError(f"{url}: unknown parameter(s) {', '.join(sorted(unknown))}")
    try:
        timeout_s = float(url.params.get("timeout", default_s))
        if not timeout_s > 0:
            raise ValueError
    except ValueError:
        raise BadUrlError(f"{url}: timeout must be a positive number of seconds") from None
    return timeout_s


class BleLink(Link):
    kind = "ble"

    def __init__(
        self,
        url: DeviceUrl,
        *,
        hci: str | None = None,
        scan_timeout_s: float = DEFAULT_SCAN_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        timebase=None,
    ) -> None:
        super().__init__(url, timebase=timebase)
        self.scan_timeout_s = scan_timeout_from_url(url, scan_timeout_s)
        self.hci = hci
        self.backend = factory.describe(hci)
        self._scanner_backend, self._client_backend = factory.backends(hci)
        self.connect_timeout_s = connect_timeout_s
        self.client: BleakClient | None = None
        self.address: str | None = None
        #: the advertised name of the device found
        self.name = ""
        self.battery_pct: int | None = None
        #: Device Information Service strings: manufacturer, model, serial_number, firmware
        self.device_info: dict[str, str] = {}
        self.mtu: int | None = None
        self.bad_notifications = 0
        #: ``{"encrypted": bool}`` once open (Bumble backend), or None
        #: when the backend cannot tell
        self.security: dict[str, bool] | None = None
        self._closing = False

    # ---- open -----------------------------------------------------------------------------

    async def _find(self) -> BLEDevice:
        target = self.url.target
        by_address = self.url.is_ble_address

        def matches(device: BLEDevice, adv: AdvertisementData) -> bool:
            if by_address:
                return device.address.upper() == target.upper()
            return adv.local_name == target

        try:
            device = await BleakScanner.find_device_by_filter(
                matches,
                timeout=self.scan_timeout_s,
                service_uuids=[gatt.SERVICE_UUID],
                # None is bleak's default backend: BleakScanner takes it, but bleak's
                # ExtraArgs TypedDict types ``backend`` as non-optional
                backend=self._scanner_backend,  # type: ignore[arg-type]
            )
        except (BleakError, OSError) as exc:
            missing = factory.no_bluetooth(exc, self.hci)
            if missing is not None:
                raise missing from exc
            if not isinstance(exc, BleakError):
                raise
            raise LinkError(f"{self.url}: cannot scan ({self.backend}): {exc}") from exc
        if device is None:
            raise DeviceNotFoundError(
                f"{self.url}: no device offering the massagectl service was found "
                f"within {self.scan_timeout_s:g} s (backend {self.backend}); is it on, "
                "advertising and not connected to another host? Try 'massagectl scan'."
            )
        return device

    async def _open(self) -> None:
        device = await self._find()
        self.address = device.address
        self.name = device.name or ""
        client = BleakClient(
            device,
            disconnected_callback=self._on_disconnected,
            timeout=self.connect_timeout_s,
            backend=self._client_backend,
        )
        try:
            await client.connect()
        except TimeoutError as exc:
            raise DeviceTimeoutError(
                f"{self.url}: connecting to {device.address} did not complete within "
                f"{self.connect_timeout_s:g} s"
            ) from exc
        except BleakDeviceNotFoundError as exc:
            raise DeviceNotFoundError(f"{self.url}: {device.address} went away: {exc}") from exc
        except BleakError as exc:
            raise LinkError(f"{self.url}: connecting to {device.address} failed: {exc}") from exc
        self.client = client
        self.security = factory.link_security(device.address, hci=self.hci)
        try:
            await self._set_up(client)
        except BaseException:
            self._closing = True
            await client.disconnect()
            raise

    async def _set_up(self, client: BleakClient) -> None:
        try:
            battery = await client.read_gatt_char(gatt.BATTERY_LEVEL_CHAR_UUID)
            self.battery_pct = battery[0] if battery else None
            for name, uuid in _DIS_FIELDS.items():
                raw = await client.read_gatt_char(uuid)
                self.device_info[name] = bytes(raw).decode("utf-8", errors="replace")
            self.mtu = client.mtu_size
            if self.mtu < gatt.min_att_mtu():
                raise LinkError(
                    f"{self.url}: ATT MTU {self.mtu} is too small for the protocol (needs "
                    f"{gatt.min_att_mtu()}); the MTU exchange failed or was refused"
                )
            self.max_samples_per_batch = min(
                MAX_SAMPLES_PER_BATCH, gatt.samples_per_notification(self.mtu)
            )
            await client.start_notify(gatt.FORCE_CHAR_UUID, self._on_notification)
            await client.start_notify(gatt.STATUS_CHAR_UUID, self._on_notification)
        except BleakError as exc:
            raise LinkError(f"{self.url}: GATT set-up failed: {exc}") from exc
        except TimeoutError as exc:
            raise DeviceTimeoutError(f"{self.url}: GATT set-up timed out") from exc

    async def pair(self) -> BondResult:
        """Bond with the device on this open link (LE Secure Connections on the Bumble
        backend, whatever the OS offers otherwise). A backend that cannot bond is reported
        in the result, not raised: the device still works unbonded."""
        client, address = self.client, self.address
        if client is None or address is None:
            raise LinkClosedError(f"{self.url}: not open")
        try:
            await client.pair()
        except NotImplementedError:
            return BondResult(
                False, None, f"the {self.backend} BLE backend cannot bond from an app"
            )
        except BleakError as exc:
            return BondResult(False, None, f"bonding failed ({self.backend}): {exc}")
        except TimeoutError:
            return BondResult(False, None, f"bonding timed out ({self.backend})")
        self.security = factory.link_security(address, hci=self.hci)
        if self.security is None:
            return BondResult(True, None, "the operating system keeps the keys")
        return BondResult(True, self.security["encrypted"])

    # ---- traffic --------------------------------------------------------------------------

    def _on_notification(self, _char, data: bytearray) -> None:
        try:
            msg = decode_message(bytes(data))
        except ProtocolError as exc:
            # One bad value is counted (like a CRC error on serial) and the stream goes on.
            self.bad_notifications += 1
            self.stats.bad_frames += 1
            if isinstance(exc, UnsupportedVersion):
                self.stats.wrong_version += 1
                self.stats.last_wrong_version = exc.version
            return
        self._deliver(msg)

    async def _send(self, msg: Message) -> None:
        assert self.client is not None
        # Keepalives go without response (they must never queue behind anything); every
        # other command is written with response so that a dead link fails the write.
        response = not isinstance(msg, Keepalive)
        try:
            await self.client.write_gatt_char(
                gatt.COMMAND_CHAR_UUID, encode_message(msg), response=response
            )
        except BleakError as exc:
            raise LinkClosedError(
                f"{self.url}: write of {type(msg).__name__} failed: {exc}"
            ) from exc
        except TimeoutError as exc:
            raise LinkClosedError(f"{self.url}: write of {type(msg).__name__} timed out") from exc

    def _on_disconnected(self, _client: BleakClient) -> None:
        if not self._closing:
            self._fail(LinkClosedError(f"{self.url}: the device disconnected (BLE link lost)"))

    async def _close(self) -> None:
        self._closing = True
        client, self.client = self.client, None
        if client is not None:
            try:
                await asyncio.shield(client.disconnect())
            except BleakError as exc:
                raise LinkClosedError(f"{self.url}: disconnect failed: {exc}") from exc
