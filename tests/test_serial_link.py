"""The serial link's writes on a real pseudo-terminal: never blocking the event loop, Stop
ahead of stale frames, a bounded queue and a stalled port that fails the link.

The test plays the device on the master side: it does not read (the port stalls) or reads
and decodes what the host wrote. Nothing here depends on how fast the machine is: the
stall is made by filling the pty until the OS takes no more, and time bounds are only
upper bounds far above what a non-blocking write takes (the old blocking write waited 0.5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import tty

import pytest

from device.errors import LinkClosedError
from device.links import open_link, serial_link
from device.links.serial_link import SerialLink
from firmware_bridge.framing import FrameDecoder, encode_frame
from firmware_bridge.messages import Keepalive, SetLimit, Stop, Vibrate

#: far above a non-blocking write, far below the old blocking write's 0.5 s
LAG_BOUND_S = 0.25


@contextlib.asynccontextmanager
async def _pty_link():
    """(link, master fd): an open SerialLink on a raw pty whose master nobody reads yet."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    link = open_link(f"serial://{os.ttyname(slave)}")
    assert isinstance(link, SerialLink)
    link.stall_timeout_s = 60.0  # these tests stall on purpose; one test lowers it
    try:
        await link.open()
        yield link, master
    finally:
        await link.close()
        os.close(master)
        os.close(slave)


def _send_now(link, msg) -> float:
    """Run ``link.send(msg)`` to its end without giving the event loop a turn (it must not
    wait on the port); returns how long the call took."""
    coro = link.send(msg)
    t0 = time.perf_counter()
    try:
        coro.send(None)
    except StopIteration:
        return time.perf_counter() - t0
    coro.close()
    raise AssertionError(f"send({type(msg).__name__}) waited on something")


def _stall(link) -> int:
    """Send SetLimit frames (seq 1, 2, ...) until the OS takes no more and one is left over;
    returns the last seq sent. Each send must return at once."""
    seq = 0
    while getattr(link, "pending_frames", 0) == 0:
        seq += 1
        assert seq < 100_000, "the pty never filled"
        assert _send_now(link, SetLimit(seq=seq, limit_mn=seq)) < LAG_BOUND_S
    return seq


def _set_once(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


async def _read_device_side(master: int, decoder: FrameDecoder, until, timeout_s: float = 10.0):
    """Read the master (the device's end) and decode until ``until(messages)``."""
    messages = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not until(messages):
        try:
            data = os.read(master, 65536)
        except BlockingIOError:
            # wait until the link (flushing its queue as the loop runs) has written more
            readable = loop.create_future()
            loop.add_reader(master, _set_once, readable)
            try:
                await asyncio.wait_for(readable, deadline - loop.time())
            except TimeoutError:
                raise AssertionError(f"stream ended early: {messages[-5:]}") from None
            finally:
                loop.remove_reader(master)
            continue
        messages.extend(decoder.feed(data))
    return messages


async def test_a_stalled_port_never_blocks_the_loop_and_stop_jumps_the_queue():
    async with _pty_link() as (link, master):
        loop = asyncio.get_running_loop()
        lags: list[float] = []

        async def ticker():
            while True:
                t0 = loop.time()
                await asyncio.sleep(0.01)
                lags.append(loop.time() - t0 - 0.01)

        ticking = loop.create_task(ticker())
        last_fill = _stall(link)
        # the port is stalled: intensity updates and keepalives pile up, then a Stop
        durations = []
        for i in range(5):
            durations.append(_send_now(link, Keepalive(seq=1000 + i)))
            durations.append(
                _send_now(link, Vibrate(seq=2000 + i, intensity_permille=100 * i, frequency_hz=100))
            )
        durations.append(_send_now(link, SetLimit(seq=3000, limit_mn=5000)))
        await asyncio.sleep(0.05)  # the loop runs with output pending: no spinning, no block
        durations.append(_send_now(link, Stop(seq=9999)))
        durations.append(_send_now(link, Keepalive(seq=4000)))
        await asyncio.sleep(0.05)
        ticking.cancel()
        assert max(durations) < LAG_BOUND_S
        assert lags and max(lags) < LAG_BOUND_S
        assert link.stats.frames_dropped_for_stop == 10  # 5 keepalives + 5 vibrates
        assert link.stats.frames_dropped_overflow == 0

        # the device reads again
        decoder = FrameDecoder()
        msgs = await _read_device_side(master, decoder, lambda m: Keepalive(seq=4000) in m)
        assert decoder.stats.crc_errors == decoder.stats.bad_frames == 0  # the stream is valid
        stop_at = next(i for i, m in enumerate(msgs) if isinstance(m, Stop))
        before, after = msgs[:stop_at], msgs[stop_at + 1 :]
        # before Stop: the fill frames the OS had, the half-written one completed, in order
        assert all(isinstance(m, SetLimit) for m in before)
        assert [m.seq for m in before] == list(range(1, len(before) + 1))
        assert len(before) in (last_fill - 1, last_fill)
        # after Stop: what was queued and is not superseded, in order; nothing stale
        expected = [] if len(before) == last_fill else [("SetLimit", last_fill)]
        expected += [("SetLimit", 3000), ("Keepalive", 4000)]
        assert [(type(m).__name__, m.seq) for m in after] == expected
        assert link.pending_frames == 0


async def test_a_half_written_frame_is_completed_before_stop():
    """The OS takes the first bytes of a Vibrate, then nothing: the rest of that frame goes
    out before Stop, or the device would see a corrupt frame and miss the Stop."""
    async with _pty_link() as (link, master):
        accepted: list[bytes] = []
        budget = [5]  # bytes the "OS" takes before it stalls

        def write_some(data) -> int:
            n = min(budget[0], len(data))
            budget[0] -= n
            accepted.append(bytes(data[:n]))
            return n

        link._write_some = write_some
        vib = Vibrate(seq=1, intensity_permille=500, frequency_hz=100)
        _send_now(link, vib)
        _send_now(link, Keepalive(seq=2))
        _send_now(link, Stop(seq=3))
        assert link.pending_frames == 2  # the rest of the Vibrate, then Stop
        assert link.stats.frames_dropped_for_stop == 1  # the Keepalive; not the started Vibrate
        budget[0] = 1_000
        link._flush()
        decoder = FrameDecoder()
        msgs = decoder.feed(b"".join(accepted))
        assert msgs == [vib, Stop(seq=3)]
        assert decoder.stats.bad_frames == decoder.stats.crc_errors == 0
        assert b"".join(accepted) == encode_frame(vib) + encode_frame(Stop(seq=3))


async def test_the_outgoing_queue_is_bounded():
    async with _pty_link() as (link, master):
        _stall(link)
        _send_now(link, SetLimit(seq=50_000, limit_mn=7000))
        cap = serial_link.MAX_QUEUED_FRAMES
        n = 3 * cap
        for i in range(n):
            assert _send_now(link, Keepalive(seq=1000 + i)) < LAG_BOUND_S
        # the partly written frame, if any, and at most MAX_QUEUED_FRAMES whole ones
        assert link.pending_frames <= cap + 1
        assert link.stats.frames_dropped_overflow >= n - cap
        # keepalives go first when the queue is full: the SetLimit is still there
        decoder = FrameDecoder()
        last = Keepalive(seq=1000 + n - 1)
        msgs = await _read_device_side(master, decoder, lambda m: last in m)
        assert any(isinstance(m, SetLimit) and m.seq == 50_000 for m in msgs)
        assert decoder.stats.bad_frames == decoder.stats.crc_errors == 0


async def test_a_port_stalled_too_long_fails_the_link():
    async with _pty_link() as (link, master):
        link.stall_timeout_s = 0.2
        _stall(link)
        with pytest.raises(LinkClosedError, match="stalled"):
            await asyncio.wait_for(link.receive(), 10.0)
        with pytest.raises(LinkClosedError):
            await link.send(Stop(seq=1))
