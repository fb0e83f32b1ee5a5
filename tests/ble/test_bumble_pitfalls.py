"""One test per Bumble 0.0.236 pitfall (DESIGN.md), each against its workaround."""

from __future__ import annotations

import asyncio

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakGATTProtocolError, BleakGATTProtocolErrorCode

from device.ble import bumble_backend, bumble_host
from device.errors import LinkError
from device.links import open_link
from device.session.device_session import DeviceSession
from firmware_bridge import gatt
from firmware_bridge.messages import (
    Ack,
    ForceBatch,
    Nack,
    NackCode,
    SetStream,
    decode_message,
    encode_message,
)
from simulators.ble_radio import LE_MAX_DATA_OCTETS
from simulators.ble_runtime import BleFirmwareRunner, Channel
from simulators.devices import make_firmware


async def _until(predicate, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.005)


# ---- scan responses never arrive: everything is in the advertising data --------------------


def test_advertising_data_holds_flags_uuid_and_name_within_31_bytes():
    data = gatt.advertising_data()
    assert len(data) <= gatt.MAX_LEGACY_ADV_DATA_LEN
    assert data[:3] == bytes([2, 0x01, 0x06])
    assert bytes.fromhex(gatt.SERVICE_UUID.replace("-", ""))[::-1] in data
    assert data.endswith(b"\x09" + gatt.BALL_ADVERTISED_NAME.encode())
    with pytest.raises(ValueError):
        gatt.advertising_data("TOOLONGNAME")


async def test_the_ball_sends_no_scan_response_and_is_named_by_its_advertisement(backends, radio):
    advertiser = radio.ball_controller.le_legacy_advertiser
    assert advertiser.enabled
    assert advertiser.scan_response_data == b""
    assert advertiser.advertising_data == gatt.advertising_data()
    scanner_cls, _ = backends
    # passive scanning: no scan request is ever made, and the name is still there
    device = await BleakScanner.find_device_by_filter(
        lambda _d, adv: adv.local_name == gatt.BALL_ADVERTISED_NAME,
        timeout=5,
        scanning_mode="passive",
        backend=scanner_cls,
    )
    assert device is not None and device.address == gatt.SIM_BALL_ADDRESS


# ---- HCI reset is a no-op: a dead host leaves a ghost link ---------------------------------


async def test_a_host_that_dies_mid_connection_leaves_no_ghost_link(backends, radio):
    _, client_cls = backends
    first = BleakClient(gatt.SIM_BALL_ADDRESS, timeout=5, backend=client_cls)
    await first.connect()
    assert radio.ball.connection is not None
    # the host "dies": its HCI transport closes without any disconnect on the air
    (host,) = [h for h in bumble_host._hosts.values() if not h.closed]
    await bumble_host.discard(host)
    await _until(lambda: radio.ball.connection is None)
    await _until(lambda: radio.ball_controller.le_legacy_advertiser.enabled)
    assert radio.ball_controller.le_connections == {}
    # a new host finds the ball advertising and connects
    second = BleakClient(gatt.SIM_BALL_ADDRESS, timeout=5, backend=client_cls)
    await second.connect()
    assert second.is_connected
    await second.disconnect()
    await first.disconnect()


# ---- connection cancel is a no-op: a connect must still end within its timeout -------------


async def test_a_connect_that_never_completes_times_out_and_the_next_one_works(
    backends, radio, monkeypatch
):
    _, client_cls = backends
    # The ball is "heard" but stops advertising before the connect: the controller's
    # Create Connection then never completes, and its cancel does nothing.
    real_find = bumble_host.BumbleHost.find_advertiser

    async def heard_then_gone(self, address, timeout_s):
        found = await real_find(self, address, timeout_s)
        await radio.ball.device.stop_advertising()
        return found

    monkeypatch.setattr(bumble_host.BumbleHost, "find_advertiser", heard_then_gone)
    client = BleakClient(gatt.SIM_BALL_ADDRESS, timeout=0.5, backend=client_cls)
    with pytest.raises(TimeoutError, match="did not complete within 0.5 s"):
        await asyncio.wait_for(client.connect(), 10)
    assert not client.is_connected
    assert not [h for h in bumble_host._hosts.values() if not h.closed], "stuck host kept"

    monkeypatch.setattr(bumble_host.BumbleHost, "find_advertiser", real_find)
    await radio.ball._advertise()
    async with BleakClient(gatt.SIM_BALL_ADDRESS, timeout=5, backend=client_cls) as again:
        assert again.is_connected


# ---- ACL buffers default to 27 bytes: 251 (data-length extension) --------------------------


async def test_controllers_take_251_byte_acl_packets(radio):
    host = await bumble_host.acquire(radio.transport_spec)
    try:
        assert host.device.host.le_acl_packet_queue.max_packet_size == LE_MAX_DATA_OCTETS
        assert radio.ball.device.host.le_acl_packet_queue.max_packet_size == LE_MAX_DATA_OCTETS
    finally:
        await bumble_host.release(host)


# ---- notifications are cut to MTU - 3: exchange the MTU and size batches to it -------------


async def test_mtu_is_exchanged_and_full_58_sample_batches_arrive_whole(radio):
    link = open_link(f"ble://{gatt.BALL_ADVERTISED_NAME}", hci=radio.transport_spec)
    async with DeviceSession(link, samples_per_batch=58) as session:
        assert link.mtu == gatt.PREFERRED_ATT_MTU
        assert session.samples_per_batch == 58
        batch = await anext(session.batches())
        assert len(batch.raw_counts) == 58
    assert link.bad_notifications == 0


async def test_at_the_default_mtu_the_link_refuses_with_a_clear_error(radio, monkeypatch):
    monkeypatch.setattr(bumble_backend, "PREFERRED_ATT_MTU", 23)  # no MTU exchange
    assert gatt.min_att_mtu() == 69  # DeviceInfo (66 bytes in version 2) + ATT header
    link = open_link(f"ble://{gatt.BALL_ADVERTISED_NAME}", hci=radio.transport_spec)
    with pytest.raises(LinkError, match="ATT MTU 23 is too small"):
        await link.open()
    await link.close()


async def test_at_a_smaller_mtu_batches_shrink_and_too_big_ones_are_refused(radio, monkeypatch):
    monkeypatch.setattr(bumble_backend, "PREFERRED_ATT_MTU", 100)
    link = open_link(f"ble://{gatt.BALL_ADVERTISED_NAME}", hci=radio.transport_spec)
    async with DeviceSession(link, samples_per_batch=58) as session:
        assert link.mtu == 100
        assert link.max_samples_per_batch == gatt.samples_per_notification(100) == 21
        assert session.samples_per_batch == 21
        batch = await anext(session.batches())
        assert len(batch.raw_counts) == 21
        # a SetStream whose batches would be cut short is refused, not truncated
        replies: asyncio.Queue = asyncio.Queue()
        client = link.client
        await client.start_notify(
            gatt.STATUS_CHAR_UUID, lambda _c, data: replies.put_nowait(decode_message(data))
        )
        await client.write_gatt_char(
            gatt.COMMAND_CHAR_UUID,
            encode_message(SetStream(seq=999, rate_hz=1000, samples_per_batch=58)),
            response=True,
        )
        while not isinstance(msg := await asyncio.wait_for(replies.get(), 5), Ack | Nack):
            pass
        assert isinstance(msg, Nack) and msg.cmd_seq == 999
        assert msg.code == NackCode.OUT_OF_RANGE
    assert link.bad_notifications == 0


def test_the_runner_never_emits_a_value_longer_than_mtu_minus_3():
    mtu = 23
    runner = BleFirmwareRunner(make_firmware("ball"), att_mtu=lambda: mtu)
    runner.firmware.handle(SetStream(rate_hz=1000, samples_per_batch=10), 0.0)  # behind our back
    out = runner._encode_all(runner.firmware.advance(0.05))
    assert all(len(value) <= mtu - 3 for _ch, value in out)
    assert runner.oversize_dropped >= 4
    assert all(ch is Channel.STATUS for ch, _value in out)
    assert not any(isinstance(decode_message(v), ForceBatch) for _c, v in out)


# ---- a server callback raising a non-ATT exception stalls the client 30 s ------------------


async def test_an_internal_error_in_the_command_callback_is_answered_at_once(
    backends, radio, monkeypatch
):
    _, client_cls = backends

    def broken(_value):
        raise RuntimeError("simulated firmware bug")

    monkeypatch.setattr(radio.ball.runner, "on_command", broken)
    async with BleakClient(gatt.SIM_BALL_ADDRESS, timeout=5, backend=client_cls) as client:
        with pytest.raises(BleakGATTProtocolError) as err:
            # 5 s guard: without the workaround this write waits for the 30 s ATT timeout
            await asyncio.wait_for(
                client.write_gatt_char(gatt.COMMAND_CHAR_UUID, b"\x01\x01\x00\x00", True), 5
            )
        assert err.value.code == BleakGATTProtocolErrorCode.UNLIKELY_ERROR
        assert client.is_connected
    assert radio.ball.command_errors == 1
    assert any(e.name == "command_error" for e in radio.firmware.events)


async def test_a_command_value_without_a_header_gets_an_att_error(backends):
    _, client_cls = backends
    async with BleakClient(gatt.SIM_BALL_ADDRESS, timeout=5, backend=client_cls) as client:
        with pytest.raises(BleakGATTProtocolError) as err:
            await asyncio.wait_for(client.write_gatt_char(gatt.COMMAND_CHAR_UUID, b"\x01", True), 5)
        assert err.value.code == BleakGATTProtocolErrorCode.INVALID_ATTRIBUTE_VALUE_LENGTH
