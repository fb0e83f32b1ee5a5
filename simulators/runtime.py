"""Runs a simulated firmware in real time (optionally ``speed`` times faster) and connects it
to a byte transport through the serial framing. Transports (a pseudo-terminal, an in-process
pipe) give it ``write`` and call ``feed`` with what the host sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from firmware_bridge.framing import FrameDecoder, encode_frame
from firmware_bridge.messages import HEADER, Message
from simulators.faults import LinkFaults
from simulators.firmware import DEADMAN_S, Firmware, SimEvent, undecodable_code

#: How often the simulator wakes up to produce samples (real seconds).
TICK_S = 0.002
#: Under ``speed`` K the firmware's timers run K times faster, but the host's scheduling
#: jitter does not shrink: the deadman is never shorter than this much real time. At K <= 5
#: it stays exactly DEADMAN_S of simulator time.
DEADMAN_REAL_FLOOR_S = 0.1


def compress_time(firmware: Firmware, speed: float) -> SimClock:
    """A simulator clock running ``speed`` times real time, with the firmware's deadman
    stretched to at least DEADMAN_REAL_FLOOR_S of real time."""
    clock = SimClock(speed)
    firmware.deadman_s = max(DEADMAN_S, DEADMAN_REAL_FLOOR_S * speed)
    return clock


class Clock(Protocol):
    """What a simulator runs on: ``now_s()`` reads simulator seconds; ``advance()`` steps
    the clock to now (once per simulator step) and returns the new time."""

    def now_s(self) -> float: ...

    def advance(self) -> float: ...


class SimClock:
    """Simulator time on its own: real monotonic time since start, times ``speed`` (a
    simulator in its own process: ``sim serial``, ``sim ble``)."""

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._t0 = time.monotonic()

    def now_s(self) -> float:
        return (time.monotonic() - self._t0) * self.speed

    def advance(self) -> float:
        return self.now_s()


class SimulatorRunner:
    """A firmware on a framed byte stream.

    ``write(frame_bytes) -> bool`` sends one frame; it returns False when the frame was
    dropped (nobody reading), which is counted, never waited on.
    ``on_event`` is called with each firmware event (for logs and tests).
    ``clock``: a clock the host shares (an in-process ``sim://`` link hands in its time base,
    which this runner steps); without one, the runner keeps its own real-time clock at
    ``speed`` and stretches the deadman to a real-time floor (``compress_time``).
    The scenario's link faults (``simulators.faults.LinkFaults``: stall, corrupt, duplicate,
    reorder, drop) apply to the frames both ways; at a ``disconnect`` nothing passes any more
    and ``on_disconnect`` is called once (the transport closes).
    """

    def __init__(
        self,
        firmware: Firmware,
        write: Callable[[bytes], bool],
        *,
        speed: float = 1.0,
        on_event: Callable[[SimEvent], None] | None = None,
        clock: Clock | None = None,
        on_disconnect: Callable[[], None] | None = None,
    ) -> None:
        self.firmware = firmware
        self.clock: Clock = compress_time(firmware, speed) if clock is None else clock
        self._write = write
        self._on_event = on_event
        self._decoder = FrameDecoder()
        self._task: asyncio.Task | None = None
        self.frames_sent = 0
        self.frames_dropped = 0
        scenario = firmware.scenario
        self.link_faults = LinkFaults(scenario.faults, seed=scenario.seed)
        self._on_disconnect = on_disconnect
        self.disconnected = False

    @property
    def decoder_stats(self):
        return self._decoder.stats

    def feed(self, data: bytes) -> None:
        """Bytes from the host: decode, let the firmware answer at the current time."""
        t_s = self.clock.now_s()
        if self.link_faults:
            data = self.link_faults.to_device(data, t_s)
            if self._check_disconnect(t_s):
                return
        self._feed_now(data, t_s)

    def _feed_now(self, data: bytes, t_s: float) -> None:
        messages = self._decoder.feed(data)
        rejected, self._decoder.rejected = self._decoder.rejected, []
        for payload, _why in rejected:
            if len(payload) >= HEADER.size:
                _v, mtype, seq = HEADER.unpack_from(payload)
                code = undecodable_code(payload)
                self._send_all(self.firmware.nack_undecodable(seq, mtype, code))
        for msg in messages:
            self._send_all(self.firmware.handle(msg, t_s))
        self._flush_events()

    def _send_all(self, messages: list[Message]) -> None:
        for msg in messages:
            self._write_frame(encode_frame(msg))

    def _write_frame(self, frame: bytes) -> None:
        if self.link_faults:
            frame = self.link_faults.to_host(frame, self.firmware.t_s)
            if not frame:
                return
        if self._write(frame):
            self.frames_sent += 1
        else:
            self.frames_dropped += 1

    def _check_disconnect(self, t_s: float) -> bool:
        if not self.link_faults.disconnected(t_s):
            return False
        if not self.disconnected:
            self.disconnected = True
            self.firmware.events.append(SimEvent(t_s, "disconnect"))
            if self._on_disconnect is not None:
                self._on_disconnect()
        return True

    def step(self) -> None:
        """Advance the firmware to now and send what it produced."""
        t_s = self.clock.advance()
        self._send_all(self.firmware.advance(t_s))
        if self.link_faults:
            late_in = self.link_faults.release("to_device", t_s)
            if late_in:
                self._feed_now(late_in, t_s)
            late_out = self.link_faults.release("to_host", t_s)
            if late_out and self._write(late_out):
                self.frames_sent += 1
            self._check_disconnect(t_s)
        self._flush_events()

    def _flush_events(self) -> None:
        if self._on_event is None:
            return
        for event in self.firmware.take_events():
            self._on_event(event)

    async def run(self) -> None:
        """Step forever (until cancelled)."""
        while True:
            self.step()
            await asyncio.sleep(TICK_S)

    def start(self) -> asyncio.Task:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="simulator")
        return self._task

    async def stop(self) -> None:
        """Stop stepping. A stepping task that already died is not raised again here: its
        owner watches the task ``start()`` returned and reports the failure (the ``sim://``
        link ends with it, ``sim serial`` exits with it)."""
        task, self._task = self._task, None
        if task is None:
            return
        if task.done():
            if not task.cancelled():
                task.exception()  # retrieved: reported by the task's owner
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


async def cancel_and_wait(tasks: list[asyncio.Task]) -> None:
    """Cancel ``tasks`` and wait until each has ended (a peripheral's stop)."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        try:
            await task
        except asyncio.CancelledError:
            pass


class PeripheralTasks:
    """The tasks of a simulated peripheral (``sim ble`` ball, sensors): its tick
    (``tick_task``, which the peripheral starts) and background tasks started with
    ``_spawn``. A background task that fails ends the tick and is kept as ``failure``
    (never silent); after ``stop`` nothing more starts."""

    def __init__(self) -> None:
        self._tick_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._stopped = False
        #: the exception that ended a background task of the peripheral, if any
        self.failure: BaseException | None = None

    @property
    def tick_task(self) -> asyncio.Task | None:
        return self._tick_task

    def _spawn(self, coro, name: str) -> None:
        if self._stopped:  # a disconnection seen while stopping: nothing more to start
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            if self._tick_task is not None and not self._tick_task.done():
                self._tick_task.cancel(f"peripheral task {task.get_name()} failed")
            self.failure = task.exception()

    async def stop(self) -> None:
        self._stopped = True
        await cancel_and_wait([t for t in (self._tick_task, *self._tasks) if t is not None])
        self._tick_task = None
