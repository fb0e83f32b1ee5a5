"""Vibration patterns and the command coalescer.

A pattern is data: a name and a few parameters, giving a level (0-1) at each time since it
started. The player scales that level by the step's intensity, caps it by the zone, and hands
it to the coalescer, which sends Vibrate commands no faster than a minimum gap (latest value
wins, so the link is never flooded). Stop never waits: it cancels whatever is pending and goes
out at once.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

PATTERN_NAMES = ("constant", "pulse", "wave", "ramp", "knead")
#: Smallest time between two Vibrate commands to one device (host seconds).
MIN_COMMAND_GAP_S = 0.05
#: Level changes smaller than this (fraction of full scale) are not sent.
LEVEL_DEADBAND = 0.01


@dataclass(frozen=True)
class Pattern:
    """A parametric vibration pattern; ``level(t_s)`` is 0-1 at ``t_s`` seconds from start.

    constant: always 1. pulse: on for ``duty`` of each ``period_s``, else ``floor``.
    wave: a raised sine between ``floor`` and 1 with period ``period_s``. ramp: from
    ``floor`` up to 1 over ``period_s``, then holds. knead: two overlapping swells per period,
    like hands that squeeze in turn.
    """

    name: str
    period_s: float = 1.0
    duty: float = 0.5
    floor: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in PATTERN_NAMES:
            raise ValueError(f"unknown pattern {self.name!r} (known: {', '.join(PATTERN_NAMES)})")
        if self.period_s <= 0 or not 0 < self.duty <= 1 or not 0 <= self.floor <= 1:
            raise ValueError(f"pattern {self.name}: bad parameters")

    def level(self, t_s: float) -> float:
        if t_s < 0:
            return 0.0
        phase = (t_s % self.period_s) / self.period_s
        span = 1.0 - self.floor
        match self.name:
            case "constant":
                return 1.0
            case "pulse":
                return 1.0 if phase < self.duty else self.floor
            case "wave":
                return self.floor + span * 0.5 * (1 - math.cos(2 * math.pi * phase))
            case "ramp":
                return self.floor + span * min(1.0, t_s / self.period_s)
            case "knead":
                a = max(0.0, math.sin(2 * math.pi * phase))
                b = max(0.0, math.sin(2 * math.pi * phase + 2.0))
                return self.floor + span * max(a, 0.8 * b)
        raise AssertionError(self.name)


#: The patterns by name, with the parameters massagectl uses.
PATTERNS: dict[str, Pattern] = {
    "constant": Pattern("constant"),
    "pulse": Pattern("pulse", period_s=0.8, duty=0.5, floor=0.0),
    "wave": Pattern("wave", period_s=3.0, floor=0.2),
    "ramp": Pattern("ramp", period_s=5.0, floor=0.2),
    "knead": Pattern("knead", period_s=2.0, floor=0.1),
}


def get_pattern(name: str) -> Pattern:
    try:
        return PATTERNS[name]
    except KeyError:
        raise ValueError(f"unknown pattern {name!r} (known: {', '.join(PATTERNS)})") from None


SendVibrate = Callable[[float, int], Awaitable[None]]
SendStop = Callable[[], Awaitable[None]]


class CommandCoalescer:
    """Sends Vibrate at most every ``min_gap_s`` (host time); the latest request wins.

    ``send_vibrate(intensity_pct, frequency_hz)`` and ``send_stop()`` do the sending. A failed
    send is not swallowed: it is kept in ``error`` and raised from the next ``request`` or
    ``flush`` so the owner reaches its fault path.
    """

    def __init__(
        self,
        send_vibrate: SendVibrate,
        send_stop: SendStop,
        *,
        min_gap_s: float = MIN_COMMAND_GAP_S,
        clock: Callable[[], float] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self._send_vibrate = send_vibrate
        #: told at once when a send fails (the owner fails closed); the error is also kept
        #: and raised from the next ``request`` or ``flush``
        self._on_error = on_error
        self._send_stop = send_stop
        self.min_gap_s = min_gap_s
        #: host seconds: the event loop's clock unless told (its timers run on it)
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._last_sent_s = -math.inf
        self._pending: tuple[float, int] | None = None
        self._timer: asyncio.Task | None = None
        self.sent: tuple[float, int] | None = None
        self.vibrate_count = 0
        self.stop_count = 0
        self.coalesced = 0
        self.error: BaseException | None = None
        self._cancelled: list[asyncio.Task] = []

    def request(self, intensity_pct: float, frequency_hz: int) -> None:
        """Ask for this vibration; sent now if the gap allows, else when it does."""
        self._raise_error()
        if self._pending is not None:
            self.coalesced += 1
        self._pending = (float(intensity_pct), int(frequency_hz))
        if self._timer is None or self._timer.done():
            wait_s = max(0.0, self._last_sent_s + self.min_gap_s - self._clock())
            self._timer = asyncio.get_running_loop().create_task(
                self._send_after(wait_s), name="vibrate-coalescer"
            )

    async def _send_after(self, wait_s: float) -> None:
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        pending, self._pending = self._pending, None
        if pending is None:
            return
        self._last_sent_s = self._clock()
        try:
            await self._send_vibrate(*pending)
        except Exception as exc:  # noqa: BLE001 - kept, reported, re-raised to the owner
            self.error = exc
            if self._on_error is not None:
                self._on_error(exc)
            return
        self.sent = pending
        self.vibrate_count += 1

    async def stop(self) -> None:
        """Cancel anything pending and send Stop at once."""
        self._pending = None
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
            # kept until it has ended (``close`` awaits it): never a task nobody awaits
            self._cancelled = [t for t in self._cancelled if not t.done()] + [self._timer]
        self._timer = None
        await self._send_stop()
        self.sent = (0.0, 0)
        self.stop_count += 1

    async def close(self) -> None:
        """Cancel anything pending and wait for the sender to end (after the owner's Stop:
        nothing goes out after it). Safe twice."""
        self._pending = None
        timer, self._timer = self._timer, None
        waiting, self._cancelled = self._cancelled, []
        if timer is not None:
            timer.cancel()
            waiting.append(timer)
        await asyncio.gather(*waiting, return_exceptions=True)

    async def flush(self) -> None:
        """Wait for a pending command to go out (tests, shutdown)."""
        if self._timer is not None:
            try:
                await self._timer
            except asyncio.CancelledError:
                pass
        self._raise_error()

    def _raise_error(self) -> None:
        if self.error is not None:
            exc, self.error = self.error, None
            raise exc


class PatternPlayer:
    """Turns a pattern and a step's intensity into coalesced Vibrate requests.

    ``update(t_s, cap_pct)`` is called with device time as force batches arrive; it asks the
    coalescer for ``intensity * level(t - start)`` capped by ``cap_pct`` (the zone's cap, 0
    while a stop is latched) and sends only when the level moved.
    """

    def __init__(self, coalescer: CommandCoalescer) -> None:
        self.coalescer = coalescer
        self.pattern: Pattern | None = None
        self.intensity_pct = 0.0
        self.frequency_hz = 0
        self._start_s: float | None = None
        self.current_pct = 0.0

    def play(self, pattern: Pattern | None, intensity_pct: float, frequency_hz: int = 0) -> None:
        self.pattern = pattern if intensity_pct > 0 else None
        self.intensity_pct = intensity_pct if pattern is not None else 0.0
        self.frequency_hz = frequency_hz
        self._start_s = None

    def target_pct(self, t_s: float, cap_pct: float) -> float:
        if self.pattern is None:
            return 0.0
        if self._start_s is None:
            self._start_s = t_s
        level = self.pattern.level(t_s - self._start_s)
        return round(min(self.intensity_pct * level, cap_pct), 1)

    def update(self, t_s: float, cap_pct: float) -> float:
        """Request the vibration due at ``t_s``; returns the percent asked for."""
        target = self.target_pct(t_s, cap_pct)
        if abs(target - self.current_pct) >= LEVEL_DEADBAND * 100 or (
            target == 0.0 and self.current_pct != 0.0
        ):
            self.current_pct = target
            self.coalescer.request(target, self.frequency_hz)
        return self.current_pct

    def silence(self) -> None:
        """Forget the level (after a Stop went out): the next update re-sends it."""
        self.current_pct = 0.0
        self._start_s = None
