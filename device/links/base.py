"""The link contract: open, send a message, iterate received messages, close.

A link is an async context manager; closing twice is safe; a closed link cannot be
reopened. When the transport fails, iteration raises ``LinkClosedError`` (the cause chained),
and ``send`` raises it too: a lost link is never silent.
"""

from __future__ import annotations

import asyncio
import enum
import weakref
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass

from device.errors import LinkClosedError
from device.timebase import TimeBase
from device.urls import DeviceUrl
from firmware_bridge.messages import MAX_SAMPLES_PER_BATCH, Message


class LinkState(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


@dataclass
class LinkStats:
    messages_received: int = 0
    messages_sent: int = 0
    crc_errors: int = 0
    bad_frames: int = 0
    dropped_bytes: int = 0
    #: queued, unsent Keepalive/Vibrate frames a Stop made obsolete (serial: Stop goes first)
    frames_dropped_for_stop: int = 0
    #: unsent frames dropped because the outgoing queue was full (a stalled port)
    frames_dropped_overflow: int = 0
    #: messages of another protocol version (a version 1 device), and the last version seen
    wrong_version: int = 0
    last_wrong_version: int | None = None


_CLOSED = object()

#: Every link that is open now (weakly held): for diagnostics and for the test suite's check
#: that no test leaves a link open.
OPEN_LINKS: weakref.WeakSet[Link] = weakref.WeakSet()


class Link(ABC):
    """Base of every transport. Subclasses implement ``_open``, ``_send`` and ``_close`` and
    call ``_deliver(msg)`` for each message received and ``_fail(exc)`` when the transport
    dies."""

    #: "serial", "ble", "sim" or "replay"
    kind: str = "?"
    #: The most ForceBatch samples one message can carry on this transport (BLE: set from the
    #: negotiated MTU once open). The session asks for no more than this.
    max_samples_per_batch: int = MAX_SAMPLES_PER_BATCH

    def __init__(self, url: DeviceUrl, *, timebase: TimeBase | None = None) -> None:
        self.url = url
        #: The run's time base (``device.timebase``): the session and everything above it
        #: take it from here. Built from the URL when none is handed in.
        self.timebase = timebase if timebase is not None else TimeBase.for_url(url)
        self.state = LinkState.UNOPENED
        self.stats = LinkStats()
        self._inbox: asyncio.Queue = asyncio.Queue()
        self._error: BaseException | None = None

    @property
    def is_simulated(self) -> bool:
        return self.url.is_simulated

    def announce_step(self, step: dict) -> None:
        """Tell a simulated person which step starts now (plain data). Real devices have no
        one to tell: a no-op everywhere but ``sim://`` with a scripted user."""
        return None

    async def open(self) -> None:
        if self.state is LinkState.CLOSED:
            raise LinkClosedError(f"{self.url}: link was closed; open a new one")
        if self.state is LinkState.OPEN:
            return
        await self._open()
        self.state = LinkState.OPEN
        OPEN_LINKS.add(self)

    async def send(self, msg: Message) -> None:
        if self.state is not LinkState.OPEN or self._error is not None:
            raise LinkClosedError(f"{self.url}: link is not open") from self._error
        await self._send(msg)
        self.stats.messages_sent += 1

    async def close(self) -> None:
        if self.state is LinkState.CLOSED:
            return
        was_open = self.state is LinkState.OPEN
        self.state = LinkState.CLOSED
        OPEN_LINKS.discard(self)
        if was_open:
            await self._close()
        self._inbox.put_nowait(_CLOSED)

    async def __aenter__(self) -> Link:
        await self.open()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Message]:
        while True:
            item = await self._inbox.get()
            if item is _CLOSED:
                if self._error is not None:
                    raise LinkClosedError(f"{self.url}: {self._error}") from self._error
                return
            yield item

    async def receive(self) -> Message:
        """The next message; raises LinkClosedError when the link ends."""
        async for msg in self:
            return msg
        raise LinkClosedError(f"{self.url}: link closed")

    # ---- for subclasses -------------------------------------------------------------------

    def _deliver(self, msg: Message) -> None:
        self.stats.messages_received += 1
        self._inbox.put_nowait(msg)

    def _fail(self, exc: BaseException) -> None:
        """The transport died: iteration ends with LinkClosedError(from exc)."""
        if self._error is None:
            self._error = exc
            self._inbox.put_nowait(_CLOSED)

    @abstractmethod
    async def _open(self) -> None: ...

    @abstractmethod
    async def _send(self, msg: Message) -> None: ...

    @abstractmethod
    async def _close(self) -> None: ...


class FramedLink(Link):
    """A link over a byte stream with serial framing (COBS + CRC)."""

    def __init__(self, url: DeviceUrl, *, timebase: TimeBase | None = None) -> None:
        super().__init__(url, timebase=timebase)
        from firmware_bridge.framing import FrameDecoder

        self._decoder = FrameDecoder()

    def _feed(self, data: bytes) -> None:
        for msg in self._decoder.feed(data):
            self._deliver(msg)
        s = self._decoder.stats
        self.stats.crc_errors = s.crc_errors
        self.stats.bad_frames = s.bad_frames
        self.stats.dropped_bytes = s.dropped_bytes
        self.stats.wrong_version = s.wrong_version
        self.stats.last_wrong_version = s.last_wrong_version
