"""Serial link (pyserial) with the serial framing. Stale input is flushed at open.

Reading and writing use the event loop's reader and writer on the port's file descriptor
(POSIX), so no thread, and nothing here blocks the event loop (a stalled port used to hold
it for up to 0.5 s per write, with a Stop and the supervisor's tick waiting behind):

- ``send`` never waits on the port. A frame goes to the non-blocking descriptor with
  ``os.write``; what the OS does not take waits in an outgoing queue that the loop's writer
  flushes when the port can take more.
- Stop goes first. A Stop sent while frames wait drops the queued Keepalive and Vibrate
  frames (counted in ``stats.frames_dropped_for_stop``; a Vibrate's Ack then never comes)
  and an earlier queued Stop, and goes ahead of everything else, right after the rest of a
  frame the OS took only part of (so the byte stream stays valid). Other commands stay
  queued, in order, after it.
- The queue holds at most ``MAX_QUEUED_FRAMES`` whole frames. When it is full the oldest
  Keepalive is dropped, else the oldest frame that is not a Stop
  (``stats.frames_dropped_overflow``).
- A port that takes no byte for ``STALL_TIMEOUT_S`` while frames wait fails the link with
  ``LinkClosedError``: by then the device's keepalive deadman (500 ms) has stopped its motor.
  ``close`` gives pending frames (the session's closing Stop) ``CLOSE_DRAIN_S`` to go out.

pyserial errors are translated into the massagectl tree here.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections import deque

import serial

from device.errors import LinkClosedError, LinkError, PortNotFoundError
from device.links.base import FramedLink
from firmware_bridge.framing import encode_frame
from firmware_bridge.messages import Keepalive, Message, Stop, Vibrate

BAUDRATE = 921_600
#: Whole frames the outgoing queue holds at most (a frame is at most ~250 bytes).
MAX_QUEUED_FRAMES = 32
#: Frames wait and the port takes no byte for this long: the link fails.
STALL_TIMEOUT_S = 1.0
#: At close, how long pending frames may take to go out before they are dropped.
CLOSE_DRAIN_S = 0.5
#: Queued frames a Stop makes obsolete.
_SUPERSEDED_BY_STOP = (Keepalive, Vibrate, Stop)


class SerialLink(FramedLink):
    kind = "serial"

    def __init__(self, url, *, timebase=None) -> None:
        super().__init__(url, timebase=timebase)
        self._port: serial.Serial | None = None
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: the rest of a frame the OS took only part of: it goes out before anything else
        self._partial: memoryview | None = None
        #: whole frames not written yet, oldest first: (message type, frame)
        self._queue: deque[tuple[type, bytes]] = deque()
        self._writer_on = False
        #: loop time of the last progress while frames wait (None: nothing waits)
        self._waiting_since: float | None = None
        self._stall_timer: asyncio.TimerHandle | None = None
        self._drained = asyncio.Event()
        self._drained.set()
        self.stall_timeout_s = STALL_TIMEOUT_S

    @property
    def pending_frames(self) -> int:
        """Frames not completely written to the port yet (a partly written one counts)."""
        return len(self._queue) + (self._partial is not None)

    async def _open(self) -> None:
        path = self.url.target
        try:
            self._port = serial.Serial(path, BAUDRATE, timeout=0, exclusive=True)
        except serial.SerialException as exc:
            if exc.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO) or "No such file" in str(exc):
                raise PortNotFoundError(f"{path}: no such serial port") from exc
            raise LinkError(f"{path}: cannot open: {exc}") from exc
        self._port.reset_input_buffer()
        self._fd = self._port.fileno()
        os.set_blocking(self._fd, False)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        port = self._port
        if port is None:
            return
        try:
            data = port.read(port.in_waiting or 1)
        except (serial.SerialException, OSError) as exc:
            self._stop_reading()
            self._fail(LinkClosedError(f"{self.url.target}: {exc}"))
            return
        if data:
            self._feed(data)

    def _stop_reading(self) -> None:
        if self._fd is not None and self._loop is not None:
            try:
                self._loop.remove_reader(self._fd)
            except (RuntimeError, ValueError, OSError):
                pass

    # ---- writing --------------------------------------------------------------------------

    async def _send(self, msg: Message) -> None:
        frame = encode_frame(msg)
        if isinstance(msg, Stop):
            self._put_stop_first(frame)
        else:
            self._queue.append((type(msg), frame))
            self._bound_queue()
        self._flush()
        if self._error is not None:
            raise LinkClosedError(f"{self.url.target}: {self._error}") from self._error

    def _put_stop_first(self, frame: bytes) -> None:
        kept: deque[tuple[type, bytes]] = deque([(Stop, frame)])
        for kind, data in self._queue:
            if kind in _SUPERSEDED_BY_STOP:
                if kind is not Stop:  # an earlier Stop is replaced by this one
                    self.stats.frames_dropped_for_stop += 1
            else:
                kept.append((kind, data))
        self._queue = kept

    def _bound_queue(self) -> None:
        while len(self._queue) > MAX_QUEUED_FRAMES:
            kinds = [kind for kind, _ in self._queue]
            victim = kinds.index(Keepalive) if Keepalive in kinds else None
            if victim is None:  # at most one Stop is queued: there is another frame
                victim = next(i for i, kind in enumerate(kinds) if kind is not Stop)
            del self._queue[victim]
            self.stats.frames_dropped_overflow += 1

    def _io(self) -> tuple[asyncio.AbstractEventLoop, int]:
        """The loop and descriptor of the open port (LinkClosedError when it is not open)."""
        if self._loop is None or self._fd is None:
            raise LinkClosedError(f"{self.url.target}: port is not open")
        return self._loop, self._fd

    def _write_some(self, data: memoryview) -> int:
        """Write what the OS takes now; 0 when the port would block."""
        _loop, fd = self._io()
        try:
            return os.write(fd, data)
        except BlockingIOError:
            return 0

    def _flush(self) -> None:
        """Write queued frames until the port would block (also the loop's writer)."""
        if self._fd is None or self._error is not None:
            return
        progressed = False
        while self._partial is not None or self._queue:
            data = self._partial if self._partial is not None else memoryview(self._queue[0][1])
            try:
                n = self._write_some(data)
            except OSError as exc:
                self._fail_writes(LinkClosedError(f"{self.url.target}: write failed: {exc}"))
                return
            progressed = progressed or n > 0
            if self._partial is None and n > 0:
                self._queue.popleft()
            if n >= len(data):
                self._partial = None
                continue
            if n > 0:
                self._partial = data[n:]
            break
        self._watch(progressed)

    def _watch(self, progressed: bool) -> None:
        """Keep the loop's writer and the stall timer in line with what is pending."""
        if self.pending_frames == 0:
            self._stop_writing()
            return
        loop, fd = self._io()
        self._drained.clear()
        if not self._writer_on:
            loop.add_writer(fd, self._flush)
            self._writer_on = True
        if self._waiting_since is None or progressed:
            self._waiting_since = loop.time()
        if self._stall_timer is None:
            self._stall_timer = loop.call_later(self.stall_timeout_s, self._check_stall)

    def _check_stall(self) -> None:
        self._stall_timer = None
        if self._waiting_since is None or self._error is not None:
            return
        loop, _fd = self._io()
        waited = loop.time() - self._waiting_since
        if waited < self.stall_timeout_s:
            self._stall_timer = loop.call_later(self.stall_timeout_s - waited, self._check_stall)
            return
        self._fail_writes(
            LinkClosedError(
                f"{self.url.target}: port stalled: nothing written for {waited:.1f} s "
                f"({self.pending_frames} frame(s) waiting)"
            )
        )

    def _stop_writing(self) -> None:
        if self._writer_on and self._fd is not None and self._loop is not None:
            try:
                self._loop.remove_writer(self._fd)
            except (RuntimeError, ValueError, OSError):
                pass
        self._writer_on = False
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        self._waiting_since = None
        self._drained.set()

    def _fail_writes(self, exc: LinkClosedError) -> None:
        self._partial = None
        self._queue.clear()
        self._stop_writing()
        self._stop_reading()
        self._fail(exc)

    async def _close(self) -> None:
        if self.pending_frames and self._error is None:
            try:
                await asyncio.wait_for(self._drained.wait(), CLOSE_DRAIN_S)
            except TimeoutError:
                pass
        self._partial = None
        self._queue.clear()
        self._stop_writing()
        self._stop_reading()
        if self._port is not None:
            self._port.close()
            self._port = None
            self._fd = None
