"""``ble://NAME`` for the force sensors that speak their own protocols (docs/devices.md): the
driver the registry picks (``device.links.drivers``) behind the adapter link, over bleak's
public API on the backend ``device.ble.factory`` picks.

GATT devices (Progressor, Force Board): find the device by name (or address), connect,
subscribe the driver's characteristics, write its commands with response. The WH-C06 has no
connection: a scanner listens to its advertisements (every one: no duplicate filtering, or
a steady weight would look like a lost link) and 10 s without one is a lost link.

Run against the software-radio peripherals of ``massagectl sim ble --device K``
(``tests/ble/test_sensor_processes.py``); never yet against a real device.
"""

from __future__ import annotations

import asyncio

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from device.ble import factory
from device.errors import DeviceNotFoundError, LinkClosedError, LinkError
from device.links.ble import DEFAULT_SCAN_TIMEOUT_S, BondResult, scan_timeout_from_url
from device.links.drivers import driver_class, kind_of
from device.links.drivers.base import SensorLink
from device.urls import DeviceUrl


def open_sensor_ble(url: DeviceUrl, kind: str, *, timebase=None, hci: str | None = None):
    return SensorBleLink(url, kind, timebase=timebase, hci=hci)


class SensorBleLink(SensorLink):
    kind = "ble"

    def __init__(self, url: DeviceUrl, kind: str, *, timebase=None, hci: str | None = None):
        super().__init__(url, driver_class(kind)(), timebase=timebase)
        self.scan_timeout_s = scan_timeout_from_url(url, DEFAULT_SCAN_TIMEOUT_S)
        self.hci = hci
        self.backend = factory.describe(hci)
        self._scanner_backend, self._client_backend = factory.backends(hci)
        self.client: BleakClient | None = None
        self.scanner: BleakScanner | None = None
        self.address: str | None = None
        self.name = ""
        self._closing = False

    async def pair(self) -> BondResult:
        """No bond: none of these devices asks for one (their public clients connect
        without pairing); ``pair`` remembers the device and its zero without keys."""
        return BondResult(
            False, None, f"the {self.driver.model} does not bond (its protocol has no pairing)"
        )

    def _matches(self, device: BLEDevice, adv: AdvertisementData) -> bool:
        if self.url.is_ble_address:
            return device.address.upper() == self.url.target.upper()
        if adv.local_name != self.url.target:
            return False
        kind = kind_of(adv.local_name, adv.service_uuids, adv.manufacturer_data)
        return kind in (None, self.driver.kind)

    async def _connect(self) -> None:
        try:
            if self.driver.notify_uuids:
                await self._connect_gatt()
            else:
                await self._listen()
        except BleakError as exc:
            missing = factory.no_bluetooth(exc, self.hci)
            if missing is not None:
                raise missing from exc
            raise LinkError(f"{self.url}: {exc} ({self.backend})") from exc

    async def _connect_gatt(self) -> None:
        device = await BleakScanner.find_device_by_filter(
            self._matches,
            timeout=self.scan_timeout_s,
            backend=self._scanner_backend,  # type: ignore[arg-type]
        )
        if device is None:
            raise DeviceNotFoundError(
                f"{self.url}: no {self.driver.model} found within {self.scan_timeout_s:g} s"
            )
        self.address, self.name = device.address, device.name or ""
        client = BleakClient(
            device, disconnected_callback=self._on_disconnected, backend=self._client_backend
        )
        await client.connect()
        self.client = client
        for uuid in self.driver.notify_uuids:
            await client.start_notify(uuid, self._notified(uuid))

    def _notified(self, uuid: str):
        def callback(_char, data: bytearray) -> None:
            self._on_value(uuid, bytes(data))

        return callback

    async def _listen(self) -> None:
        company = 0x0100
        found = asyncio.get_running_loop().create_future()

        def seen(device: BLEDevice, adv: AdvertisementData) -> None:
            if not self._matches(device, adv) or _is_scan_response(adv):
                return
            if not found.done():
                self.address, self.name = device.address, adv.local_name or ""
                found.set_result(True)
            data = adv.manufacturer_data.get(company)
            if data is not None:
                self._on_value("advertisement", bytes(data))

        self.scanner = BleakScanner(
            seen,
            backend=self._scanner_backend,
            # every advertisement, not only changes (BlueZ filters duplicates by default)
            bluez={"filters": {"DuplicateData": True}},
        )
        await self.scanner.start()
        try:
            await asyncio.wait_for(found, self.scan_timeout_s)
        except TimeoutError:
            await self.scanner.stop()
            raise DeviceNotFoundError(
                f"{self.url}: no {self.driver.model} heard within {self.scan_timeout_s:g} s"
            ) from None

    async def _write(self, char: str, data: bytes) -> None:
        if self.client is None:
            return  # an advertising-only device takes no writes
        try:
            await self.client.write_gatt_char(char, data, response=True)
        except (BleakError, TimeoutError) as exc:
            raise LinkClosedError(f"{self.url}: write failed: {exc}") from exc

    def _on_disconnected(self, _client: BleakClient) -> None:
        if not self._closing:
            self.lost("the device disconnected (BLE link lost)")

    async def _disconnect(self) -> None:
        self._closing = True
        if self.scanner is not None:
            await self.scanner.stop()
        client, self.client = self.client, None
        if client is not None:
            await client.disconnect()


def _is_scan_response(adv: AdvertisementData) -> bool:
    """A scan response that repeats an advertisement already taken: Bumble's software
    controller reports every advertising event twice (as ADV_IND and as SCAN_RSP, even to a
    passive scanner), which would double the WH-C06's rate. A real scale's advertisements
    are not scannable, so nothing is lost on air."""
    return any(getattr(p, "is_scan_response", False) for p in adv.platform_data or ())
