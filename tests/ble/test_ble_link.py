"""``ble://`` links and device sessions over the Bumble backend, against the simulated ball."""

from __future__ import annotations

import asyncio

import pytest

from device.errors import DeviceNotFoundError, DeviceRefusedError, LinkClosedError
from device.links import open_link
from device.screening.gate import ScreeningRefused, evaluate, simulated_user_answers
from device.session.device_session import DeviceSession
from firmware_bridge import gatt
from firmware_bridge.messages import NackCode, Stop, Vibrate
from tests.helpers import person_screening

SPEED = 2.5


async def test_open_reads_battery_and_device_information(radio):
    async with open_link(f"ble://{gatt.BALL_ADVERTISED_NAME}", hci=radio.transport_spec) as link:
        assert link.kind == "ble"
        assert link.address == gatt.SIM_BALL_ADDRESS
        assert link.battery_pct == round(radio.firmware.physics.battery_pct)
        assert link.device_info["model"] == "MBALL-1"
        assert link.device_info["firmware"] == "1.2.0"
        assert link.mtu == gatt.PREFERRED_ATT_MTU
        assert link.max_samples_per_batch == 58
        assert link.backend == f"bumble:{radio.transport_spec}"


@pytest.mark.parametrize("radio", [SPEED], indirect=True)
async def test_1khz_force_for_5s_of_device_time_with_zero_gaps(radio):
    link = open_link(f"ble://{gatt.SIM_BALL_ADDRESS}", hci=radio.transport_spec, speed=SPEED)
    async with DeviceSession(link, rate_hz=1000, samples_per_batch=10) as session:
        seqs = []
        async for batch in session.batches():
            seqs.append(batch.seq)
            assert batch.rate_hz == 1000
            if batch.t_s[-1] >= 5.0:
                break
    counters = session.counters
    assert counters.missed_batches == 0
    assert counters.seq_gaps == 0
    assert counters.samples >= 5000
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False))


async def test_vibrate_and_stop_drive_the_simulated_motor(radio):
    firmware = radio.firmware
    link = open_link(f"ble://{gatt.BALL_ADVERTISED_NAME}", hci=radio.transport_spec)
    async with DeviceSession(link) as session:
        # a ble:// device is a real device to the session: no vibration before a screening
        with pytest.raises(ScreeningRefused, match="without a passed screening"):
            await session.vibrate(40, 100)
        with pytest.raises(ScreeningRefused, match="simulated user"):
            session.clear_for_vibration(
                evaluate(simulated_user_answers(), source="sim", simulated=True)
            )
        assert not firmware.motor_on and not [e for e in firmware.events if e.name == "vibrate"]
        session.clear_for_vibration(person_screening())
        await session.set_limit(40.0)
        await session.vibrate(40, 100)
        assert firmware.motor_on
        assert firmware.physics.motor.drive == pytest.approx(0.4)
        assert firmware.physics.motor.commanded_hz == 100
        await session.command(Stop())
        assert not firmware.motor_on
        assert firmware.stops_received == 1


async def test_a_bad_command_gets_a_nack(radio):
    link = open_link(f"ble://{gatt.BALL_ADVERTISED_NAME}", hci=radio.transport_spec)
    async with DeviceSession(link) as session:
        session.clear_for_vibration(person_screening())
        with pytest.raises(DeviceRefusedError) as refused:
            await session.command(Vibrate(intensity_permille=2000, frequency_hz=100))
        assert refused.value.code == NackCode.OUT_OF_RANGE
        assert session.counters.nacks == 1
        assert not radio.firmware.motor_on


async def test_an_absent_device_is_not_found_within_the_scan_timeout(radio):
    link = open_link("ble://NOBALL", hci=radio.transport_spec, scan_timeout_s=0.5)
    with pytest.raises(DeviceNotFoundError, match=r"ble://NOBALL: no device .* within 0.5 s"):
        await asyncio.wait_for(link.open(), 10)


async def test_the_ball_hanging_up_ends_the_stream_with_link_closed(radio):
    link = open_link(f"ble://{gatt.BALL_ADVERTISED_NAME}", hci=radio.transport_spec)
    async with DeviceSession(link) as session:
        batches = session.batches()
        await anext(batches)
        await radio.ball.connection.disconnect()
        with pytest.raises(LinkClosedError, match="disconnected"):
            async with asyncio.timeout(5):
                async for _batch in batches:
                    pass


async def test_a_lost_hci_transport_ends_the_stream_with_link_closed(radio):
    link = open_link(f"ble://{gatt.BALL_ADVERTISED_NAME}", hci=radio.transport_spec)
    async with DeviceSession(link) as session:
        batches = session.batches()
        await anext(batches)
        radio._client.transport.close()  # the radio goes away under the host
        with pytest.raises(LinkClosedError):
            async with asyncio.timeout(5):
                async for _batch in batches:
                    pass
