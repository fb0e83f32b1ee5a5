"""A hostile link between host and simulated firmware, in this process on virtual time: frames
corrupted, dropped, duplicated and reordered (``simulators.faults.FrameFaults``), a cut
link, a device clock that jumps, a device that speaks protocol version 1."""

from __future__ import annotations

import asyncio
import binascii
import contextlib

import numpy as np
import pytest
from cobs import cobs

from device.errors import DeviceRefusedError, LinkClosedError
from device.links import open_link
from device.session.device_session import DeviceSession
from firmware_bridge.framing import encode_frame
from simulators.faults import FrameFaults
from tests.helpers import collect_batches

SPEED = 4.0


def noisy(link, to_host: FrameFaults, to_device: FrameFaults):
    """Put fault injection on both directions of an in-process ``sim://`` link."""
    deliver = link._from_device

    def from_device(frame: bytes) -> bool:
        data = to_host.frames(frame)
        return deliver(data) if data else True

    async def send(msg) -> None:
        data = to_device.frames(encode_frame(msg))
        if data:
            link.runner.feed(data)

    link._from_device = from_device
    link._send = send
    return link


@pytest.mark.virtual_time
async def test_duplicated_and_reordered_batches_are_dropped_and_counted():
    """One duplicated batch was reported as 65535 missing (655 s blind), a swapped pair as
    65534; both now drop the extra or late batch, count it, and keep seq and t_s rising."""
    to_host = FrameFaults(duplicate=0.03, swap=0.03, seed=7)
    link = noisy(open_link("sim://ball", speed=SPEED), to_host, FrameFaults())
    async with DeviceSession(link) as session:
        batches = await collect_batches(session, 3.0)
    assert to_host.counts.duplicated > 3 and to_host.counts.swapped > 3
    c = session.counters
    assert c.duplicate_batches > 0 and c.late_batches > 0
    seqs = [b.seq for b in batches]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert max(b.gap for b in batches) <= 2  # a swapped pair: one late batch lost, no more
    t = np.concatenate([b.t_s for b in batches])
    assert np.all(np.diff(t) > 0)
    assert c.clock_jumps == 0


@pytest.mark.virtual_time
async def test_a_noisy_link_does_not_end_the_session_every_command_is_answered():
    """Corrupted frames both ways (a lost Ack ended the session with a traceback): each
    unanswered command is sent again with its seq; the firmware answers the repeat and acts
    once."""
    to_host = FrameFaults(corrupt=0.05, seed=1)
    to_device = FrameFaults(corrupt=0.1, seed=2)
    link = noisy(open_link("sim://ball", speed=SPEED), to_host, to_device)
    fw = link.firmware
    async with DeviceSession(link) as session:
        for i in range(40):
            await session.set_limit(40.0)
            await session.vibrate(10.0 + i, 100)
            await session.tare()
        await session.vibrate(0.0, 100)
        assert not fw.motor_on
        c = session.counters
    assert c.commands_unanswered == 0
    assert c.commands_retried > 0
    assert link.stats.crc_errors > 0  # the host saw the corruption ...
    assert link.runner.decoder_stats.crc_errors > 0  # ... and the device too
    assert fw.duplicates_received > 0  # a retry of a command it had acted on (its Ack lost)
    # every Vibrate was acted on once: 40 levels + the final 0
    assert [e.name for e in fw.events].count("vibrate") == 41


@pytest.mark.virtual_time
async def test_a_cut_link_stops_the_motor_within_the_deadman():
    to_device = FrameFaults()
    link = noisy(open_link("sim://ball", speed=SPEED), FrameFaults(), to_device)
    fw = link.firmware
    async with DeviceSession(link) as session:
        await session.set_limit(40.0)
        await session.vibrate(50.0, 100)
        await collect_batches(session, 0.3)
        to_device.cut = True  # host -> device is gone: no keepalive arrives
        await session.stop_motor()  # lost too: its confirmation fails the stream
        with pytest.raises(LinkClosedError, match="no answer to Stop"):
            await collect_batches(session, 0.3 + 2 * SPEED)  # the budget: 1 s of loop time
    (deadman,) = [e for e in fw.events if e.name == "deadman"]
    assert deadman.t_s - deadman.detail["last_command_s"] <= 0.5 + 0.002
    assert not fw.motor_on
    assert session.counters.commands_unanswered == 1


def _shift_clock(fw, after_s: float, by_us: int) -> None:
    """The firmware's clock steps by ``by_us`` at simulator time ``after_s``."""
    device_us = fw.device_us

    def shifted(t_s: float) -> int:
        us = device_us(t_s)
        return (us + by_us) & 0xFFFFFFFF if t_s >= after_s else us

    fw.device_us = shifted


@pytest.mark.virtual_time
@pytest.mark.parametrize("by_s", [-1.0, 10.0])
async def test_a_device_clock_jump_is_counted_and_t_s_runs_on(by_s):
    """The device clock stepping back 1 s ran t_s backwards (6 s of vibration counted for
    5 s); forward 10 s ended a session by max_vibration_time."""
    link = open_link("sim://ball", speed=SPEED)
    _shift_clock(link.firmware, 1.0, round(by_s * 1e6))
    async with DeviceSession(link) as session:
        batches = await collect_batches(session, 3.0)
    t = np.concatenate([b.t_s for b in batches])
    assert np.all(np.diff(t) > 0)
    # t_s spans what the batches cover: 1 ms a sample, no second won or lost
    assert t[-1] - t[0] == pytest.approx((len(t) - 1) * 1e-3, abs=1e-4)
    assert session.counters.clock_jumps == 1
    (jumped,) = [b for b in batches if b.clock_jump_s]
    assert jumped.clock_jump_s == pytest.approx(by_s, abs=0.002)


def _as_version_1(frame: bytes) -> bytes:
    body = bytearray(cobs.decode(frame[:-1])[:-2])
    body[0] = 1
    crc = binascii.crc_hqx(bytes(body), 0xFFFF).to_bytes(2, "little")
    return cobs.encode(bytes(body) + crc) + b"\x00"


@pytest.mark.virtual_time
async def test_a_version_1_device_is_refused_with_a_clear_message():
    link = open_link("sim://ball", speed=SPEED)
    deliver = link._from_device
    link._from_device = lambda frame: deliver(_as_version_1(frame))
    with pytest.raises(DeviceRefusedError, match="protocol version 1; this massagectl speaks"):
        async with DeviceSession(link):
            pass
    assert link.state.value == "closed"


@pytest.mark.virtual_time
async def test_the_clock_jump_is_an_event_of_the_supervised_run():
    from device.control.supervised import SupervisedSession
    from dsp.events import ClockJump
    from dsp.pipeline import ForcePipeline
    from dsp.zones import get_zone

    link = open_link("sim://ball", speed=SPEED)
    _shift_clock(link.firmware, 0.5, -1_000_000)
    async with DeviceSession(link) as session:
        live = SupervisedSession(
            session, ForcePipeline(session.rate_hz, session.calibration, get_zone("upper_back"))
        )
        events = []
        live.add_listener(events.append)
        live.start()
        with contextlib.suppress(TimeoutError):
            async with session.timebase.timeout(1.5):
                while True:
                    await live.changed.wait()
                    live.changed.clear()
        await live.close()
    (jump,) = [e for e in events if isinstance(e, ClockJump)]
    assert jump.jump_s == pytest.approx(-1.0, abs=0.002) and jump.count == 1


@pytest.mark.virtual_time
async def test_a_lost_stop_is_sent_again_within_50_ms():
    """A Stop lost on the way costs one resend of 50 ms of motor, not 0.2 s (the resend
    interval of other commands): Stop has its own, 20 in the same 1 s budget."""
    to_device = FrameFaults()
    link = noisy(open_link("sim://ball", speed=SPEED), FrameFaults(), to_device)
    fw = link.firmware
    async with DeviceSession(link) as session:
        await session.set_limit(40.0)
        await session.vibrate(50.0, 100)
        to_device.cut = True
        (on,) = [e for e in fw.events if e.name == "vibrate"]
        await session.stop_motor()  # lost, right after the Vibrate
        await asyncio.sleep(0.02)  # loop seconds (the simulator runs SPEED times faster)
        to_device.cut = False
        await asyncio.sleep(0.2)
        (off,) = [e for e in fw.events if e.name == "motor_off"]
        assert off.t_s - on.t_s <= (0.05 + 0.002) * SPEED  # simulator seconds
        assert session.counters.commands_retried == 1
        assert session.counters.commands_unanswered == 0
