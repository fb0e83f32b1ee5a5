"""A bleak backend on Bumble: ``BaseBleakScanner`` and ``BaseBleakClient`` over a Bumble host
on any HCI transport Bumble opens (``tcp-client:HOST:PORT`` for ``massagectl sim ble``,
``usb:0`` for a USB dongle, ...). Applications use bleak's public API and pass the classes
from :func:`backend_classes` (or ``device.ble.factory``) as ``backend=``.

Behaviour as bleak documents it for its own backends:
- ATT error responses become ``BleakGATTProtocolError`` (with the ATT code);
- a connect that does not complete within its timeout raises ``TimeoutError``;
- a disconnect we did not ask for (peer, supervision timeout, lost HCI transport) calls the
  ``disconnected_callback``.

Bumble 0.0.236 pitfalls handled here:
- connection cancel is a no-op on the software controller, so a connect to an absent
  device would hang forever: ``connect`` first listens for the device's advertisement
  (within the timeout; none -> ``BleakDeviceNotFoundError``) and never starts a connect to
  a device that is not advertising; if a started connect still does not complete in time,
  the shared host is discarded (its controller may be stuck) and ``TimeoutError`` raised;
- notifications are cut to ATT_MTU - 3: ``connect`` exchanges the MTU (247) so that a full
  ForceBatch fits, and ``mtu_size`` reports the result for batch sizing;
- 27-byte ACL buffers: ``connect`` asks for LE data length 251 (data-length extension on a
  real controller; ``sim ble``'s controllers are set to 251 already);
- scan responses never arrive: advertisement data is taken as it comes (a scan response
  merged by Bumble repeats fields; they are de-duplicated).
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable
from typing import Any, ClassVar

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bumble import att, core, hci
from bumble.core import AdvertisingData
from bumble.device import Advertisement, Connection, Peer
from bumble.gatt_client import CharacteristicProxy

from device.ble import bumble_host
from device.ble.bumble_host import BumbleHost, HostUnavailableError

logger = logging.getLogger(__name__)

#: ATT_MTU asked for on connect: a 251-byte LE data PDU less the L2CAP header.
PREFERRED_ATT_MTU = 247
LE_MAX_TX_OCTETS = 251
LE_MAX_TX_TIME_US = 2120
#: Time allowed for a requested disconnect before the host is discarded (seconds).
DISCONNECT_TIMEOUT_S = 5.0

_BLEAK_BASE_UUID = "-0000-1000-8000-00805f9b34fb"


def _uuid_str(uuid: core.UUID) -> str:
    """A Bumble UUID as bleak writes it: 128-bit, lower case, dashed."""
    raw = bytes(reversed(uuid.to_bytes(force_128=True)))
    h = raw.hex()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _uuid_from_le(data: bytes) -> str:
    return _uuid_str(core.UUID.from_bytes(data))


_T = AdvertisingData.Type
_UUID_LISTS = {
    _T.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS: 2,
    _T.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS: 2,
    _T.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS: 4,
    _T.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS: 4,
    _T.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS: 16,
    _T.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS: 16,
}
_SERVICE_DATA = {
    _T.SERVICE_DATA_16_BIT_UUID: 2,
    _T.SERVICE_DATA_32_BIT_UUID: 4,
    _T.SERVICE_DATA_128_BIT_UUID: 16,
}


def advertisement_data(adv: Advertisement) -> AdvertisementData:
    """bleak's view of one Bumble advertisement (repeated fields counted once)."""
    name: str | None = None
    uuids: list[str] = []
    manufacturer: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    tx_power: int | None = None
    for ad_type, value in adv.data.ad_structures:
        if ad_type == _T.COMPLETE_LOCAL_NAME or (
            ad_type == _T.SHORTENED_LOCAL_NAME and name is None
        ):
            name = value.decode("utf-8", errors="replace")
        elif ad_type in _UUID_LISTS:
            size = _UUID_LISTS[ad_type]
            for i in range(0, len(value) - size + 1, size):
                uuid = _uuid_from_le(value[i : i + size])
                if uuid not in uuids:
                    uuids.append(uuid)
        elif ad_type in _SERVICE_DATA:
            size = _SERVICE_DATA[ad_type]
            if len(value) >= size:
                service_data[_uuid_from_le(value[:size])] = bytes(value[size:])
        elif ad_type == _T.MANUFACTURER_SPECIFIC_DATA and len(value) >= 2:
            manufacturer[struct.unpack_from("<H", value)[0]] = bytes(value[2:])
        elif ad_type == _T.TX_POWER_LEVEL and value:
            tx_power = struct.unpack_from("<b", value)[0]
    return AdvertisementData(
        local_name=name,
        manufacturer_data=manufacturer,
        service_data=service_data,
        service_uuids=uuids,
        tx_power=tx_power,
        rssi=adv.rssi,
        platform_data=(adv,),
    )


class BumbleScanner(BaseBleakScanner):
    """Scans on the shared Bumble host of ``transport_spec`` (set by ``backend_classes``)."""

    transport_spec: ClassVar[str] = ""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **_platform_args: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._active = scanning_mode != "passive"
        self._host: BumbleHost | None = None

    async def start(self) -> None:
        self.seen_devices = {}
        try:
            host = await bumble_host.acquire(self.transport_spec)
        except HostUnavailableError as exc:
            raise BleakError(str(exc)) from exc
        self._host = host
        try:
            await host.add_scan_listener(self._on_advertisement, self._active)
        except BaseException:
            self._host = None
            await bumble_host.release(host)
            raise

    async def stop(self) -> None:
        host, self._host = self._host, None
        if host is None:
            return
        try:
            await host.remove_scan_listener(self._on_advertisement)
        finally:
            await bumble_host.release(host)

    def _on_advertisement(self, adv: Advertisement) -> None:
        data = advertisement_data(adv)
        if not self.is_allowed_uuid(data.service_uuids):
            return
        address = adv.address.to_string(False)
        device = self.create_or_update_device(address, address, data.local_name, adv.address, data)
        self.call_detection_callbacks(device, data)


def _protocol_error(exc: att.ATT_Error) -> BleakGATTProtocolError:
    return BleakGATTProtocolError(int(exc.error_code))


class BumbleClient(BaseBleakClient):
    """A GATT client on the shared Bumble host of ``transport_spec``."""

    transport_spec: ClassVar[str] = ""

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        services: set[str] | None = None,
        **_platform_args: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._name = (
            address_or_ble_device.name if isinstance(address_or_ble_device, BLEDevice) else None
        )
        self._host: BumbleHost | None = None
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._disconnecting = False
        self._unregister_lost: Callable[[], None] | None = None
        self._subscribers: dict[int, Callable[[bytes], None]] = {}
        self._release_task: asyncio.Task | None = None

    # ---- properties -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        if self._connection is None:
            return att.ATT_DEFAULT_MTU
        return self._connection.att_mtu

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    # ---- connecting -----------------------------------------------------------------------

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self._connection is not None:
            return
        timeout_s = float(kwargs.get("timeout", self._timeout))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        self._disconnecting = False
        self._release_task = None
        try:
            host = await asyncio.wait_for(bumble_host.acquire(self.transport_spec), timeout_s)
        except HostUnavailableError as exc:
            raise BleakError(str(exc)) from exc
        self._host = host
        try:
            await self._connect_on(host, deadline, timeout_s, pair)
        except BaseException:
            await self._abandon()
            raise

    async def _connect_on(
        self, host: BumbleHost, deadline: float, timeout_s: float, pair: bool = False
    ) -> None:
        loop = asyncio.get_running_loop()
        address = await host.find_advertiser(self.address, max(0.0, deadline - loop.time()))
        if address is None:
            raise BleakDeviceNotFoundError(
                self.address,
                f"device {self.address} was not heard advertising within {timeout_s:g} s",
            )
        try:
            connection = await asyncio.wait_for(
                host.device.connect(address), max(0.0, deadline - loop.time())
            )
        except TimeoutError:
            # The controller may still be trying (its cancel is a no-op on Bumble's software
            # controller): this host cannot be trusted to connect again.
            await bumble_host.discard(host)
            raise TimeoutError(
                f"connecting to {self.address} did not complete within {timeout_s:g} s"
            ) from None
        except (core.BaseBumbleError, hci.HCI_Error) as exc:
            raise BleakError(f"connecting to {self.address} failed: {exc}") from exc
        self._connection = connection
        connection.on(Connection.EVENT_DISCONNECTION, self._on_disconnection)
        self._unregister_lost = host.on_lost(self._on_host_lost)
        try:
            await asyncio.wait_for(self._secure(connection, pair), max(0.0, deadline - loop.time()))
            await asyncio.wait_for(self._set_up(connection), max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise TimeoutError(
                f"{self.address}: GATT set-up did not complete within {timeout_s:g} s"
            ) from None
        except att.ATT_Error as exc:
            raise _protocol_error(exc) from exc
        except (core.BaseBumbleError, hci.HCI_Error) as exc:
            raise BleakError(f"{self.address}: GATT set-up failed: {exc}") from exc

    async def _secure(self, connection: Connection, pair: bool) -> None:
        """Pair (LE Secure Connections, bonding) when asked; otherwise, if a bond with this
        device is stored, encrypt the link with it before anything is read (as an OS stack
        does for a bonded device). Keys the device no longer has are an error that says
        what to do, never a silent fall-back to an unencrypted link."""
        assert self._host is not None
        if pair:
            try:
                await connection.pair()
            except (core.BaseBumbleError, hci.HCI_Error) as exc:
                raise BleakError(f"{self.address}: pairing failed: {exc}") from exc
            return
        keystore = self._host.device.keystore
        if keystore is None or await keystore.get(str(connection.peer_address)) is None:
            return
        try:
            await connection.encrypt()
        except (core.BaseBumbleError, hci.HCI_Error) as exc:
            raise BleakError(
                f"{self.address}: the device refused our bonding keys ({exc}); it was reset "
                "or bonded with another host: pair it again with 'massagectl pair'"
            ) from exc

    @property
    def security(self) -> dict[str, Any] | None:
        """The link's security now (None when not connected)."""
        c = self._connection
        if c is None:
            return None
        return {"encrypted": c.is_encrypted}

    async def _set_up(self, connection: Connection) -> None:
        assert self._host is not None
        try:
            await self._host.device.set_data_length(connection, LE_MAX_TX_OCTETS, LE_MAX_TX_TIME_US)
        except hci.HCI_Error as exc:
            # Optional: a controller without data-length extension still works, slower.
            logger.info("%s: LE data length not changed: %s", self.address, exc)
        peer = Peer(connection)
        await peer.request_mtu(PREFERRED_ATT_MTU)
        await peer.discover_all()
        self._peer = peer
        self.services = self._service_collection(peer)

    def _service_collection(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for service in peer.services:
            b_service = BleakGATTService(service, service.handle, _uuid_str(service.uuid))
            collection.add_service(b_service)
            for char in service.characteristics:
                props = [
                    flag.name.lower()
                    for flag in type(char.properties)
                    if flag.name and char.properties & flag
                ]
                b_char = BleakGATTCharacteristic(
                    char,
                    char.handle,
                    _uuid_str(char.uuid),
                    # Bumble's flag names, lower-cased: "write_without_response" is not
                    # Bleak's "write-without-response" literal (tests/ble pin this spelling)
                    props,  # type: ignore[arg-type]
                    lambda: self.mtu_size - 3,
                    b_service,
                )
                collection.add_characteristic(b_char)
                for desc in char.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(desc, desc.handle, _uuid_str(desc.type), b_char)
                    )
        return collection

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            await self._abandon()
            return
        self._disconnecting = True
        try:
            await asyncio.wait_for(connection.disconnect(), DISCONNECT_TIMEOUT_S)
        except TimeoutError:
            if self._host is not None:
                await bumble_host.discard(self._host)
        except (core.BaseBumbleError, hci.HCI_Error) as exc:
            # The link is already gone (e.g. the peer left first): nothing left to close.
            logger.info("%s: disconnect: %s", self.address, exc)
        finally:
            await self._abandon()

    async def _abandon(self) -> None:
        """Forget the connection and let go of the host (idempotent)."""
        self._connection = None
        self._peer = None
        self.services = None
        self._subscribers.clear()
        if self._unregister_lost is not None:
            self._unregister_lost()
            self._unregister_lost = None
        host, self._host = self._host, None
        if host is not None:
            await bumble_host.release(host)

    def _on_disconnection(self, _reason: int) -> None:
        self._lost_unasked()

    def _on_host_lost(self) -> None:
        self._lost_unasked()

    def _lost_unasked(self) -> None:
        """The link went away without our asking: forget it, tell bleak's callback."""
        if self._connection is None or self._disconnecting:
            return  # a requested disconnect cleans up in disconnect()
        self._connection = None
        self._peer = None
        if self._host is not None and self._release_task is None:
            self._release_task = asyncio.get_running_loop().create_task(
                self._abandon(), name=f"bumble-client-release-{self.address}"
            )
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        connection = self._require_connection()
        try:
            await connection.pair()
        except (core.BaseBumbleError, hci.HCI_Error) as exc:
            raise BleakError(f"{self.address}: pairing failed: {exc}") from exc

    async def unpair(self) -> None:
        raise BleakError("unpair is not supported by the Bumble backend; delete the keystore")

    # ---- GATT I/O -------------------------------------------------------------------------

    def _require_connection(self) -> Connection:
        if self._connection is None:
            raise BleakError(f"{self.address}: not connected")
        return self._connection

    def _require_peer(self) -> Peer:
        self._require_connection()
        assert self._peer is not None
        return self._peer

    async def _gatt(self, coro):
        try:
            return await coro
        except att.ATT_Error as exc:
            raise _protocol_error(exc) from exc
        except core.TimeoutError as exc:
            raise TimeoutError(f"{self.address}: GATT request timed out") from exc
        except (core.BaseBumbleError, hci.HCI_Error) as exc:
            raise BleakError(f"{self.address}: {exc}") from exc

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kw: Any
    ) -> bytearray:
        peer = self._require_peer()
        return bytearray(await self._gatt(peer.read_value(characteristic.handle)))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kw: Any
    ) -> bytearray:
        peer = self._require_peer()
        return bytearray(await self._gatt(peer.read_value(descriptor.handle)))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data, response: bool
    ) -> None:
        peer = self._require_peer()
        await self._gatt(peer.write_value(characteristic.handle, bytes(data), response))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data) -> None:
        peer = self._require_peer()
        await self._gatt(peer.write_value(descriptor.handle, bytes(data), True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kw: Any
    ) -> None:
        peer = self._require_peer()
        proxy: CharacteristicProxy = characteristic.obj

        def subscriber(value: bytes) -> None:
            callback(bytearray(value))

        self._subscribers[characteristic.handle] = subscriber
        await self._gatt(peer.subscribe(proxy, subscriber, prefer_notify=True))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        peer = self._require_peer()
        subscriber = self._subscribers.pop(characteristic.handle, None)
        await self._gatt(peer.unsubscribe(characteristic.obj, subscriber))


_classes: dict[str, tuple[type[BumbleScanner], type[BumbleClient]]] = {}


def backend_classes(transport_spec: str) -> tuple[type[BumbleScanner], type[BumbleClient]]:
    """Scanner and client classes bound to the Bumble HCI transport ``transport_spec``, for
    ``BleakScanner(backend=...)`` and ``BleakClient(backend=...)``."""
    if transport_spec not in _classes:
        attrs = {"transport_spec": transport_spec}
        _classes[transport_spec] = (
            type(f"BumbleScanner[{transport_spec}]", (BumbleScanner,), attrs),
            type(f"BumbleClient[{transport_spec}]", (BumbleClient,), attrs),
        )
    return _classes[transport_spec]
