"""The simulated ball as a real Bumble GATT peripheral (docs/ble.md, "GATT profile").

Services: our custom service (FORCE notify; COMMAND write and write-without-response;
STATUS read and notify), Battery (0x180F) and Device Information (0x180A). Legacy
advertising, connectable, with flags + our 128-bit service UUID + a name of at most 8
characters, and no scan response. The address is a fixed static random address.

Bumble 0.0.236 pitfalls handled here:
- scan responses never arrive: everything a scanner needs is in the advertising data;
- a server callback that raises anything but ``ATT_Error`` leaves a write-with-response
  unanswered and stalls the client for the 30 s ATT timeout: the COMMAND callback turns
  every failure into an ATT error answer (and records it as a firmware event);
- notifications are cut to ATT_MTU - 3: the runner refuses batch sizes that would not fit the
  connection's MTU and never sends a value longer than that;
- after a connection ends the peripheral starts advertising again itself.

Pairing: the ball accepts LE Secure Connections pairing with bonding, Just Works (it has
no display and no buttons), and keeps its keys in memory for the life of the simulator
process, so a host that bonded once encrypts its later links. ``require_encryption``
makes the massagectl service's characteristics refuse an unencrypted link (ATT error
*Insufficient Encryption*), as a ball that insists on a bond would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bumble import att
from bumble.controller import Controller
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.hci import Address
from bumble.host import Host
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport.common import AsyncPipeSink

from firmware_bridge import gatt
from simulators.ble_runtime import (
    DEFAULT_ATT_MTU,
    TICK_S,
    BleFirmwareRunner,
    Channel,
    CommandValueError,
)
from simulators.firmware import Firmware, SimEvent
from simulators.runtime import PeripheralTasks

#: Advertising interval (ms): short, so that a scan finds the ball within a fraction of a
#: second on the software radio.
ADVERTISING_INTERVAL_MS = 50.0

_READ = Characteristic.Permissions.READABLE
_WRITE = Characteristic.Permissions.WRITEABLE
_P = Characteristic.Properties


class BallPeripheral(PeripheralTasks):
    """A firmware served as a GATT peripheral on a Bumble controller (in this process)."""

    def __init__(
        self,
        firmware: Firmware,
        controller: Controller,
        *,
        name: str = gatt.BALL_ADVERTISED_NAME,
        address: str = gatt.SIM_BALL_ADDRESS,
        speed: float = 1.0,
        on_event: Callable[[SimEvent], None] | None = None,
        require_encryption: bool = False,
    ) -> None:
        super().__init__()
        self.firmware = firmware
        self.require_encryption = require_encryption
        self.name = name
        self.address = address
        self.adv_data = gatt.advertising_data(name)
        self.device = Device(
            name=name,
            address=Address(address, Address.RANDOM_DEVICE_ADDRESS),
            host=Host(controller, AsyncPipeSink(controller)),
        )
        self.connection: Connection | None = None
        self.runner = BleFirmwareRunner(
            firmware, speed=speed, att_mtu=self._att_mtu, on_event=on_event
        )
        self.connections_served = 0
        self.notifications_sent = 0
        self.notifications_dropped = 0
        self.command_errors = 0
        self.pairings = 0
        self._build_services()
        self.device.pairing_config_factory = lambda _connection: PairingConfig(
            sc=True,
            mitm=False,
            bonding=True,
            delegate=PairingDelegate(io_capability=PairingDelegate.NO_OUTPUT_NO_INPUT),
        )
        self.device.on(Device.EVENT_CONNECTION, self._on_connection)

    # ---- GATT table -----------------------------------------------------------------------

    def _build_services(self) -> None:
        cfg = self.firmware.config
        read, write = _READ, _WRITE
        if self.require_encryption:
            read = Characteristic.Permissions.READ_REQUIRES_ENCRYPTION
            write = Characteristic.Permissions.WRITE_REQUIRES_ENCRYPTION
        self.force_char = Characteristic(gatt.FORCE_CHAR_UUID, _P.NOTIFY, read, b"")
        self.command_char = Characteristic(
            gatt.COMMAND_CHAR_UUID,
            _P.WRITE | _P.WRITE_WITHOUT_RESPONSE,
            write,
            CharacteristicValue(write=self._on_command_write),
        )
        self.status_char = Characteristic(gatt.STATUS_CHAR_UUID, _P.READ | _P.NOTIFY, read, b"")
        battery = Characteristic(
            gatt.BATTERY_LEVEL_CHAR_UUID,
            _P.READ,
            _READ,
            CharacteristicValue(read=self._read_battery),
        )

        def text(uuid: str, value: str) -> Characteristic:
            return Characteristic(uuid, _P.READ, _READ, value.encode("utf-8"))

        self.device.add_services(
            [
                Service(gatt.SERVICE_UUID, [self.force_char, self.command_char, self.status_char]),
                Service(gatt.BATTERY_SERVICE_UUID, [battery]),
                Service(
                    gatt.DEVICE_INFO_SERVICE_UUID,
                    [
                        text(gatt.MANUFACTURER_CHAR_UUID, "massagectl simulator"),
                        text(gatt.MODEL_CHAR_UUID, cfg.model),
                        text(gatt.SERIAL_CHAR_UUID, cfg.serial_number),
                        text(gatt.FIRMWARE_CHAR_UUID, cfg.firmware),
                    ],
                ),
            ]
        )

    def _read_battery(self, _connection: Connection) -> bytes:
        return bytes([max(0, min(100, round(self.firmware.physics.battery_pct)))])

    async def _on_command_write(self, _connection: Connection, value: bytes) -> None:
        """COMMAND written. Every failure becomes an ATT error answer: an exception of any
        other type would leave the client's write unanswered for 30 s (Bumble 0.0.236)."""
        try:
            out = self.runner.on_command(bytes(value))
            await self._send(out)
        except att.ATT_Error:
            raise
        except CommandValueError as exc:
            self.command_errors += 1
            raise att.ATT_Error(att.ErrorCode.INVALID_ATTRIBUTE_LENGTH, message=str(exc)) from exc
        except Exception as exc:
            self.command_errors += 1
            self.firmware.events.append(
                SimEvent(self.firmware.t_s, "command_error", {"error": type(exc).__name__})
            )
            raise att.ATT_Error(att.ErrorCode.UNLIKELY_ERROR, message=repr(exc)) from exc

    # ---- connection -----------------------------------------------------------------------

    def _att_mtu(self) -> int:
        return self.connection.att_mtu if self.connection is not None else DEFAULT_ATT_MTU

    def _on_connection(self, connection: Connection) -> None:
        self.connection = connection
        self.connections_served += 1
        connection.on(Connection.EVENT_PAIRING, lambda _keys: self._on_paired())
        connection.on(
            Connection.EVENT_DISCONNECTION,
            lambda _reason: self._on_disconnection(connection),
        )

    def _on_paired(self) -> None:
        self.pairings += 1

    def _on_disconnection(self, connection: Connection) -> None:
        if self.connection is connection:
            self.connection = None
        self._spawn(self._advertise(), "ball-readvertise")

    async def _advertise(self) -> None:
        await self.device.start_advertising(
            advertising_data=self.adv_data,
            scan_response_data=b"",
            advertising_interval_min=ADVERTISING_INTERVAL_MS,
            advertising_interval_max=ADVERTISING_INTERVAL_MS,
        )

    # ---- running --------------------------------------------------------------------------

    async def start(self) -> None:
        await self.device.power_on()
        await self._advertise()
        self._tick_task = asyncio.get_running_loop().create_task(self._run(), name="ball-tick")

    async def _run(self) -> None:
        while True:
            await self._send(self.runner.step())
            await asyncio.sleep(TICK_S)

    async def _send(self, values: list[tuple[Channel, bytes]]) -> None:
        connection = self.connection
        if connection is None:
            self.notifications_dropped += len(values)
            return
        for channel, value in values:
            char = self.force_char if channel is Channel.FORCE else self.status_char
            if channel is Channel.STATUS:
                self.status_char.value = value
            await self.device.notify_subscriber(connection, char, value)
            self.notifications_sent += 1
