"""Device sessions over the in-process ``sim://`` link (real codec, simulated firmware)."""

from __future__ import annotations

import asyncio
import os
import tty

import numpy as np
import pytest

from device.errors import DeviceRefusedError, DeviceTimeoutError, LinkClosedError, UsageError
from device.links import open_link
from device.session.device_session import DeviceSession
from dsp.pipeline import ForcePipeline
from dsp.zones import get_zone
from firmware_bridge.messages import NackCode, SetStream, Vibrate
from simulators.scenario import parse_scenario
from tests.helpers import collect_batches

SPEED = 4.0


def _scenario_file(tmp_path, text: str) -> str:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.virtual_time
async def test_force_follows_the_scenario(tmp_path):
    path = _scenario_file(
        tmp_path,
        "press = [{t_s = 0.5, force_n = 15.0, ramp_s = 0.2}]\n[sensor]\nnoise_n = 0.05\n",
    )
    link = open_link(f"sim://ball?scenario={path}", speed=SPEED)
    async with DeviceSession(link) as session:
        batches = await collect_batches(session, 2.0)
        pipeline = ForcePipeline(session.rate_hz, session.calibration, get_zone(None))
    t = np.concatenate([b.t_s for b in batches])
    f = np.concatenate(
        [pipeline.on_batch(b.t_s, b.raw_counts, b.t_host_s).force_n for b in batches]
    )
    # The host's t_s starts at the first sample; the scenario started when the simulator did.
    sim = link.firmware
    assert session.counters.missed_batches == 0
    assert np.all(np.diff(t) > 0)
    late = f[t > t[-1] - 0.5]
    assert abs(late.mean() - 15.0) < 0.1
    assert late.std() < 0.2
    assert sim.true_force_n == pytest.approx(15.0)


@pytest.mark.virtual_time
async def test_vibrate_and_stop_drive_the_simulated_motor():
    link = open_link("sim://ball", speed=SPEED)
    async with DeviceSession(link) as session:
        await session.set_limit(40.0)  # version 2: no vibration without a limit
        await session.vibrate(40.0, 120)
        assert link.firmware.physics.motor.drive == pytest.approx(0.4)
        assert link.firmware.physics.motor.commanded_hz == 120
        await session.stop_motor()
        await asyncio.sleep(0.05)
        assert link.firmware.physics.motor.drive == 0.0
        assert link.firmware.stops_received >= 1


@pytest.mark.virtual_time
@pytest.mark.parametrize("intensity", [float("nan"), float("inf"), float("-inf")])
async def test_a_nan_or_infinite_intensity_is_refused_before_it_reaches_the_motor(intensity):
    """Regression (issue 14; fixed with the "one owner" issue): vibrate(nan) and
    vibrate(inf) drove the motor at 1000 per mille."""
    link = open_link("sim://ball", speed=SPEED)
    async with DeviceSession(link) as session:
        await session.set_limit(20.0)
        with pytest.raises(UsageError, match="finite percentage"):
            await session.vibrate(intensity, 120)
        assert link.firmware.physics.motor.drive == 0.0
        assert not any(e.name == "vibrate" for e in link.firmware.events)


@pytest.mark.virtual_time
async def test_a_bad_command_is_refused_with_its_code():
    async with DeviceSession(open_link("sim://ball", speed=SPEED)) as session:
        with pytest.raises(DeviceRefusedError) as err:
            await session.command(Vibrate(intensity_permille=2000, frequency_hz=100))
        assert err.value.code == NackCode.OUT_OF_RANGE
        with pytest.raises(DeviceRefusedError):
            await session.command(SetStream(rate_hz=7, samples_per_batch=10))


@pytest.mark.virtual_time
async def test_keepalive_keeps_the_motor_running_past_the_deadman():
    link = open_link("sim://ball", speed=SPEED)
    async with DeviceSession(link) as session:
        await session.set_limit(40.0)
        await session.vibrate(30.0, 100)
        await collect_batches(session, 1.5)  # 1.5 s of device time, three deadman periods
        assert link.firmware.motor_on
        assert not [e for e in link.firmware.events if e.name == "deadman"]


@pytest.mark.virtual_time
async def test_closing_stops_the_motor_and_is_safe_twice():
    link = open_link("sim://ball", speed=SPEED)
    session = DeviceSession(link)
    await session.start()
    await session.set_limit(40.0)
    await session.vibrate(50.0, 100)
    await session.close()
    await session.close()
    assert not link.firmware.motor_on
    with pytest.raises(LinkClosedError):
        await link.open()


@pytest.mark.virtual_time
async def test_tare_moves_the_zero(tmp_path):
    path = _scenario_file(tmp_path, "press = [{t_s = 0.0, force_n = 2.0}]\n")
    async with DeviceSession(open_link(f"sim://ball?scenario={path}", speed=SPEED)) as session:
        pipeline = ForcePipeline(session.rate_hz, session.calibration, get_zone(None))

        def force_n(batch) -> float:
            return float(
                pipeline.on_batch(batch.t_s, batch.raw_counts, batch.t_host_s).force_n.mean()
            )

        before = await collect_batches(session, 0.3)
        assert force_n(before[-1]) == pytest.approx(2.0, abs=0.1)
        offset = await session.tare()
        assert offset == pytest.approx(12_000 + 2_000, abs=50)
        pipeline.apply_device_tare(offset)  # whoever tares hands the offset to the pipeline
        after = await collect_batches(session, 0.6)
        assert force_n(after[-1]) == pytest.approx(0.0, abs=0.1)


@pytest.mark.virtual_time
async def test_device_time_is_unwrapped_across_the_u32_wrap(tmp_path):
    start_us = 2**32 - 300_000
    path = _scenario_file(tmp_path, f"[clock]\nstart_us = {start_us}\ndrift_ppm = 0.0\n")
    async with DeviceSession(open_link(f"sim://ball?scenario={path}", speed=SPEED)) as session:
        batches = await collect_batches(session, 1.0)
    t = np.concatenate([b.t_s for b in batches])
    assert np.all(np.diff(t) > 0)
    assert np.allclose(np.diff(t), 1e-3, atol=2e-6)


async def test_a_silent_port_fails_the_handshake_with_a_clear_error():
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        link = open_link(f"serial://{os.ttyname(slave)}")
        with pytest.raises(DeviceTimeoutError, match="no answer to Hello"):
            await DeviceSession(link).start()
    finally:
        os.close(master)
        os.close(slave)


def test_scenario_parse_rejects_unknown_fields():
    from simulators.scenario import ScenarioError

    with pytest.raises(ScenarioError, match="sensor.nois"):
        parse_scenario({"sensor": {"nois": 1}})
    with pytest.raises(ScenarioError, match="press\\[0\\]"):
        parse_scenario({"press": [{"t_s": 1}]})


def test_a_speed_in_the_url_sets_the_simulator_and_the_session_alike(tmp_path):
    from device.session.reconnect import open_device_session

    session = open_device_session("sim://ball?speed=4")
    assert session.timebase is session.link.timebase and session.timebase.speed == 4.0
    session = open_device_session("sim://ball?speed=4", speed=2.0)  # the caller's wins
    assert session.timebase.speed == 2.0 and session.timebase.driven
    replay = open_device_session(f"replay://{tmp_path}?speed=max")
    assert replay.link.speed == float("inf") and replay.timebase.speed == 1.0
