"""Vibration patterns and the command coalescer.

A pattern is data: a name and a few parameters, giving a level (0-1) at each time since it
started. The player scales that level by the step's intensity, caps it by the zone, and hands
it to the coalescer, which sends Vibrate commands no faster than a minimum gap (latest value
wins, so the link is never flooded). Stop never waits: it cancels whatever is pending and goes
out at once.

On a device that plays patterns itself (protocol version 3, docs/protocol.md) the player
streams nothing: each pattern is a table of steps (``pattern_table``: the level sampled every
``PATTERN_STEP_S``), uploaded once per session, and a pattern is started by id with its
intensity and the zone's cap (one PlayPattern, through the same coalescer, so a Stop still
cancels it). The host computes the intensity being played from the same table (not from the
device's Status, which comes at 4 Hz): it needs it at every batch for the supervisor and the
motor band-stop, and both sides compute it with the same integer rule.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from firmware_bridge.messages import pattern_output_permille

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


#: Step length of a pattern played by the firmware (seconds): 10 levels a second, as fine as
#: the streamed levels that the coalescer let through (a command every 50 ms at most, most
#: of them held back by the 1 % deadband).
PATTERN_STEP_S = 0.1
#: A pattern's id on a version 3 device (the order of PATTERN_NAMES).
PATTERN_IDS = {name: i for i, name in enumerate(PATTERN_NAMES)}
#: Patterns that run once and then hold their last level (the others loop whole).
_ONE_SHOT = {"ramp"}


@dataclass(frozen=True)
class PatternTable:
    """A pattern as the firmware plays it: steps of (level_permille, duration_ms); after the
    last step playback goes on from step ``loop_from``."""

    steps: tuple[tuple[int, int], ...]
    loop_from: int = 0

    def level_permille(self, t_s: float) -> int:
        """The step's level at ``t_s`` from the start (whole milliseconds, as the device)."""
        elapsed_ms = max(0, int(t_s * 1000.0 + 1e-6))
        total_ms = sum(d for _, d in self.steps)
        if elapsed_ms >= total_ms:
            loop_ms = sum(d for _, d in self.steps[self.loop_from :])
            elapsed_ms = total_ms - loop_ms + (elapsed_ms - total_ms) % loop_ms
        for level, duration_ms in self.steps:
            if elapsed_ms < duration_ms:
                return level
            elapsed_ms -= duration_ms
        return self.steps[-1][0]


def pattern_table(pattern: Pattern, step_s: float = PATTERN_STEP_S) -> PatternTable:
    """``pattern`` sampled at the start of every ``step_s``: one period for a looping pattern,
    the rise then its last level held for a ramp; equal neighbours merged."""
    step_ms = round(step_s * 1000)
    n = max(1, round(pattern.period_s / step_s))
    raw = [round(pattern.level(k * step_s) * 1000) for k in range(n)]
    one_shot = pattern.name in _ONE_SHOT
    if one_shot:
        raw.append(round(pattern.level(pattern.period_s) * 1000))
    steps: list[list[int]] = []
    for k, level in enumerate(raw):
        held = one_shot and k == len(raw) - 1
        if steps and steps[-1][0] == level and not held:
            steps[-1][1] += step_ms
        else:
            steps.append([level, step_ms])
    return PatternTable(
        tuple((lv, d) for lv, d in steps), loop_from=len(steps) - 1 if one_shot else 0
    )


#: The table uploaded to a version 3 device, by pattern name.
PATTERN_TABLES: dict[str, PatternTable] = {name: pattern_table(p) for name, p in PATTERNS.items()}


SendVibrate = Callable[[float, int], Awaitable[None]]
#: ``send_play(pattern_name, intensity_pct, cap_pct, frequency_hz)``
SendPlay = Callable[[str, float, float, int], Awaitable[None]]
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
        send_play: SendPlay | None = None,
    ) -> None:
        self._send_vibrate = send_vibrate
        self._send_play = send_play
        #: told at once when a send fails (the owner fails closed); the error is also kept
        #: and raised from the next ``request`` or ``flush``
        self._on_error = on_error
        self._send_stop = send_stop
        self.min_gap_s = min_gap_s
        #: host seconds: the event loop's clock unless told (its timers run on it)
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._last_sent_s = -math.inf
        self._pending: tuple[float, int] | None = None
        self._pending_play: tuple[str, float, float, int] | None = None
        self._timer: asyncio.Task | None = None
        self.sent: tuple[float, int] | None = None
        self.vibrate_count = 0
        #: PlayPattern commands sent (a version 3 device)
        self.play_count = 0
        self.stop_count = 0
        self.coalesced = 0
        self.error: BaseException | None = None
        self._cancelled: list[asyncio.Task] = []

    def request(self, intensity_pct: float, frequency_hz: int) -> None:
        """Ask for this vibration; sent now if the gap allows, else when it does."""
        self._raise_error()
        if self._pending is not None or self._pending_play is not None:
            self.coalesced += 1
        self._pending_play = None
        self._pending = (float(intensity_pct), int(frequency_hz))
        self._arm()

    def request_pattern(
        self, name: str, intensity_pct: float, cap_pct: float, frequency_hz: int
    ) -> None:
        """Ask the device to play pattern ``name`` (version 3), sent as ``request`` is."""
        self._raise_error()
        if self._send_play is None:
            raise RuntimeError("this coalescer has no send_play")
        if self._pending is not None or self._pending_play is not None:
            self.coalesced += 1
        self._pending = None
        self._pending_play = (name, float(intensity_pct), float(cap_pct), int(frequency_hz))
        self._arm()

    def _arm(self) -> None:
        if self._timer is None or self._timer.done():
            wait_s = max(0.0, self._last_sent_s + self.min_gap_s - self._clock())
            self._timer = asyncio.get_running_loop().create_task(
                self._send_after(wait_s), name="vibrate-coalescer"
            )

    async def _send_after(self, wait_s: float) -> None:
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        pending, self._pending = self._pending, None
        play, self._pending_play = self._pending_play, None
        if pending is None and play is None:
            return
        self._last_sent_s = self._clock()
        try:
            if play is not None:
                assert self._send_play is not None
                await self._send_play(*play)
                self.sent = (min(play[1], play[2]), play[3])
                self.play_count += 1
                return
            assert pending is not None
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
        self._pending_play = None
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
        self._pending_play = None
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

    With ``firmware_patterns`` (a version 3 device) it sends one PlayPattern per start
    instead (again when the intensity or the cap changes, or after a Stop) and computes the
    level the device plays from the same table (``PATTERN_TABLES``) and integer rule.
    """

    def __init__(self, coalescer: CommandCoalescer, *, firmware_patterns: bool = False) -> None:
        self.coalescer = coalescer
        self.firmware_patterns = firmware_patterns
        self.pattern: Pattern | None = None
        self.intensity_pct = 0.0
        self.frequency_hz = 0
        self._start_s: float | None = None
        self.current_pct = 0.0
        #: what the device was last asked to play: (name, intensity_permille, cap_permille)
        self._asked: tuple[str, int, int] | None = None

    def play(self, pattern: Pattern | None, intensity_pct: float, frequency_hz: int = 0) -> None:
        self.pattern = pattern if intensity_pct > 0 else None
        self.intensity_pct = intensity_pct if pattern is not None else 0.0
        self.frequency_hz = frequency_hz
        self._start_s = None
        self._asked = None

    def target_pct(self, t_s: float, cap_pct: float) -> float:
        if self.pattern is None:
            return 0.0
        if self._start_s is None:
            self._start_s = t_s
        if self.firmware_patterns:
            level = PATTERN_TABLES[self.pattern.name].level_permille(t_s - self._start_s)
            permille = pattern_output_permille(
                level, _permille(self.intensity_pct), _permille(cap_pct)
            )
            return permille / 10.0
        level_f = self.pattern.level(t_s - self._start_s)
        return round(min(self.intensity_pct * level_f, cap_pct), 1)

    def update(self, t_s: float, cap_pct: float) -> float:
        """Request the vibration due at ``t_s``; returns the percent asked for (on a version
        3 device: the percent the device plays now)."""
        if self.firmware_patterns:
            return self._update_firmware(t_s, cap_pct)
        target = self.target_pct(t_s, cap_pct)
        if abs(target - self.current_pct) >= LEVEL_DEADBAND * 100 or (
            target == 0.0 and self.current_pct != 0.0
        ):
            self.current_pct = target
            self.coalescer.request(target, self.frequency_hz)
        return self.current_pct

    def _update_firmware(self, t_s: float, cap_pct: float) -> float:
        on = self.pattern is not None and _permille(cap_pct) > 0
        if not on or self.pattern is None:
            if self._asked is not None or self.current_pct != 0.0:
                self.coalescer.request(0.0, self.frequency_hz)
            self._asked = None
            self._start_s = None
            self.current_pct = 0.0
            return 0.0
        asked = (self.pattern.name, _permille(self.intensity_pct), _permille(cap_pct))
        if asked != self._asked:
            self._asked = asked
            self._start_s = t_s  # the device starts from the first step
            self.coalescer.request_pattern(
                self.pattern.name, self.intensity_pct, cap_pct, self.frequency_hz
            )
        self.current_pct = self.target_pct(t_s, cap_pct)
        return self.current_pct

    def silence(self) -> None:
        """Forget the level (after a Stop went out): the next update re-sends it."""
        self.current_pct = 0.0
        self._start_s = None
        self._asked = None


def _permille(pct: float) -> int:
    """A percentage as the session sends it (clamped to 0-100 %, whole per-mille)."""
    return round(max(0.0, min(100.0, pct)) * 10)
