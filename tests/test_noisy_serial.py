"""A noisy serial cable on real pseudo-terminals: ``massagectl sim serial`` in its own process,
``simulators.faults.PtyRelay`` corrupting frames both ways, a host session on the relay's pty.

The short form (3 s, 5 % of frames corrupted each way, seeded) runs in
``make test``; the 60 s run at 0.2 % is marked ``long`` and runs under
``HYPOTHESIS_PROFILE=long`` (``make test-long``) or ``MASSAGECTL_LONG=1``.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from device.errors import LinkClosedError
from device.links import open_link
from device.session.device_session import DeviceSession
from simulators.faults import FrameFaults, PtyRelay
from tests.helpers import MASSAGECTL, LineReader, person_screening, spawn, stop


@pytest.fixture
def simulator():
    """A ``massagectl sim serial`` process; yields (pty path, reader)."""
    proc = spawn(MASSAGECTL, "sim", "serial")
    reader = LineReader(proc)
    try:
        url = reader.wait_for(r"^READY serial://(\S+)$").group(1)
        yield url, reader
    finally:
        stop(proc)


async def noisy_session(port: str, sim: LineReader, *, corrupt: float, duration_s: float, seed):
    """Commands and a stream for ``duration_s`` over a relay corrupting ``corrupt`` of the
    frames each way; then the relay is cut while the motor runs. Returns the figures."""
    to_host = FrameFaults(corrupt=corrupt, seed=seed)
    to_device = FrameFaults(corrupt=corrupt, seed=seed + 1)
    relay = PtyRelay(port, to_host, to_device)
    relay.start()
    commands = 0
    try:
        async with DeviceSession(open_link(f"serial://{relay.path}")) as session:
            session.clear_for_vibration(person_screening())
            batches = 0

            async def consume():
                nonlocal batches
                async for _batch in session.batches():
                    batches += 1

            reader = asyncio.get_running_loop().create_task(consume())
            end = time.monotonic() + duration_s
            level = 0
            while time.monotonic() < end:
                # every command must be answered in the end: any failure raises here
                await session.set_limit(40.0)
                level = level % 90 + 10
                await session.vibrate(level, 100)
                await session.tare()
                commands += 3
                await asyncio.sleep(0.05)
            assert not reader.done()  # the stream is still on
            # the cable is cut with the motor on: the firmware's deadman stops it
            await session.vibrate(50, 100)
            commands += 1
            relay.cut()
            m = await asyncio.to_thread(
                sim.wait_for, r"EVENT t_s=(\S+) deadman last_command_s=(\S+)", 10
            )
            reader.cancel()
            try:
                await reader
            except (asyncio.CancelledError, LinkClosedError):
                pass
            figures = {
                "commands": commands,
                "batches": batches,
                "counters": session.counters,
                "host_crc_errors": session.link.stats.crc_errors,
                "frames_corrupted": (to_host.counts.corrupted, to_device.counts.corrupted),
                "frames_relayed": (to_host.counts.frames, to_device.counts.frames),
                "deadman_s": float(m.group(1)) - float(m.group(2)),
            }
    finally:
        relay.close()
    return figures


def _check(figures: dict) -> None:
    c = figures["counters"]
    assert c.commands_unanswered == 0
    assert figures["host_crc_errors"] > 0
    assert all(n > 0 for n in figures["frames_corrupted"]), (
        figures["frames_corrupted"],
        figures["frames_relayed"],
    )
    assert figures["deadman_s"] <= 0.5 + 0.01, figures


async def test_a_noisy_cable_ends_no_session(simulator):
    port, sim = simulator
    figures = await noisy_session(port, sim, corrupt=0.05, duration_s=3.0, seed=11)
    _check(figures)
    assert figures["counters"].commands_retried > 0
    assert "duplicate" in "\n".join(sim.lines)  # a retry the firmware had already acted on


@pytest.mark.long  # 60 s
@pytest.mark.timeout(180)
async def test_sixty_seconds_at_0_2_percent_corruption(simulator):
    port, sim = simulator
    figures = await noisy_session(port, sim, corrupt=0.002, duration_s=60.0, seed=20)
    print("FIGURES", figures)
    _check(figures)
