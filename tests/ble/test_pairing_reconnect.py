"""Pairing, bonding and reconnecting on the software radio (issue 5). The simulated ball's
scenario presses a known force at a known time, so the two-point calibration runs
unattended; everything is stored in the per-test MASSAGECTL_CONFIG_DIR."""

from __future__ import annotations

import asyncio

import pytest

from device.config.known_devices import KnownDevices, calibration_for
from device.control.supervised import SupervisedSession
from device.errors import LinkClosedError
from device.links import open_link
from device.pairing.pair import pair_device
from device.session.reconnect import Backoff, ReconnectingSession
from dsp.events import Event, Fault, LinkLost, LinkRestored, Stop
from dsp.pipeline import ForcePipeline
from dsp.zones import get_zone
from firmware_bridge import gatt
from simulators.ble_radio import SoftwareRadio
from simulators.devices import make_firmware
from simulators.scenario import PressPoint, Scenario

SPEED = 2.0
KNOWN_N = 20.0
#: unloaded until 3 s (simulator time), then the known force from 3.3 s to 8 s
SCENARIO = Scenario(
    name="known-press",
    press=(PressPoint(3.0, KNOWN_N, 0.3), PressPoint(8.0, 0.0, 0.5)),
)


@pytest.fixture
async def ball():
    """A radio whose ball insists on an encrypted link for the massagectl service."""
    from device.ble import bumble_host

    radio = SoftwareRadio(
        make_firmware("ball", SCENARIO), speed=SPEED, log=lambda _t: None, require_encryption=True
    )
    await radio.start()
    yield radio
    await radio.stop()
    leaked = [h for h in bumble_host._hosts.values() if not h.closed]
    for host in leaked:
        await host.close()
    assert not leaked


async def test_pair_bonds_tares_calibrates_stores_and_a_reconnect_is_encrypted(ball):
    lines: list[str] = []
    link = open_link(f"ble://{gatt.BALL_ADVERTISED_NAME}", hci=ball.transport_spec, speed=SPEED)
    result = await pair_device(link, known_force_n=KNOWN_N, press_timeout_s=20, say=lines.append)
    assert result.bond.bonded and result.bond.encrypted
    assert ball.ball.pairings == 1
    (record,) = KnownDevices().devices()
    assert (record.name, record.address) == (gatt.BALL_ADVERTISED_NAME, gatt.SIM_BALL_ADDRESS)
    assert (record.model, record.serial_number, record.firmware) == (
        "MBALL-1",
        "SIM-BALL-0001",
        "1.2.0",
    )
    assert record.bonded and record.bond["keys"]["ltk"]["value"]
    assert record.bond["secure_connections"] is True
    assert record.bond["authenticated"] is False  # Just Works: the ball has no display
    cal = record.calibration
    assert cal.how == "two_point" and cal.known_force_n == KNOWN_N
    assert cal.offset_counts == result.offset_counts
    assert cal.scale_counts_per_n == pytest.approx(1000.0, rel=0.02)  # the scenario's sensor
    assert abs(cal.offset_counts - 12_000) < 100
    assert any("press 20 N" in line for line in lines)
    assert KnownDevices().host_identity() is not None

    # a later session: encrypted with the stored keys (no new pairing), stored calibration
    link = open_link(f"ble://{gatt.BALL_ADVERTISED_NAME}", hci=ball.transport_spec)
    async with link:
        assert link.security == {"encrypted": True}
        assert ball.ball.connection.is_encrypted
    assert ball.ball.pairings == 1
    assert calibration_for(f"ble://{gatt.BALL_ADVERTISED_NAME}").offset_counts == cal.offset_counts


async def test_without_a_bond_the_ball_that_requires_one_refuses_commands(ball):
    from device.session.device_session import DeviceSession

    link = open_link(f"ble://{gatt.BALL_ADVERTISED_NAME}", hci=ball.transport_spec)
    async with link:
        assert link.security == {"encrypted": False}
    with pytest.raises(LinkClosedError, match="write of Hello failed"):
        async with DeviceSession(
            open_link(f"ble://{gatt.BALL_ADVERTISED_NAME}", hci=ball.transport_spec)
        ):
            pass


async def test_stored_keys_the_ball_no_longer_has_are_a_clear_error(ball):
    link = open_link(f"ble://{gatt.BALL_ADVERTISED_NAME}", hci=ball.transport_spec)
    async with link:
        assert (await link.pair()).bonded
    await ball.ball.device.keystore.delete_all()  # the ball was reset
    with pytest.raises(Exception, match="refused our bonding keys.*massagectl pair"):
        async with open_link(f"ble://{gatt.BALL_ADVERTISED_NAME}", hci=ball.transport_spec):
            pass


@pytest.mark.parametrize("radio", [SPEED], indirect=True)
async def test_a_dropped_link_pauses_and_resumes_with_the_gap_recorded(radio):
    session = ReconnectingSession(
        f"ble://{gatt.BALL_ADVERTISED_NAME}",
        speed=SPEED,
        hci=radio.transport_spec,
        reconnect_timeout_s=15,
    )
    events: list[Event] = []
    async with session:
        pipeline = ForcePipeline(session.rate_hz, session.calibration, get_zone("neck_back"))
        live = SupervisedSession(session, pipeline)
        live.add_listener(events.append)
        seqs: list[tuple[int, int, float]] = []
        live.add_batch_listener(lambda b, _r: seqs.append((b.seq, b.gap, float(b.t_s[-1]))))
        live.start()
        await session.set_limit(10.0)
        first_link = session.link
        async with asyncio.timeout(20):
            while not seqs or seqs[-1][2] < 1.0:
                await live.changed.wait()
                live.changed.clear()
            dropped_at = len(seqs)
            await radio.ball.connection.disconnect()  # the ball hangs up mid-stream
            while not any(isinstance(e, LinkRestored) for e in events) or len(seqs) < (
                dropped_at + 50
            ):
                await live.changed.wait()
                live.changed.clear()
        await live.close()
    (lost,) = [e for e in events if isinstance(e, LinkLost)]
    (restored,) = [e for e in events if isinstance(e, LinkRestored)]
    assert not [e for e in events if isinstance(e, Stop | Fault)]
    assert lost.count == 1 and lost.reconnecting and "disconnected" in (lost.error or "")
    assert restored.count == 1 and restored.attempts >= 1
    (gap,) = session.gaps
    assert gap.duration_s == pytest.approx(restored.gap_s, abs=1e-3)
    assert live.link_gaps_s == [pytest.approx(restored.gap_s, abs=1e-3)]
    print(
        f"reconnect: gap {gap.duration_s:.3f} s host time, {gap.attempts} attempt(s), "
        f"device time {gap.resumed_t_s - gap.last_t_s:.3f} s between batches"
    )
    assert 0 < gap.duration_s < 10
    assert session.link is not first_link and session.reconnects == 1
    # device time runs on through the gap; no batch reports a sequence gap
    assert gap.resumed_t_s > gap.last_t_s
    assert all(g == 0 for _seq, g, _t in seqs)
    assert session.counters.missed_batches == 0 and session.counters.seq_gaps == 0
    times = [t for _s, _g, t in seqs]
    assert times == sorted(times)
    # the firmware limit was set again on the new link, and the motor stopped
    assert radio.firmware.limit_mn == 10_000
    assert not radio.firmware.motor_on
    # the loss latched the supervisor like any stop: nothing vibrates until a re-arm, which
    # the usual rules allow once force has stayed under the reset level for a second
    assert pipeline.supervisor.latched and pipeline.supervisor.state == "fault"
    assert pipeline.supervisor.can_rearm(seqs[-1][2]) == (seqs[-1][2] - gap.resumed_t_s >= 1.0)


@pytest.mark.parametrize("radio", [SPEED], indirect=True)
async def test_a_ball_that_never_comes_back_ends_the_session_within_the_timeout(radio):
    session = ReconnectingSession(
        f"ble://{gatt.BALL_ADVERTISED_NAME}",
        speed=SPEED,
        hci=radio.transport_spec,
        reconnect_timeout_s=1.5,
        backoff=Backoff(first_s=0.1, max_s=0.3),
    )
    async with session:
        batches = session.batches()
        await anext(batches)

        async def silent() -> None:  # the ball is gone: it never advertises again
            return None

        radio.ball._advertise = silent
        loop = asyncio.get_running_loop()
        await radio.ball.connection.disconnect()
        t0 = loop.time()
        with pytest.raises(LinkClosedError, match=r"did not come back within 1.5 s"):
            async with asyncio.timeout(10):
                async for _batch in batches:
                    pass
        assert loop.time() - t0 < 1.5 + 2.5  # the timeout, plus one attempt's scan at most
    assert session.gaps[0].attempts >= 1 and session.gaps[0].restored_host_s is None
