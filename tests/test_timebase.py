"""The run's time base: one speed for every timer, from the URL or the option, and the
faces' supervised loop on it (virtual time: device time is exact under any machine load)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

import device.control.run
import ui.commands.vibrate as vibrate_cmd
from device.control.supervised import SupervisedSession
from device.errors import UsageError
from device.links import open_link
from device.session.device_session import DeviceSession
from device.timebase import MAX_STEP_S, TICK_S, TimeBase, check_face_speed
from device.urls import parse_url
from tests.helpers import vibrate_args

#: DESIGN.md: stale = no batch for max(150 ms, 3 batch periods) while vibrating; one tick
#: (50 ms) to notice it; the Stop reaches the in-process firmware within one simulator step.
STALE_STOP_BUDGET_S = 0.15 + TICK_S + MAX_STEP_S


@pytest.mark.parametrize(
    ("url", "option", "speed"),
    [
        ("sim://ball", None, 1.0),
        ("sim://ball?speed=4", None, 4.0),
        ("sim://ball?speed=4", 2.0, 2.0),  # the option wins
        ("replay:///x?speed=max", None, 1.0),  # "as fast as possible" scales no timer
        ("replay:///x?speed=3", None, 3.0),
        ("serial:///dev/x", None, 1.0),
    ],
)
def test_the_speed_comes_from_the_option_or_else_the_url(url, option, speed):
    tb = TimeBase.for_url(parse_url(url), option)
    assert tb.speed == speed
    assert tb.keepalive_period_s == pytest.approx(0.1 / speed)
    assert tb.tick_period_s == pytest.approx(TICK_S / speed)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_a_bad_speed_is_a_usage_error(bad):
    with pytest.raises(UsageError, match="positive"):
        TimeBase.for_url(parse_url("sim://ball"), bad)


def test_the_faces_refuse_a_speed_for_a_real_device():
    with pytest.raises(UsageError, match="only for simulated devices"):
        check_face_speed(parse_url("serial:///dev/ttyACM0"), 3.0)
    assert check_face_speed(parse_url("serial:///dev/ttyACM0"), None).speed == 1.0


@pytest.mark.virtual_time
async def test_an_in_process_simulator_and_the_host_share_one_clock():
    link = open_link("sim://ball?speed=4")
    async with DeviceSession(link) as session, contextlib.aclosing(session.batches()) as batches:
        assert session.timebase is link.timebase and link.timebase.driven
        for _ in range(50):
            batch = await anext(batches)
        # the host's device time is the simulator's: the last sample is at most a step old
        now = session.timebase.now_s()
        assert 0 <= now - float(batch.t_s[-1]) <= MAX_STEP_S + 0.011


@pytest.mark.virtual_time
async def test_a_late_loop_cannot_jump_simulated_time_past_the_deadman():
    tb = TimeBase(10.0).drive()
    loop = asyncio.get_running_loop()
    tb.advance()
    loop.advance(0.2)  # the loop was 200 ms late: 2 s of device time at speed 10
    assert tb.advance() == pytest.approx(MAX_STEP_S)


@pytest.mark.virtual_time
async def test_vibrate_on_a_url_speed_ticks_every_50ms_of_device_time_and_stops_a_stale_stream(
    monkeypatch,
):
    """``vibrate`` on sim://ball?speed=4 (no --speed option): the supervisor ticks at least
    every 50 ms of device time, and when the stream goes silent mid-vibration the Stop reaches
    the firmware within the stale budget, in device time."""
    seen: dict = {}

    class Probe(SupervisedSession):
        def __init__(self, session, pipeline, **kw):
            super().__init__(session, pipeline, **kw)
            seen["live"], seen["link"], seen["ticks"] = self, session.link, []
            tick = pipeline.tick

            def recording_tick(t_host_s):
                seen["ticks"].append(t_host_s)
                return tick(t_host_s)

            pipeline.tick = recording_tick

        async def _on_batch(self, batch):
            await super()._on_batch(batch)
            if float(batch.t_s[-1]) >= 2.0 and "frozen_s" not in seen:
                # the device goes silent: nothing more reaches the host
                seen["frozen_s"] = float(batch.t_s[-1])
                self.session.link.runner._write = lambda _frame: True

    monkeypatch.setattr(device.control.run, "SupervisedSession", Probe)
    args = vibrate_args(url="sim://ball?speed=4")
    rc = await vibrate_cmd.run(args)

    assert rc == 1  # stopped
    live, fw = seen["live"], seen["link"].firmware
    assert live.timebase.speed == 4.0
    ticks = seen["ticks"]
    assert len(ticks) > 20
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert max(gaps) <= TICK_S + MAX_STEP_S  # device seconds (a tick reads a stepped clock)
    assert sum(gaps) / len(gaps) == pytest.approx(TICK_S, rel=0.2)
    stop = next(e for e in fw.events if e.name == "stop_received" and e.t_s > seen["frozen_s"])
    assert stop.t_s - seen["frozen_s"] <= STALE_STOP_BUDGET_S
    assert not fw.motor_on


async def test_a_stalled_host_loop_does_not_trip_the_in_process_deadman():
    """``demo --speed 10 --record`` recorded spurious ``keepalive_lost`` faults on a loaded
    machine: the simulator's clock was wall time x speed, so 60 ms of scheduling delay was
    600 ms of device time without a keepalive. On the shared, stepped clock a stalled loop
    delays both sides alike. (Real time on purpose: the stall is real.)"""
    link = open_link("sim://handheld?speed=10")
    async with DeviceSession(link) as session, contextlib.aclosing(session.batches()) as batches:
        await session.set_limit(40.0)
        await session.vibrate(30.0)
        t_end = None
        stalls = 0
        async for batch in batches:
            t_s = float(batch.t_s[-1])
            if t_s > 1.0 and stalls < 3:
                time.sleep(0.15)  # the loop is blocked: 1.5 s of device time at speed 10
                stalls += 1
                t_end = t_s + 1.0
            if t_end is not None and t_s >= t_end:
                break
        fw = link.firmware
        assert stalls == 3 and fw.motor_on
        assert not [e for e in fw.events if e.name in ("deadman", "motor_off")]
