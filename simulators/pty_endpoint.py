"""A simulated device on a real pseudo-terminal (Linux, macOS).

The slave side is set raw before its path is announced (a fresh pty echoes). The simulator
keeps the slave open itself, so a host that closes or dies does not tear the pty down; writes
to the master are non-blocking, and a frame that does not fit (nobody reading) is dropped and
counted, never waited on.
"""

from __future__ import annotations

import asyncio
import errno
import os
import tty

from simulators.runtime import SimulatorRunner


class PtyEndpoint:
    def __init__(self) -> None:
        self.master_fd, self.slave_fd = os.openpty()
        tty.setraw(self.slave_fd)
        os.set_blocking(self.master_fd, False)
        self.path = os.ttyname(self.slave_fd)
        self.runner: SimulatorRunner | None = None
        self.bytes_dropped = 0

    def write(self, frame: bytes) -> bool:
        if self.master_fd < 0:
            return False
        try:
            n = os.write(self.master_fd, frame)
        except BlockingIOError:
            self.bytes_dropped += len(frame)
            return False
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EAGAIN):
                self.bytes_dropped += len(frame)
                return False
            raise
        if n < len(frame):
            # A partial frame: the rest is lost; the host resynchronises at the next 0x00.
            self.bytes_dropped += len(frame) - n
            return False
        return True

    def attach(self, runner: SimulatorRunner) -> None:
        self.runner = runner
        asyncio.get_running_loop().add_reader(self.master_fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.master_fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:
                return
            raise
        if data and self.runner is not None:
            self.runner.feed(data)

    def close(self) -> None:
        """Close both ends (safe twice)."""
        if self.master_fd < 0:
            return
        try:
            asyncio.get_running_loop().remove_reader(self.master_fd)
        except RuntimeError:
            pass
        for fd in (self.master_fd, self.slave_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.master_fd = self.slave_fd = -1
