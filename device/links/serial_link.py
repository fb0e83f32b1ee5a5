"""Serial link (pyserial) with the serial framing. Stale input is flushed at open.

Reading uses the event loop's reader on the port's file descriptor (POSIX), so no thread.
pyserial errors are translated into the massagectl tree here.
"""

from __future__ import annotations

import asyncio
import errno

import serial

from device.errors import LinkClosedError, LinkError, PortNotFoundError
from device.links.base import FramedLink
from firmware_bridge.framing import encode_frame
from firmware_bridge.messages import Message

BAUDRATE = 921_600
WRITE_TIMEOUT_S = 0.5


class SerialLink(FramedLink):
    kind = "serial"

    def __init__(self, url, *, timebase=None) -> None:
        super().__init__(url, timebase=timebase)
        self._port: serial.Serial | None = None

    async def _open(self) -> None:
        path = self.url.target
        try:
            self._port = serial.Serial(
                path, BAUDRATE, timeout=0, write_timeout=WRITE_TIMEOUT_S, exclusive=True
            )
        except serial.SerialException as exc:
            if exc.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO) or "No such file" in str(exc):
                raise PortNotFoundError(f"{path}: no such serial port") from exc
            raise LinkError(f"{path}: cannot open: {exc}") from exc
        self._port.reset_input_buffer()
        asyncio.get_running_loop().add_reader(self._port.fileno(), self._readable)

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
        if self._port is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._port.fileno())
            except (RuntimeError, ValueError, OSError):
                pass

    async def _send(self, msg: Message) -> None:
        port = self._port
        if port is None:
            raise LinkClosedError(f"{self.url.target}: port is not open")
        try:
            port.write(encode_frame(msg))
        except serial.SerialTimeoutException as exc:
            raise LinkError(f"{self.url.target}: write timed out") from exc
        except (serial.SerialException, OSError) as exc:
            self._fail(exc)
            raise LinkClosedError(f"{self.url.target}: {exc}") from exc

    async def _close(self) -> None:
        self._stop_reading()
        if self._port is not None:
            self._port.close()
            self._port = None
