"""The simulated force sensors (``simulators.sensors``) on the Bumble software radio, each
as its device shows itself over the air (docs/devices.md names the public source of each fact):

- Tindeq Progressor: a connectable peripheral named ``Progressor_7301`` with the Progressor
  service ``7e4e1701-...``: data ``7e4e1702-...`` (notify) and control ``7e4e1703-...``
  (write, with or without response; one opcode byte).
- PitchSix Force Board: a connectable peripheral named ``Force Board`` with the Force Board
  service ``9a88d67f-...`` (force data ``9a88d682-...`` notify, tare ``9a88d683-...``
  write), the Weight service ``467a8516-...`` (device mode ``467a8517-...`` write), Battery
  (0x180F) and Device Information (0x180A, manufacturer name).
- WH-C06 crane scale: no GATT at all; it advertises as ``IF_B7`` with its weight in the
  manufacturer data (company 0x0100), the data renewed at every sample (100 ms).

The advertisements carry flags and the name only (the 128-bit service UUID and a name do not
fit in 31 bytes; scanners find these devices by name, as the public clients do). Bumble's
software controller sends only connectable undirected advertisements (ADV_IND), so the
WH-C06 here is connectable on paper, where the real scale is not; nobody connects to it.

Simulator time is the loop's time since start, times ``speed``; the sensor steps every
``TICK_S`` and its notifications go to the connected host (dropped, and counted, when none).
"""

from __future__ import annotations

import asyncio
import struct

from bumble import att, hci
from bumble.controller import Controller
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.hci import Address
from bumble.host import Host
from bumble.transport.common import AsyncPipeSink

from simulators import sensors
from simulators.runtime import PeripheralTasks
from simulators.sensors import ADVERTISEMENT, SensorSim

#: how often the sensor is stepped (seconds of wall time)
TICK_S = 0.005
#: advertising interval of the GATT sensors (ms): short, so a scan finds them at once
GATT_ADVERTISING_INTERVAL_MS = 50.0

#: a fixed static random address per simulated sensor (two top bits set)
ADDRESSES = {
    "progressor": "F3:4D:50:52:4F:47",
    "forceboard": "F3:4D:46:42:52:44",
    "whc06": "F3:4D:57:48:43:36",
}

BATTERY_SERVICE = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL = "00002a19-0000-1000-8000-00805f9b34fb"
DEVICE_INFO_SERVICE = "0000180a-0000-1000-8000-00805f9b34fb"
MANUFACTURER_NAME = "00002a29-0000-1000-8000-00805f9b34fb"

_P = Characteristic.Properties
_READ = Characteristic.Permissions.READABLE
_WRITE = Characteristic.Permissions.WRITEABLE
#: AD types (Core spec Supplement, Part A, 1)
_AD_FLAGS, _AD_NAME, _AD_MANUFACTURER = 0x01, 0x09, 0xFF


def _field(ad_type: int, value: bytes) -> bytes:
    return bytes([len(value) + 1, ad_type]) + value


def sensor_advertising_data(name: str, manufacturer: tuple[int, bytes] | None = None) -> bytes:
    """Flags (LE General Discoverable, no BR/EDR), the complete local name and, for the
    WH-C06, manufacturer data (company id u16 little-endian, then the device's bytes)."""
    data = _field(_AD_FLAGS, b"\x06") + _field(_AD_NAME, name.encode("ascii"))
    if manufacturer is not None:
        company, payload = manufacturer
        data += _field(_AD_MANUFACTURER, struct.pack("<H", company) + payload)
    if len(data) > 31:
        raise ValueError(f"advertising data of {len(data)} bytes does not fit 31")
    return data


class SensorPeripheral(PeripheralTasks):
    """A ``SensorSim`` served on a Bumble controller in this process (module docstring).
    Same surface as ``BallPeripheral`` for the software radio: ``start``, ``stop``,
    ``tick_task``, ``failure`` and the counters."""

    def __init__(self, sensor: SensorSim, controller: Controller, *, speed: float = 1.0) -> None:
        super().__init__()
        self.sensor = sensor
        self.speed = speed
        self.name = sensor.name
        self.address = ADDRESSES[sensor.kind]
        self.device = Device(
            name=self.name,
            address=Address(self.address, Address.RANDOM_DEVICE_ADDRESS),
            host=Host(controller, AsyncPipeSink(controller)),
        )
        self.connection: Connection | None = None
        self.chars: dict[str, Characteristic] = {}
        self.advertising = sensor_advertising_data(self.name, self._manufacturer())
        self._t0: float | None = None
        self.connections_served = 0
        self.notifications_sent = 0
        self.notifications_dropped = 0
        self.advertisements_updated = 0
        self._build_services()
        self.device.on(Device.EVENT_CONNECTION, self._on_connection)

    @property
    def firmware(self) -> SensorSim:
        """The simulated device (as ``BallPeripheral.firmware`` is the ball's firmware)."""
        return self.sensor

    def _manufacturer(self) -> tuple[int, bytes] | None:
        if isinstance(self.sensor, sensors.WhC06Sim):
            return (sensors.WHC06_COMPANY_ID, self.sensor.manufacturer_data)
        return None

    # ---- GATT table -----------------------------------------------------------------------

    def _writable(self, uuid: str, props) -> Characteristic:
        async def written(_connection: Connection, value: bytes) -> None:
            await self._on_write(uuid, bytes(value))

        def not_readable(_connection: Connection) -> bytes:
            # Bumble 0.0.236 answers nothing (the client waits 30 s) when a value without a
            # read function is read: answer as a device does, with an ATT error
            raise att.ATT_Error(att.ErrorCode.READ_NOT_PERMITTED)

        char = Characteristic(
            uuid, props, _WRITE, CharacteristicValue(read=not_readable, write=written)
        )
        self.chars[uuid] = char
        return char

    def _notifying(self, uuid: str) -> Characteristic:
        char = Characteristic(uuid, _P.NOTIFY, _READ, b"")
        self.chars[uuid] = char
        return char

    def _build_services(self) -> None:
        write_both = _P.WRITE | _P.WRITE_WITHOUT_RESPONSE
        if isinstance(self.sensor, sensors.ProgressorSim):
            self.device.add_services(
                [
                    Service(
                        sensors.PROGRESSOR_SERVICE,
                        [
                            self._notifying(sensors.PROGRESSOR_DATA),
                            self._writable(sensors.PROGRESSOR_CONTROL, write_both),
                        ],
                    )
                ]
            )
        elif isinstance(self.sensor, sensors.ForceBoardSim):
            battery = Characteristic(
                BATTERY_LEVEL,
                _P.READ,
                _READ,
                CharacteristicValue(read=lambda _c: bytes([self.sensor.battery_pct])),
            )
            self.device.add_services(
                [
                    Service(
                        sensors.FORCEBOARD_SERVICE,
                        [
                            self._notifying(sensors.FORCEBOARD_FORCE),
                            self._writable(sensors.FORCEBOARD_TARE, write_both),
                        ],
                    ),
                    Service(
                        sensors.FORCEBOARD_WEIGHT_SERVICE,
                        [self._writable(sensors.FORCEBOARD_MODE, write_both)],
                    ),
                    Service(BATTERY_SERVICE, [battery]),
                    Service(
                        DEVICE_INFO_SERVICE,
                        [Characteristic(MANUFACTURER_NAME, _P.READ, _READ, b"massagectl sim")],
                    ),
                ]
            )
        # the WH-C06 has no GATT services: everything is in its advertisements

    def now_s(self) -> float:
        """Simulator time (seconds since start, times the speed)."""
        loop = asyncio.get_running_loop()
        if self._t0 is None:
            self._t0 = loop.time()
        return (loop.time() - self._t0) * self.speed

    async def _on_write(self, uuid: str, value: bytes) -> None:
        """A host write: every failure becomes an ATT error answer (an exception of another
        type would leave a write with response unanswered for 30 s, Bumble 0.0.236)."""
        try:
            out = self.sensor.write(uuid, value, self.now_s())
            await self._send(out)
        except Exception as exc:
            raise att.ATT_Error(att.ErrorCode.UNLIKELY_ERROR, message=repr(exc)) from exc

    # ---- connection -----------------------------------------------------------------------

    def _on_connection(self, connection: Connection) -> None:
        self.connection = connection
        self.connections_served += 1
        connection.on(
            Connection.EVENT_DISCONNECTION, lambda _reason: self._on_disconnection(connection)
        )

    def _on_disconnection(self, connection: Connection) -> None:
        if self.connection is connection:
            self.connection = None
        # the host that asked for the stream is gone: the device stops streaming
        self.sensor.streaming = isinstance(self.sensor, sensors.WhC06Sim)
        self._spawn(self._advertise(), "sensor-readvertise")

    async def _advertise(self) -> None:
        interval_ms = GATT_ADVERTISING_INTERVAL_MS
        if isinstance(self.sensor, sensors.WhC06Sim):
            # The scale's rate is its advertising interval. Bumble 0.0.236's software
            # controller times its advertisements in milliseconds from the HCI value, which
            # is in 0.625 ms units: asking for 0.625 x the interval gives the interval.
            interval_ms = self.sensor.ADV_INTERVAL_S * 1000.0 / self.speed * 0.625
        await self.device.start_advertising(
            advertising_data=self.advertising,
            scan_response_data=b"",
            advertising_interval_min=interval_ms,
            advertising_interval_max=interval_ms,
        )

    async def _readvertise(self, payload: bytes) -> None:
        """New manufacturer data in the advertisements (the WH-C06's weight)."""
        data = sensor_advertising_data(self.name, (sensors.WHC06_COMPANY_ID, payload))
        if data == self.advertising:
            return
        self.advertising = data
        await self.device.send_sync_command(
            hci.HCI_LE_Set_Advertising_Data_Command(advertising_data=data)
        )
        self.advertisements_updated += 1

    # ---- running --------------------------------------------------------------------------

    async def start(self) -> None:
        await self.device.power_on()
        await self._advertise()
        self.now_s()
        self._tick_task = asyncio.get_running_loop().create_task(self._run(), name="sensor-tick")

    async def _run(self) -> None:
        while True:
            await self._send(self.sensor.advance(self.now_s()))
            await asyncio.sleep(TICK_S)

    async def _send(self, values: list[tuple[str, bytes]]) -> None:
        for uuid, value in values:
            if uuid == ADVERTISEMENT:
                await self._readvertise(value)
                continue
            connection = self.connection
            if connection is None:
                self.notifications_dropped += 1
                continue
            await self.device.notify_subscriber(connection, self.chars[uuid], value)
            self.notifications_sent += 1
