"""Device sessions over the in-process ``sim://`` link (real codec, simulated firmware)."""

from __future__ import annotations

import asyncio
import os
import re
import tty

import numpy as np
import pytest

from device.errors import DeviceRefusedError, DeviceTimeoutError, LinkClosedError, UsageError
from device.links import open_link
from device.session.device_session import DeviceSession
from dsp.pipeline import ForcePipeline
from dsp.zones import get_zone
from firmware_bridge.messages import NackCode, SetStream, StatusFlags, Vibrate
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
async def test_the_same_limit_is_set_once_until_the_device_trips_it():
    """A routine sets its zone's limit for every unit: the same one again was a command for
    nothing (9 instead of 23 SetLimits in the neck routine). After a trip (Status) it goes
    out again: a SetLimit is one of the two ways the device's trip latch clears."""
    link = open_link("sim://ball", speed=SPEED)
    async with DeviceSession(link) as session:
        fw = link.firmware
        for limit_n in (40.0, 40.0, 40.0, 20.0, 20.0, 40.0):
            await session.set_limit(limit_n)
        limits = [e.detail["limit_mn"] for e in fw.events if e.name == "set_limit"]
        assert limits == [40000, 20000, 40000]
        fw.physics.force_source = lambda _t: 60.0  # pressed past it: the firmware trips
        while session.status is None or not session.status.flags & StatusFlags.LIMIT_TRIPPED:
            await asyncio.sleep(0.01)
        fw.physics.force_source = lambda _t: 0.0
        await asyncio.sleep(0.1)
        await session.set_limit(40.0)
        limits = [e.detail["limit_mn"] for e in fw.events if e.name == "set_limit"]
        assert limits == [40000, 20000, 40000, 40000]


@pytest.mark.virtual_time
async def test_a_stop_answered_at_once_is_sent_once():
    """The Stop's Ack can come before its confirmation starts waiting (the simulator answers
    at once): it must still count, not cost a resend 0.2 s later (every Stop went out twice)."""
    link = open_link("sim://ball", speed=SPEED)
    async with DeviceSession(link) as session:
        await session.set_limit(40.0)
        await session.vibrate(40.0, 120)
        for _ in range(3):
            await session.stop_motor()
            await asyncio.sleep(0.5)  # past every resend of an unanswered Stop
        assert session.counters.commands_retried == 0
        assert link.firmware.duplicates_received == 0
        assert link.firmware.stops_received == 3


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


# ---- issue 14: a scenario is fully checked before the simulator starts ---------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('seed = "abc"\n', "seed: expected `int`, got `str`"),
        ("seed = true\n", "seed: expected `int`, got `bool`"),
        ("press = 5\n", "press: expected `array`, got `int`"),
        ("press = [{t_s = 1.0, force_n = nan}]\n", "press[0].force_n: expected `float` >= 0.0"),
        ("press = [{t_s = inf, force_n = 1.0}]\n", "press[0].t_s: expected `float` <= "),
        ("[sensor]\nscale_counts_per_n = 0\n", "sensor.scale_counts_per_n: expected `float` > 0"),
        ("[sensor]\nnoise_n = -1\n", "sensor.noise_n: expected `float` >= 0"),
        ("[sensor]\noffset_counts = 1" + "0" * 400 + "\n", "sensor.offset_counts: expected `int`"),
        ("[sensor]\nsaturation_n = 9000\nscale_counts_per_n = 900000\n", "beyond the 32-bit"),
        ("[motor]\ndefault_hz = 0\n", "motor.default_hz: expected `int` >= 1"),
        ("[clock]\nstart_us = -1\n", "clock.start_us: expected `int` >= 0"),
        ("repeat_s = nan\n", "repeat_s: expected `float` > 0"),
        ("sensor = [1]\n", "sensor: expected `object`, got `array`"),
        ("fault = 3\n", "fault: expected `array`, got `int`"),
        ("name = " + "[" * 2000 + "]" * 2000 + "\n", "not valid TOML: nested too deep"),
    ],
)
def test_a_bad_scenario_is_one_error_naming_the_field(tmp_path, text, message):
    from simulators.scenario import ScenarioError, load_scenario

    path = _scenario_file(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value), info.value
    with pytest.raises(UsageError, match=re.escape(message)):
        open_link(f"sim://ball?scenario={path}")


def test_a_scenario_that_is_not_utf8_is_one_error(tmp_path):
    from simulators.scenario import ScenarioError, load_scenario

    path = tmp_path / "s.toml"
    path.write_bytes(b'name = "\xff"\n')
    with pytest.raises(ScenarioError, match="not UTF-8 text"):
        load_scenario(path)


def test_the_cli_refuses_a_bad_scenario_in_one_line(tmp_path, capsys):
    from ui.cli import main

    path = _scenario_file(tmp_path, "[sensor]\nscale_counts_per_n = 0\n")
    assert main(["stream", f"sim://ball?scenario={path}", "--duration", "0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and path in err and "scale_counts_per_n" in err, err


@pytest.mark.virtual_time
async def test_a_simulator_whose_stepping_task_dies_ends_the_link_loudly():
    """Before: the task died silently, the host waited on a silent device whose deadman no
    longer ran."""
    link = open_link("sim://ball", speed=SPEED)
    async with DeviceSession(link) as session:
        await collect_batches(session, 0.2)

        def broken(t_s):
            raise ZeroDivisionError("float division by zero")

        link.firmware.advance = broken
        with pytest.raises(LinkClosedError, match="simulated device stopped: ZeroDivisionError"):
            await collect_batches(session, 5.0)


# ---- issue 14: device data the host cannot use is refused, never turned into NaN ----------


@pytest.mark.virtual_time
@pytest.mark.parametrize("scale", [0.0, float("nan"), float("inf")])
async def test_a_device_info_with_an_unusable_scale_is_refused(scale):
    from device.errors import DeviceDataError

    link = open_link("sim://ball", speed=SPEED)
    link.firmware.scale = scale
    with pytest.raises(DeviceDataError, match="calibration scale of"):
        await DeviceSession(link).start()
    assert link.state.value == "closed"


@pytest.mark.virtual_time
async def test_a_stored_calibration_makes_a_zero_factory_scale_harmless():
    from dsp.calibration import Calibration

    link = open_link("sim://ball", speed=SPEED)
    link.firmware.scale = 0.0
    async with DeviceSession(link, calibration=Calibration(1000.0, 12_000.0)) as session:
        assert await collect_batches(session, 0.1)


@pytest.mark.virtual_time
async def test_a_force_batch_at_zero_hz_ends_the_stream_with_a_clear_error():
    from dataclasses import replace

    from device.errors import DeviceDataError
    from firmware_bridge.messages import ForceBatch

    link = open_link("sim://ball", speed=SPEED)
    deliver = link._deliver
    link._deliver = lambda m: deliver(replace(m, rate_hz=0) if isinstance(m, ForceBatch) else m)
    async with DeviceSession(link) as session:
        with pytest.raises(DeviceDataError, match="force batch at 0 Hz"):
            await collect_batches(session, 1.0)


def test_stream_json_refuses_a_zero_scale_device_in_one_line(monkeypatch, capsys):
    """Before: `stream --json` printed NaN forces, which is not JSON."""
    import device.links.sim as sim_link
    from ui.cli import main

    make = sim_link.make_firmware

    def zero_scale(*args, **kw):
        firmware = make(*args, **kw)
        firmware.scale = 0.0
        return firmware

    monkeypatch.setattr(sim_link, "make_firmware", zero_scale)
    assert main(["stream", "sim://ball", "--json", "--duration", "0.3"]) == 2
    out, err = capsys.readouterr()
    assert "NaN" not in out
    assert len(err.strip().splitlines()) == 1 and "calibration scale of 0.0" in err, err
