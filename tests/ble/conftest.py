"""BLE tests run on Bumble's software radio: the simulated ball as a real GATT peripheral,
and the host side through bleak's API on the in-project Bumble backend, over raw HCI on a
local TCP port (port 0 -> a free one)."""

from __future__ import annotations

import pytest

from device.ble import bumble_host
from simulators.ble_radio import SoftwareRadio
from simulators.devices import make_firmware


@pytest.fixture
async def radio(request):
    """A started software radio with the ball; ``radio.transport_spec`` is the host's HCI.
    Parametrize indirectly with a number to run the simulator that many times faster."""
    speed = getattr(request, "param", 1.0)
    radio = SoftwareRadio(make_firmware("ball"), speed=speed, log=lambda _text: None)
    await radio.start()
    yield radio
    await radio.stop()
    leaked = [h for h in bumble_host._hosts.values() if not h.closed]
    for host in leaked:
        await host.close()
    assert not leaked, f"Bumble hosts left open: {[h.spec for h in leaked]}"


@pytest.fixture
def backends(radio):
    """(scanner_backend, client_backend) for bleak's ``backend=``, bound to the radio."""
    from device.ble.factory import backends

    return backends(radio.transport_spec)
