"""One Bumble host (``bumble.device.Device``) per HCI transport, shared by every scanner and
client of the Bumble backend in this event loop, so that a scanner and a client live
together on one controller (a controller takes one host).

A host is opened on first use and closed when its last user lets go. A host whose
controller may be left in a bad state (a connect that timed out: Bumble 0.0.236's
software controller ignores Create Connection Cancel, so the pending connect would block
every later one) is *discarded*: closed at once and forgotten, so the next user opens a
fresh transport (a fresh controller on ``sim ble``; a real HCI reset on a dongle).

Every host has the same identity (``device.ble.bonds.host_identity``: a static random
address and an IRK, kept in the known-devices file once it has bonded) and a key store on
the known-devices file, so that a bond made by one process encrypts the links of the next.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bumble.device import Advertisement, Device
from bumble.hci import Address
from bumble.transport import open_transport
from bumble.transport.common import Transport, TransportLostError

logger = logging.getLogger(__name__)

#: Time allowed for opening a transport and powering the controller up (seconds).
POWER_ON_TIMEOUT_S = 10.0

AdvertisementListener = Callable[[Advertisement], None]


class HostUnavailableError(ConnectionError):
    """The HCI transport could not be opened or the controller did not come up."""


class BumbleHost:
    """A Bumble Device on one opened HCI transport, with users counted."""

    def __init__(self, spec: str, transport: Transport, device: Device) -> None:
        self.spec = spec
        self.transport: Transport | None = transport  # None once closed
        self.device = device
        self.loop = asyncio.get_running_loop()
        self.users = 0
        self.closed = False
        self._scan_listeners: list[tuple[AdvertisementListener, bool]] = []
        self._scanning_active: bool | None = None
        self._scan_lock = asyncio.Lock()
        self._lost_listeners: list[Callable[[], None]] = []
        device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        transport.source.terminated.add_done_callback(self._on_transport_terminated)

    # ---- scanning, shared -----------------------------------------------------------------

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        for listener, _active in list(self._scan_listeners):
            listener(advertisement)

    async def add_scan_listener(self, listener: AdvertisementListener, active: bool) -> None:
        """Receive advertisements; scanning runs while anyone listens (active if anyone
        asked for active scanning)."""
        async with self._scan_lock:
            self._scan_listeners.append((listener, active))
            await self._rescan()

    async def remove_scan_listener(self, listener: AdvertisementListener) -> None:
        async with self._scan_lock:
            self._scan_listeners = [(fn, a) for fn, a in self._scan_listeners if fn != listener]
            if not self.closed:
                await self._rescan()

    async def _rescan(self) -> None:
        wanted: bool | None = None
        if self._scan_listeners:
            wanted = any(active for _fn, active in self._scan_listeners)
        if wanted == self._scanning_active:
            return
        if self._scanning_active is not None:
            await self.device.stop_scanning()
        if wanted is not None:
            await self.device.start_scanning(active=wanted, filter_duplicates=False)
        self._scanning_active = wanted

    async def find_advertiser(self, address: str, timeout_s: float) -> Address | None:
        """The address (with its type) of ``address`` once it is heard advertising, or None
        after ``timeout_s``. Only an advertisement heard now counts: a device that stopped
        advertising (e.g. connected elsewhere) must not be connected to."""
        loop = asyncio.get_running_loop()
        found: asyncio.Future[Address] = loop.create_future()
        wanted = address.upper()

        def listener(adv: Advertisement) -> None:
            if (
                not found.done()
                and adv.is_connectable
                and adv.address.to_string(False).upper() == wanted
            ):
                found.set_result(adv.address)

        await self.add_scan_listener(listener, active=False)
        try:
            return await asyncio.wait_for(found, timeout_s)
        except TimeoutError:
            return None
        finally:
            await self.remove_scan_listener(listener)

    # ---- loss -----------------------------------------------------------------------------

    def on_lost(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` if the transport dies under us; returns an unregister function."""
        self._lost_listeners.append(callback)

        def remove() -> None:
            if callback in self._lost_listeners:
                self._lost_listeners.remove(callback)

        return remove

    def _on_transport_terminated(self, _fut: asyncio.Future) -> None:
        if self.closed:
            return
        logger.warning("HCI transport %s was lost", self.spec)
        self.closed = True
        _forget(self)
        for callback in list(self._lost_listeners):
            callback()

    async def close(self) -> None:
        if self.closed and self.transport is None:
            return
        self.closed = True
        _forget(self)
        transport, self.transport = self.transport, None
        if transport is not None:
            await transport.close()


_hosts: dict[tuple[int, str], BumbleHost] = {}
_opening: dict[tuple[int, str], asyncio.Lock] = {}


def _key(spec: str) -> tuple[int, str]:
    return (id(asyncio.get_running_loop()), spec)


def _forget(host: BumbleHost) -> None:
    key = (id(host.loop), host.spec)
    if _hosts.get(key) is host:
        del _hosts[key]


async def acquire(spec: str) -> BumbleHost:
    """The shared host on ``spec`` (opened and powered on if needed), with one more user."""
    key = _key(spec)
    lock = _opening.setdefault(key, asyncio.Lock())
    async with lock:
        host = _hosts.get(key)
        if host is None or host.closed:
            host = await _open(spec)
            _hosts[key] = host
        host.users += 1
        return host


async def release(host: BumbleHost) -> None:
    """One user less; the host closes with its last user."""
    host.users -= 1
    if host.users <= 0:
        await host.close()


async def discard(host: BumbleHost) -> None:
    """Close ``host`` now whatever its users, and forget it: its controller may be stuck."""
    await host.close()


#: The words for a transport whose other end hung up while we powered the controller on.
RADIO_HELD_TEXT = (
    "the HCI transport {spec!r} hung up as soon as it was opened: another process holds "
    "the radio ('massagectl sim ble' serves one host at a time: end the other massagectl "
    "using it, or start another 'massagectl sim ble' and use its READY line)"
)


async def _power_on(device: Device, transport: Transport, spec: str) -> None:
    """Power the controller on, or say at once that the other end hung up (a software radio
    that already serves a host closes a second one's connection at once; without this the
    host waited POWER_ON_TIMEOUT_S and said the controller did not power up)."""
    terminated = getattr(transport.source, "terminated", None)
    host_log = logging.getLogger("bumble.host")
    level = host_log.level
    # bumble logs the lost transport's failed Reset with a traceback; the one line is ours
    host_log.setLevel(logging.CRITICAL)
    try:
        async with asyncio.timeout(POWER_ON_TIMEOUT_S):
            powering = asyncio.ensure_future(device.power_on())
            if terminated is None:
                await powering
                return
            await asyncio.wait({powering, terminated}, return_when=asyncio.FIRST_COMPLETED)
            if not terminated.done():
                powering.result()
                return
            powering.cancel()
            try:
                await powering
            except BaseException:  # noqa: BLE001 - cancelled or lost: the hang-up is the news
                pass
            raise HostUnavailableError(RADIO_HELD_TEXT.format(spec=spec))
    finally:
        host_log.setLevel(level)


async def probe_transport(spec: str) -> None:
    """Open the HCI transport ``spec`` and close it again (``massagectl doctor``); raises
    what opening raised."""
    opened = await open_transport(spec)
    await opened.close()


def link_security(spec: str, address: str) -> dict | None:
    """``{"encrypted": bool}`` for this loop's connection to
    ``address`` on ``spec``, or None when there is none."""
    host = _hosts.get(_key(spec))
    if host is None or host.closed:
        return None
    wanted = address.upper()
    for connection in list(host.device.connections.values()):
        if connection.peer_address.to_string(False).upper() == wanted:
            return {"encrypted": connection.is_encrypted}
    return None


async def _open(spec: str) -> BumbleHost:
    try:
        transport = await asyncio.wait_for(open_transport(spec), POWER_ON_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise HostUnavailableError(f"cannot open HCI transport {spec!r}: {exc}") from exc
    from device.ble import bonds

    try:
        identity = bonds.host_identity()
    except BaseException:
        await transport.close()
        raise
    device = Device.with_hci(
        "massagectl",
        Address(identity.address, Address.RANDOM_DEVICE_ADDRESS),
        transport.source,
        transport.sink,
    )
    device.irk = bytes.fromhex(identity.irk_hex)
    device.keystore = bonds.KnownDevicesKeyStore(identity, f"bumble:{spec}")
    device.pairing_config_factory = bonds.pairing_config
    try:
        await _power_on(device, transport, spec)
    except BaseException as exc:
        await transport.close()
        if isinstance(exc, HostUnavailableError):
            raise
        if isinstance(exc, TimeoutError):
            raise HostUnavailableError(
                f"the controller on {spec!r} did not power up within {POWER_ON_TIMEOUT_S:g} s"
            ) from exc
        if isinstance(exc, TransportLostError | OSError):
            # the controller went away while we reset it (a simulator killed mid-connect)
            raise HostUnavailableError(f"lost the HCI transport {spec!r}: {exc}") from exc
        raise
    return BumbleHost(spec, transport, device)
