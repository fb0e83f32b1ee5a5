"""Pairing never traps the person (issue 20): a record is written only when pairing
succeeds (the new bond's keys are held in memory until then), a failed pairing leaves the
file and the old bond as they were, and stored keys the ball no longer has never stop a
new pairing. All on Bumble's software radio, through the real pairing path."""

from __future__ import annotations

import socket

import pytest

from device.config.known_devices import KnownDevices
from device.errors import DeviceTimeoutError, LinkError
from device.links import open_link
from device.pairing.pair import pair_device
from firmware_bridge import gatt
from simulators.ble_radio import SoftwareRadio
from simulators.devices import make_firmware
from simulators.scenario import Scenario

SPEED = 4.0
NAME = gatt.BALL_ADVERTISED_NAME


@pytest.fixture
async def ball():
    """A ball that insists on an encrypted link, and never presses anything."""
    from device.ble import bumble_host

    radio = SoftwareRadio(
        make_firmware("ball", Scenario(name="still")),
        speed=SPEED,
        log=lambda _t: None,
        require_encryption=True,
    )
    await radio.start()
    yield radio
    await radio.stop()
    leaked = [h for h in bumble_host._hosts.values() if not h.closed]
    for host in leaked:
        await host.close()
    assert not leaked


async def _pair(hci: str, **kwargs):
    link = open_link(f"ble://{NAME}", hci=hci, speed=SPEED)
    return await pair_device(link, **kwargs)


async def test_a_failed_pair_writes_nothing_and_a_reset_ball_pairs_again_by_name(ball):
    # bonded, tared, then the known press never comes: the pairing fails after the bond
    with pytest.raises(DeviceTimeoutError, match="no steady press"):
        await _pair(ball.transport_spec, known_force_n=20.0, press_timeout_s=0.5)
    assert ball.ball.pairings == 1
    assert not KnownDevices().path.exists(), KnownDevices().path.read_text()

    await ball.ball.device.keystore.delete_all()  # the ball lost its bonds (a reset)
    result = await _pair(ball.transport_spec)
    assert result.bond.bonded and result.bond.encrypted
    (record,) = KnownDevices().devices()
    assert (record.name, record.address) == (NAME, gatt.SIM_BALL_ADDRESS)
    assert record.bonded and record.calibration is not None
    assert KnownDevices().host_identity() is not None  # written with the record

    # the stored keys work: a later session is encrypted without pairing again
    async with open_link(f"ble://{NAME}", hci=ball.transport_spec) as link:
        assert link.security == {"encrypted": True}
    assert ball.ball.pairings == 2
    assert KnownDevices().remove(NAME).address == gatt.SIM_BALL_ADDRESS  # forget MBALL


async def test_pairing_again_after_the_ball_lost_its_bonds_replaces_the_refused_keys(ball):
    await _pair(ball.transport_spec)
    old_keys = KnownDevices().find(NAME).bond["keys"]
    await ball.ball.device.keystore.delete_all()
    with pytest.raises(LinkError, match="refused our bonding keys.*massagectl pair"):
        async with open_link(f"ble://{NAME}", hci=ball.transport_spec):
            pass
    lines: list[str] = []
    await _pair(ball.transport_spec, say=lines.append)
    record = KnownDevices().find(NAME)
    assert record.bonded and record.bond["keys"] != old_keys
    assert any("new bond replaces" in line for line in lines)
    async with open_link(f"ble://{NAME}", hci=ball.transport_spec) as link:
        assert link.security == {"encrypted": True}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_pair_that_cannot_reach_its_adapter_keeps_the_good_bond(ball):
    await _pair(ball.transport_spec)
    before = KnownDevices().path.read_bytes()
    with pytest.raises(LinkError, match="cannot"):
        await _pair(f"tcp-client:127.0.0.1:{_closed_port()}")
    assert KnownDevices().path.read_bytes() == before
    async with open_link(f"ble://{NAME}", hci=ball.transport_spec) as link:
        assert link.security == {"encrypted": True}  # the good bond still works
