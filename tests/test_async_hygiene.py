"""Lifecycle: sessions and supervised loops close in order and leave nothing behind (the
autouse ``_no_leaks`` fixture in conftest.py also fails any test that leaks a task or link)."""

from __future__ import annotations

import asyncio

import pytest

from device.control.supervised import SupervisedSession
from device.errors import LinkClosedError, LinkError
from device.links import open_link
from device.links.base import OPEN_LINKS, LinkState
from device.session.device_session import DeviceSession
from dsp.pipeline import ForcePipeline
from dsp.zones import get_zone
from firmware_bridge.messages import Keepalive
from tests.virtual_time import FailFastLoop

pytestmark = pytest.mark.virtual_time


async def test_a_keepalive_that_dies_ends_the_stream_and_close_still_closes_the_link():
    link = open_link("sim://ball")
    session = DeviceSession(link)
    await session.start()
    send = link._send

    async def failing_send(msg):
        if isinstance(msg, Keepalive):
            raise LinkError("write timed out")
        await send(msg)

    link._send = failing_send
    with pytest.raises(LinkClosedError, match="keepalive failed"):
        async for _batch in session.batches():
            pass
    await session.close()  # before: re-raised the keepalive's LinkError and left it open
    assert link.state is LinkState.CLOSED and link not in OPEN_LINKS
    await session.close()  # twice is safe


async def test_closing_the_loop_sends_nothing_after_its_stop():
    # a device that reports version 2: the host streams levels, so a Vibrate is pending
    link = open_link("sim://handheld?protocol=2")
    async with DeviceSession(link) as session:
        await session.set_limit(get_zone("upper_back").ceiling_n)  # no vibration without one
        live = SupervisedSession(
            session, ForcePipeline(session.rate_hz, session.calibration, get_zone("upper_back"))
        )
        live.start()
        from device.control.vibration import get_pattern

        live.play(get_pattern("wave"), 60.0)
        while live.coalescer.vibrate_count < 3:
            await live.changed.wait()
            live.changed.clear()
        # a wave asks for a new level often: a request is pending behind the coalescer's gap
        await live.close()
        await live.close()
        fw = link.firmware
        last_stop = max(i for i, e in enumerate(fw.events) if e.name == "stop_received")
        later = [e for e in fw.events[last_stop:] if e.name == "vibrate"]
        assert later == [] and not fw.motor_on
        assert live.coalescer._timer is None


def test_a_timeout_raised_inside_a_callback_ends_the_run():
    """pytest-timeout raises its failure (a BaseException) from a signal handler in whatever
    runs; inside a loop callback asyncio would log it and go on (a hung test sat minutes past
    its timeout). Our loops let it end the run."""

    class Timeout(BaseException):
        pass

    loop = FailFastLoop()
    try:

        def callback():
            raise Timeout

        async def forever():
            loop.call_soon(callback)
            await asyncio.Event().wait()

        with pytest.raises(Timeout):
            loop.run_until_complete(forever())
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
