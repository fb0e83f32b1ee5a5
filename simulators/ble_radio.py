"""A software radio for ``massagectl sim ble``: the simulated ball on one Bumble controller,
and a second controller whose HCI is served on a TCP port for one host at a time.

Host (bleak on the Bumble backend, bumble-scan, ...) --raw HCI over TCP--> host controller
<-- Bumble LocalLink --> ball controller <-- HCI in process --> ball's Bumble host + GATT.

Bumble 0.0.236's software controller has no real reset and no connection cancel: a host
that dies leaves a ghost link (the ball stays "connected" and never advertises again), and
a connect that never completed poisons the next one. So each TCP client gets a fresh host
controller: when a client connects or goes away, the old controller's links are terminated
on the ball's side (which then advertises again) and the controller leaves the radio.

Both controllers take 251-byte LE ACL packets (the default is 27, which fragments every
notification into ~10 HCI packets) and accept LE Set Data Length, like a controller with
data-length extension.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

from bumble import hci, ll
from bumble.controller import Controller
from bumble.link import LocalLink
from bumble.transport.common import PacketParser

from simulators.ble_peripheral import BallPeripheral
from simulators.firmware import Firmware, SimEvent
from simulators.sensor_peripheral import SensorPeripheral
from simulators.sensors import SensorSim

#: LE data-length extension maximum (Core spec Vol 6, Part B, 4.5.10).
LE_MAX_DATA_OCTETS = 251
LE_MAX_DATA_TIME_US = 2120


class SoftwareController(Controller):
    """Bumble's software controller with data-length extension figures."""

    le_acl_data_packet_length = LE_MAX_DATA_OCTETS
    acl_data_packet_length = LE_MAX_DATA_OCTETS
    supported_max_tx_octets = LE_MAX_DATA_OCTETS
    supported_max_rx_octets = LE_MAX_DATA_OCTETS
    suggested_max_tx_octets = LE_MAX_DATA_OCTETS
    supported_max_tx_time = LE_MAX_DATA_TIME_US
    supported_max_rx_time = LE_MAX_DATA_TIME_US
    suggested_max_tx_time = LE_MAX_DATA_TIME_US

    def on_hci_le_set_data_length_command(
        self, command: hci.HCI_LE_Set_Data_Length_Command
    ) -> hci.HCI_StatusAndConnectionHandleReturnParameters:
        """Accepted: packets on the software link are never cut to a data length."""
        return hci.HCI_StatusAndConnectionHandleReturnParameters(
            status=hci.HCI_ErrorCode.SUCCESS, connection_handle=command.connection_handle
        )


def drop_links(controller: Controller, reason: int = hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR):
    """Terminate every LE link of ``controller`` at its peers, as a supervision timeout
    would on air: each peer's host gets a Disconnection Complete event."""
    for connection in list(controller.le_connections.values()):
        try:
            connection.send_ll_control_pdu(ll.TerminateInd(reason))
        finally:
            del controller.le_connections[connection.peer_address]
    controller.pending_le_connection = None


class _HciClient(asyncio.Protocol):
    """One TCP client speaking H4 HCI to the host controller."""

    def __init__(self, radio: SoftwareRadio) -> None:
        self.radio = radio
        self.transport: asyncio.Transport | None = None
        self.controller: Controller | None = None
        self.parser: PacketParser | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.radio._client_arrived(self)

    def data_received(self, data: bytes) -> None:
        if self.parser is not None:
            self.parser.feed_data(data)

    def connection_lost(self, exc) -> None:
        self.radio._client_left(self)

    # the controller's host sink
    def on_packet(self, packet: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(packet)


class SoftwareRadio:
    """The ball (or a simulated force sensor: ``firmware`` a ``SensorSim``) and a host
    controller on one LocalLink; the host controller's HCI is served on TCP.
    ``start(host, port)`` returns the transport a host opens: ``tcp-client:HOST:PORT``
    (the real port when 0 was asked)."""

    def __init__(
        self,
        firmware: Firmware | SensorSim,
        *,
        speed: float = 1.0,
        on_event: Callable[[SimEvent], None] | None = None,
        log: Callable[[str], None] | None = None,
        require_encryption: bool = False,
    ) -> None:
        self.link = LocalLink()
        self.ball_controller = SoftwareController("ball", link=self.link)
        # legacy advertising only, like a small device: the ball sends ADV_IND PDUs
        self.ball_controller.le_features &= ~hci.LeFeatureMask.LE_EXTENDED_ADVERTISING
        self.ball: BallPeripheral | SensorPeripheral
        if isinstance(firmware, SensorSim):
            self.ball = SensorPeripheral(firmware, self.ball_controller, speed=speed)
        else:
            self.ball = BallPeripheral(
                firmware,
                self.ball_controller,
                speed=speed,
                on_event=on_event,
                require_encryption=require_encryption,
            )
        self._log = log or (lambda text: print(text, file=sys.stderr, flush=True))
        self._server: asyncio.Server | None = None
        self._client: _HciClient | None = None
        self.clients_served = 0
        self.clients_refused = 0
        self.transport_spec: str | None = None

    @property
    def firmware(self) -> Firmware | SensorSim:
        return self.ball.firmware

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        await self.ball.start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _HciClient(self), host, port)
        real_port = self._server.sockets[0].getsockname()[1]
        self.transport_spec = f"tcp-client:{host}:{real_port}"
        return self.transport_spec

    def _client_arrived(self, client: _HciClient) -> None:
        if self._client is not None:
            self.clients_refused += 1
            self._log("sim ble: a second host tried to connect; one host at a time")
            client.transport.close()
            return
        self._client = client
        self.clients_served += 1
        client.controller = SoftwareController(
            f"host{self.clients_served}", host_sink=client, link=self.link
        )
        client.parser = PacketParser(client.controller)

    def _client_left(self, client: _HciClient) -> None:
        if self._client is not client:
            return
        self._client = None
        self._retire(client.controller)

    def _retire(self, controller: Controller | None) -> None:
        """Drop a host controller: its links end at the ball, which advertises again."""
        if controller is None:
            return
        controller.host = None
        controller.le_scan_enable = False
        drop_links(controller)
        if controller in self.link.controllers:
            self.link.remove_controller(controller)

    def drop_ball_links(self) -> None:
        """The ball's links end at every host (a ``disconnect`` fault); it advertises again."""
        self.firmware.events.append(SimEvent(self.firmware.t_s, "disconnect"))
        reason = hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR
        for connection in list(self.ball_controller.le_connections.values()):
            connection.send_ll_control_pdu(ll.TerminateInd(reason))  # the host hears it
            self.ball_controller.on_le_disconnected(connection, reason)  # and the ball

    async def serve_forever(self) -> None:
        """Until cancelled; raises if the peripheral fails."""
        tick = self.ball.tick_task
        assert tick is not None, "start() first"
        await tick

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            if self._client is not None and self._client.transport is not None:
                self._client.transport.close()
            await self._server.wait_closed()
            self._server = None
        if self._client is not None:
            self._client_left(self._client)
        await self.ball.stop()
