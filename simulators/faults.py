"""Fault injection on a framed byte stream: corrupt, drop, duplicate and reorder frames, or
cut the link, with a seeded random generator (a run with the same seed and the same frames
makes the same faults).

``FrameFaults`` is pure: ``frames(data)`` takes bytes of one direction of a serial stream
(any chunking) and returns the bytes to pass on. ``PtyRelay`` puts two of them (device ->
host, host -> device) between a serial port (``massagectl sim serial``'s pty) and a fresh
pseudo-terminal of its own that a host opens instead: a noisy cable, on real ptys.
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import tty
from dataclasses import dataclass

DELIMITER = 0


@dataclass
class FaultCounts:
    frames: int = 0
    corrupted: int = 0
    dropped: int = 0
    duplicated: int = 0
    swapped: int = 0


class FrameFaults:
    """Per-frame faults on one direction of a serial stream (frames end at 0x00).

    ``corrupt``: probability that a frame gets one byte flipped (never its delimiter, so the
    receiver loses this frame only); ``drop``, ``duplicate``: probabilities that a frame is
    lost or sent twice; ``swap``: probability that a frame is held back and sent after the
    next one. ``cut``: when True, nothing passes (a link that is gone)."""

    def __init__(
        self,
        *,
        corrupt: float = 0.0,
        drop: float = 0.0,
        duplicate: float = 0.0,
        swap: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.corrupt = corrupt
        self.drop = drop
        self.duplicate = duplicate
        self.swap = swap
        self.cut = False
        self.counts = FaultCounts()
        self._rng = random.Random(seed)
        self._partial = bytearray()
        self._held: bytes | None = None

    def frames(self, data: bytes) -> bytes:
        """The bytes to pass on for ``data`` (whole frames only; a partial frame waits)."""
        out = bytearray()
        start = 0
        while True:
            end = data.find(DELIMITER, start)
            if end < 0:
                self._partial += data[start:]
                return bytes(out)
            frame = bytes(self._partial + data[start : end + 1])
            self._partial.clear()
            start = end + 1
            out += self._one(frame)

    def _one(self, frame: bytes) -> bytes:
        if self.cut:
            return b""
        self.counts.frames += 1
        rng = self._rng
        if rng.random() < self.drop:
            self.counts.dropped += 1
            return b""
        if len(frame) > 1 and rng.random() < self.corrupt:
            b = bytearray(frame)
            i = rng.randrange(len(b) - 1)
            flip = rng.randrange(1, 256)
            if b[i] ^ flip == 0:  # a new 0x00 would split the frame: flip other bits
                flip ^= 0xFF
            b[i] ^= flip
            frame = bytes(b)
            self.counts.corrupted += 1
        if rng.random() < self.duplicate:
            self.counts.duplicated += 1
            frame = frame + frame
        if self._held is not None:
            held, self._held = self._held, None
            return frame + held
        if rng.random() < self.swap:
            self.counts.swapped += 1
            self._held = frame
            return b""
        return frame


class PtyRelay:
    """A pseudo-terminal whose other end is relayed to ``port_path`` (a serial port or pty)
    through ``to_host`` and ``to_device`` (FrameFaults). Open ``path`` as the host's port.
    Runs on the event loop (``start``/``close``); writes are non-blocking, and what a side
    cannot take is dropped (as a cable that nobody reads)."""

    def __init__(self, port_path: str, to_host: FrameFaults, to_device: FrameFaults) -> None:
        self.to_host = to_host
        self.to_device = to_device
        self._port_fd = os.open(port_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self._port_fd)
        self._master_fd, self._slave_fd = os.openpty()
        tty.setraw(self._slave_fd)
        os.set_blocking(self._master_fd, False)
        self.path = os.ttyname(self._slave_fd)
        self.bytes_dropped = 0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self._port_fd, self._pump, self._port_fd, self._master_fd, self.to_host)
        loop.add_reader(self._master_fd, self._pump, self._master_fd, self._port_fd, self.to_device)

    def cut(self, cut: bool = True) -> None:
        """Nothing passes either way (``cut(False)``: the link is back)."""
        self.to_host.cut = self.to_device.cut = cut

    def _pump(self, src: int, dst: int, faults: FrameFaults) -> None:
        try:
            data = os.read(src, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno == errno.EIO:  # the other side closed: wait for it to reopen
                return
            raise
        out = faults.frames(data)
        if not out:
            return
        try:
            n = os.write(dst, out)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            n = 0
        self.bytes_dropped += len(out) - n

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for fd in (self._port_fd, self._master_fd):
            loop.remove_reader(fd)
        for fd in (self._port_fd, self._master_fd, self._slave_fd):
            try:
                os.close(fd)
            except OSError:
                pass
