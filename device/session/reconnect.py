"""A device session that survives a dropped BLE link: pause, retry with backoff, resume.

``ReconnectingSession`` stands in for a ``DeviceSession`` (same attributes and commands).
When the link drops without our asking:

1. *pause*: link listeners hear ``LinkEvent("lost")`` at once (the supervised loop stops
   vibration there and publishes one ``link_lost`` event; the firmware's 500 ms keepalive
   deadman has already stopped, or is about to stop, the motor);
2. *retry*: a new link from the same URL (``open_link``), a new handshake (Hello ->
   DeviceInfo, SetStream) with the same calibration and the same device clock (device time
   runs on through the gap), then ``Stop`` and the last ``SetLimit`` again; attempts are
   spaced by ``Backoff`` (0.2 s doubling to 2 s, with jitter, real time);
3. *resume*: ``LinkEvent("restored")`` with the gap's duration and the attempts it took;
   batches flow again from ``batches()``. Each new inner session starts its sequence check
   afresh, so the batches the ball sent into the void are not counted as a sequence gap;
   the outage is recorded as a gap of its own (``gaps``);
4. *give up*: no link within ``reconnect_timeout_s`` (default 30 s) of the loss ->
   ``batches()`` raises ``LinkClosedError`` saying so, and the session ends as it would
   without reconnecting.

Why not bleak-retry-connector: it retries ``BleakClient.connect`` on a ``BLEDevice`` and
its value is in BlueZ specifics (D-Bus adapter state, stale connection slots, service
caching through ``bluetooth-adapters``/``dbus-fast``). Here the unit to retry is the whole
link (scan, connect, encrypt, GATT set-up) and the session handshake on top, on any bleak
backend (our Bumble one included), so a small backoff loop is simpler and fits.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, fields

from device.errors import DeviceTimeoutError, LinkClosedError, LinkError, MassagectlError
from device.links import open_link
from device.links.base import Link
from device.session.device_session import (
    DeviceSession,
    SampleBatch,
    SessionCounters,
)
from device.timebase import TimeBase
from device.urls import DeviceUrl, parse_url
from dsp.calibration import Calibration
from firmware_bridge.messages import Message

#: How long a lost device may take to come back before the session ends (seconds).
DEFAULT_RECONNECT_TIMEOUT_S = 30.0
#: How long each attempt looks for the device advertising (seconds).
ATTEMPT_SCAN_TIMEOUT_S = 2.0


@dataclass
class Backoff:
    """Delays between attempts: ``first_s`` doubling up to ``max_s``, each +/- ``jitter``
    (a fraction), so that hosts do not retry in lock step. Real seconds."""

    first_s: float = 0.2
    max_s: float = 2.0
    factor: float = 2.0
    jitter: float = 0.1
    rng: random.Random = field(default_factory=random.Random)
    _next_s: float | None = None

    def next_delay_s(self) -> float:
        base = self.first_s if self._next_s is None else self._next_s
        self._next_s = min(self.max_s, base * self.factor)
        return base * (1 + self.jitter * (2 * self.rng.random() - 1))

    def reset(self) -> None:
        self._next_s = None


@dataclass(frozen=True)
class LinkEvent:
    """``kind`` "lost" or "restored"; ``count``: the how-many-th loss of this session;
    ``gap_s``: host seconds from loss to resumed stream (restored only); ``attempts``:
    connection attempts it took; ``error``: what ended the old link."""

    kind: str
    count: int
    error: str = ""
    gap_s: float = 0.0
    attempts: int = 0


@dataclass
class LinkGap:
    """One outage, as recorded in ``ReconnectingSession.gaps``."""

    lost_host_s: float
    error: str
    restored_host_s: float | None = None
    attempts: int = 0
    #: device time of the last batch before the loss and the first after it (seconds)
    last_t_s: float | None = None
    resumed_t_s: float | None = None

    @property
    def duration_s(self) -> float | None:
        if self.restored_host_s is None:
            return None
        return self.restored_host_s - self.lost_host_s


LinkListener = Callable[[LinkEvent], None]


class ReconnectingSession:
    """A ``DeviceSession`` on ``url`` that reconnects (see the module docstring).

    ``link_options`` go to ``open_link`` (``hci=`` for ble://). The first connect is not
    retried: a device that is not there at the start is an error for the user."""

    def __init__(
        self,
        url: str | DeviceUrl,
        *,
        rate_hz: int | None = None,
        samples_per_batch: int | None = None,
        calibration: Calibration | None = None,
        speed: float | None = None,
        reconnect_timeout_s: float = DEFAULT_RECONNECT_TIMEOUT_S,
        backoff: Backoff | None = None,
        link_factory: Callable[[], Link] | None = None,
        **link_options,
    ) -> None:
        self.url = url if isinstance(url, DeviceUrl) else parse_url(url)
        #: one time base for the whole run: every reconnected link keeps it
        self.timebase = TimeBase.for_url(self.url, speed)
        self._link_options = link_options
        self._link_factory = link_factory or (
            lambda: open_link(self.url, timebase=self.timebase, **self._link_options)
        )
        self.reconnect_timeout_s = reconnect_timeout_s
        self.backoff = backoff or Backoff()
        self._session = DeviceSession(
            self._link_factory(),
            rate_hz=rate_hz,
            samples_per_batch=samples_per_batch,
            calibration=calibration,
        )
        self.clock = self._session.clock
        self.gaps: list[LinkGap] = []
        self._listeners: list[LinkListener] = []
        self._past = SessionCounters()
        self._limit_n: float | None = None
        self._paused = False
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._closed = False
        self._last_t_s: float | None = None

    # ---- the DeviceSession face -----------------------------------------------------------

    @property
    def session(self) -> DeviceSession:
        """The inner session on the current link."""
        return self._session

    @property
    def link(self) -> Link:
        return self._session.link

    @property
    def info(self):
        return self._session.info

    @property
    def status(self):
        return self._session.status

    @property
    def has_motor(self) -> bool:
        return self._session.has_motor

    @property
    def calibration(self) -> Calibration | None:
        """The initial calibration (``DeviceSession.calibration``): every new link's session
        starts from the same one; the pipeline keeps the one in use across reconnects."""
        return self._session.calibration

    @property
    def rate_hz(self) -> int:
        return self._session.rate_hz

    @property
    def samples_per_batch(self) -> int:
        return self._session.samples_per_batch

    @property
    def paused(self) -> bool:
        """True while the link is lost and being re-established."""
        return self._paused

    @property
    def reconnects(self) -> int:
        return sum(1 for g in self.gaps if g.restored_host_s is not None)

    @property
    def counters(self) -> SessionCounters:
        """Counters over every link of the session (sequence gaps are per link)."""
        now = self._session.counters
        past = self._past
        return SessionCounters(
            **{f.name: getattr(past, f.name) + getattr(now, f.name) for f in fields(now)}
        )

    def add_link_listener(self, fn: LinkListener) -> None:
        """``fn(LinkEvent)`` when the link is lost and when it is restored."""
        self._listeners.append(fn)

    async def __aenter__(self) -> ReconnectingSession:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def start(self) -> None:
        await self._session.start()

    def clear_for_vibration(self, screening) -> None:
        """As ``DeviceSession.clear_for_vibration``; kept for every reconnected link."""
        self._session.clear_for_vibration(screening)

    @property
    def screening(self):
        return self._session.screening

    async def close(self) -> None:
        """Stop the motor and the stream (if the link works), close. Safe twice."""
        self._closed = True
        await self._session.close()

    # ---- commands -------------------------------------------------------------------------

    async def _ready(self) -> DeviceSession:
        """The inner session, after waiting out a reconnect in progress."""
        if self._paused:
            try:
                await asyncio.wait_for(self._resumed.wait(), self.reconnect_timeout_s)
            except TimeoutError:
                raise LinkClosedError(f"{self.url}: the device did not come back") from None
        return self._session

    async def send(self, msg: Message) -> None:
        await (await self._ready()).send(msg)

    async def command(self, msg: Message, **kw) -> Message:
        return await (await self._ready()).command(msg, **kw)

    async def stop_motor(self) -> None:
        """Stop at once. While the link is down there is nobody to tell: the firmware's
        deadman has stopped the motor, and a Stop goes out first thing on reconnect."""
        if self._paused:
            return
        await self._session.stop_motor()

    async def vibrate(self, intensity_pct: float, frequency_hz: int = 0, **kw) -> None:
        """Vibrate now; refused (LinkClosedError) while the link is down."""
        if self._paused:
            raise LinkClosedError(f"{self.url}: no vibration while the link is down")
        await self._session.vibrate(intensity_pct, frequency_hz, **kw)

    @property
    def plays_patterns(self) -> bool:
        return self._session.plays_patterns

    async def define_pattern(self, *args, **kw) -> None:
        """Store a pattern (version 3); refused while the link is down. A reconnect greets
        the device again, which forgets its table: the owner uploads it again (a new
        ``info``)."""
        if self._paused:
            raise LinkClosedError(f"{self.url}: no pattern upload while the link is down")
        await self._session.define_pattern(*args, **kw)

    async def play_pattern(self, *args, **kw) -> None:
        """Play a stored pattern; refused (LinkClosedError) while the link is down."""
        if self._paused:
            raise LinkClosedError(f"{self.url}: no vibration while the link is down")
        await self._session.play_pattern(*args, **kw)

    async def set_limit(self, limit_n: float) -> None:
        """Set the firmware's hard limit; remembered and set again after a reconnect (while
        the link is down it is only remembered)."""
        self._limit_n = limit_n
        if self._paused:
            return
        await self._session.set_limit(limit_n)

    async def tare(self) -> int:
        return await (await self._ready()).tare()

    # ---- the stream -----------------------------------------------------------------------

    async def batches(self) -> AsyncIterator[SampleBatch]:
        """Force batches as they arrive, across reconnects. Ends with LinkClosedError when
        the device does not come back within ``reconnect_timeout_s``."""
        while True:
            try:
                async for batch in self._session.batches():
                    self._last_t_s = float(batch.t_s[-1])
                    gap = self.gaps[-1] if self.gaps else None
                    if gap is not None and gap.resumed_t_s is None:
                        gap.resumed_t_s = float(batch.t_s[0])
                    yield batch
                return
            except LinkClosedError as exc:
                if self._closed:
                    raise
                await self._reconnect(exc)

    def _emit(self, event: LinkEvent) -> None:
        logging.getLogger("massagectl.session").warning("link %s", event)
        for fn in list(self._listeners):
            fn(event)

    async def _reconnect(self, cause: LinkClosedError) -> None:
        clock = asyncio.get_running_loop().time  # host (loop) seconds, as the timers run
        lost = clock()
        gap = LinkGap(lost, str(cause), last_t_s=self._last_t_s)
        self.gaps.append(gap)
        self._paused = True
        self._resumed.clear()
        self._emit(LinkEvent("lost", len(self.gaps), error=str(cause)))
        old = self._session
        await old.close()  # its link is gone: this only ends its tasks
        c = old.counters
        for f in fields(c):
            setattr(self._past, f.name, getattr(self._past, f.name) + getattr(c, f.name))
        deadline = lost + self.reconnect_timeout_s
        self.backoff.reset()
        last_error: BaseException = cause
        while not self._closed:
            left = deadline - clock()
            if left <= 0:
                break
            gap.attempts += 1
            try:
                session = await asyncio.wait_for(self._attempt(old), left)
            except TimeoutError:
                last_error = DeviceTimeoutError("the last attempt did not finish in time")
                break
            except (LinkError, DeviceTimeoutError, MassagectlError) as exc:
                last_error = exc
                delay = min(self.backoff.next_delay_s(), max(0.0, deadline - clock()))
                await asyncio.sleep(delay)
                continue
            self._session = session
            gap.restored_host_s = clock()
            self._paused = False
            self._resumed.set()
            self._emit(
                LinkEvent(
                    "restored",
                    len(self.gaps),
                    gap_s=gap.duration_s or 0.0,
                    attempts=gap.attempts,
                )
            )
            return
        raise LinkClosedError(
            f"{self.url}: the link was lost and the device did not come back within "
            f"{self.reconnect_timeout_s:g} s ({gap.attempts} attempts; last: {last_error})"
        ) from cause

    async def _attempt(self, old: DeviceSession) -> DeviceSession:
        """One try: a new link, handshake, Stop, the last limit. Cleans up if it fails."""
        link = self._link_factory()
        if hasattr(link, "scan_timeout_s"):
            link.scan_timeout_s = min(link.scan_timeout_s, ATTEMPT_SCAN_TIMEOUT_S)
        session = DeviceSession(
            link,
            rate_hz=old.rate_hz,
            samples_per_batch=old.samples_per_batch,
            calibration=old.calibration,
        )
        session.clock = old.clock  # device time runs on through the gap
        if old.vibration_cleared:
            session.clear_for_vibration(old.screening)
        try:
            await session.start()
            await session.stop_motor()
            if self._limit_n is not None:
                await session.set_limit(self._limit_n)
        except BaseException:
            await session.close()
            raise
        return session


def open_device_session(
    url: str | DeviceUrl,
    *,
    rate_hz: int | None = None,
    samples_per_batch: int | None = None,
    speed: float | None = None,
    reconnect_timeout_s: float = DEFAULT_RECONNECT_TIMEOUT_S,
    **link_options,
) -> DeviceSession | ReconnectingSession:
    """The session every face opens for ``url`` (not yet started): the calibration stored
    at pairing, if any (``device.config.known_devices.calibration_for``); for ``ble://``, a
    ``ReconnectingSession``; otherwise a plain ``DeviceSession``."""
    from device.config.known_devices import calibration_for

    parsed = url if isinstance(url, DeviceUrl) else parse_url(url)
    calibration = calibration_for(parsed)
    if parsed.scheme == "ble" and reconnect_timeout_s > 0:
        return ReconnectingSession(
            parsed,
            rate_hz=rate_hz,
            samples_per_batch=samples_per_batch,
            calibration=calibration,
            speed=speed,
            reconnect_timeout_s=reconnect_timeout_s,
            **link_options,
        )
    # the link builds the run's time base: the ``speed`` option, else the URL's ?speed=K
    return DeviceSession(
        open_link(parsed, speed=speed, **link_options),
        rate_hz=rate_hz,
        samples_per_batch=samples_per_batch,
        calibration=calibration,
    )
