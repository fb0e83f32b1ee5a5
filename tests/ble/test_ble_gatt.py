"""The simulated ball through bleak's public API on the Bumble backend."""

from __future__ import annotations

import asyncio

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakDeviceNotFoundError

from firmware_bridge import gatt
from firmware_bridge.messages import DeviceInfo, Hello, decode_message, encode_message

ABSENT_ADDRESS = "F0:00:00:00:00:01"


async def test_scan_finds_the_ball_by_service_uuid(backends):
    scanner_cls, _ = backends
    found = await BleakScanner.discover(
        timeout=0.5, return_adv=True, service_uuids=[gatt.SERVICE_UUID], backend=scanner_cls
    )
    assert list(found) == [gatt.SIM_BALL_ADDRESS]
    device, adv = found[gatt.SIM_BALL_ADDRESS]
    assert adv.local_name == gatt.BALL_ADVERTISED_NAME
    assert adv.service_uuids == [gatt.SERVICE_UUID]
    assert device.name == gatt.BALL_ADVERTISED_NAME


async def test_scan_filter_on_another_service_finds_nothing(backends):
    scanner_cls, _ = backends
    found = await BleakScanner.discover(
        timeout=0.3, service_uuids=[gatt.BATTERY_SERVICE_UUID], backend=scanner_cls
    )
    assert found == []


async def test_connect_read_battery_and_model(backends, radio):
    scanner_cls, client_cls = backends
    device = await BleakScanner.find_device_by_name(
        gatt.BALL_ADVERTISED_NAME, timeout=5, backend=scanner_cls
    )
    assert device is not None
    async with BleakClient(device, timeout=5, backend=client_cls) as client:
        assert client.is_connected
        battery = await client.read_gatt_char(gatt.BATTERY_LEVEL_CHAR_UUID)
        assert battery[0] == round(radio.firmware.physics.battery_pct)
        model = await client.read_gatt_char(gatt.MODEL_CHAR_UUID)
        assert model.decode() == radio.firmware.config.model
        serial = await client.read_gatt_char(gatt.SERIAL_CHAR_UUID)
        assert serial.decode() == radio.firmware.config.serial_number
        props = client.services.get_characteristic(gatt.COMMAND_CHAR_UUID).properties
        assert set(props) == {"write", "write_without_response"}
        assert set(client.services.get_characteristic(gatt.STATUS_CHAR_UUID).properties) == {
            "read",
            "notify",
        }
    assert not client.is_connected


async def test_subscribe_status_and_say_hello(backends):
    _, client_cls = backends
    replies: asyncio.Queue = asyncio.Queue()
    async with BleakClient(gatt.SIM_BALL_ADDRESS, timeout=5, backend=client_cls) as client:
        await client.start_notify(
            gatt.STATUS_CHAR_UUID, lambda _c, data: replies.put_nowait(decode_message(data))
        )
        await client.write_gatt_char(gatt.COMMAND_CHAR_UUID, encode_message(Hello(seq=7)), True)
        while not isinstance(msg := await asyncio.wait_for(replies.get(), 5), DeviceInfo):
            pass
        assert msg.model == "MBALL-1"
        await client.stop_notify(gatt.STATUS_CHAR_UUID)


async def test_connect_to_an_absent_device_fails_within_its_timeout(backends):
    _, client_cls = backends
    loop = asyncio.get_running_loop()
    started = loop.time()
    client = BleakClient(ABSENT_ADDRESS, timeout=0.5, backend=client_cls)
    with pytest.raises(BleakDeviceNotFoundError, match="not heard advertising within 0.5 s"):
        # the guard only keeps a hang from eating the test's 60 s; the error must come first
        await asyncio.wait_for(client.connect(), 10)
    assert loop.time() - started < 5
    assert not client.is_connected


async def test_unsolicited_disconnect_calls_bleaks_callback(backends, radio):
    _, client_cls = backends
    lost = asyncio.Event()
    client = BleakClient(
        gatt.SIM_BALL_ADDRESS,
        disconnected_callback=lambda _client: lost.set(),
        timeout=5,
        backend=client_cls,
    )
    await client.connect()
    await radio.ball.connection.disconnect()  # the ball hangs up
    await asyncio.wait_for(lost.wait(), 5)
    assert not client.is_connected
    await client.disconnect()  # safe after a loss


async def test_requested_disconnect_does_not_call_the_callback(backends):
    _, client_cls = backends
    calls = []
    client = BleakClient(
        gatt.SIM_BALL_ADDRESS,
        disconnected_callback=calls.append,
        timeout=5,
        backend=client_cls,
    )
    await client.connect()
    await client.disconnect()
    await client.disconnect()
    assert calls == []
