"""What a person is told while a Bluetooth link is down: at once that it is lost and being
re-established, then how long is left before the session gives up, then that it is back
(or that it gave up). The motor side needs nothing from here: the firmware's 500 ms deadman
has stopped the motor already. Used by ``vibrate`` and ``routine``; the lines go to stderr.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable

from device.errors import UsageError
from device.session.reconnect import DEFAULT_RECONNECT_TIMEOUT_S
from dsp.events import Event, Fault, LinkLost, LinkRestored

#: Seconds between two countdown lines.
COUNTDOWN_EVERY_S = 1.0


def add_reconnect_option(p, *, gives_up: str | None = "give up with exit 1") -> None:
    """``--reconnect-timeout S`` on a command's parser (``gives_up``: what the command does
    when the time is up, for the help)."""
    then = f", then {gives_up}" if gives_up else ""
    p.add_argument(
        "--reconnect-timeout",
        type=float,
        default=DEFAULT_RECONNECT_TIMEOUT_S,
        metavar="S",
        help=(
            f"ble:// only: after a lost link, keep trying to reconnect for S seconds{then} "
            f"(default {DEFAULT_RECONNECT_TIMEOUT_S:g}; 0: do not reconnect)"
        ),
    )


def check_reconnect_timeout(value_s: float) -> float:
    if not 0 <= value_s <= 3600:  # NaN fails too
        raise UsageError("--reconnect-timeout must be 0-3600 seconds")
    return value_s


class LinkNotice:
    """Feed it the session's events (``on_event``) and call ``tick()`` now and then (at least
    once a second while the link is down): it prints the loss, a countdown, and the end."""

    def __init__(
        self,
        timeout_s: float,
        say: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout_s = timeout_s
        self.say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self.clock = clock
        self._lost_at: float | None = None
        self._last_said = 0.0
        self.gave_up = False

    @property
    def reconnecting(self) -> bool:
        return self._lost_at is not None

    def seconds_left(self) -> float:
        if self._lost_at is None:
            return 0.0
        return max(0.0, self._lost_at + self.timeout_s - self.clock())

    def on_event(self, event: Event) -> None:
        if isinstance(event, LinkLost) and event.reconnecting:
            self._lost_at = self._last_said = self.clock()
            self.say(
                f"link lost: the motor is off; reconnecting, giving up in {self.timeout_s:.0f} s"
            )
        elif isinstance(event, LinkRestored):
            self._lost_at = None
            self.say(f"link back after {event.gap_s:.1f} s")
        elif isinstance(event, Fault) and event.gave_up:
            self._lost_at = None
            self.gave_up = True
            self.say(f"gave up: {event.error}")

    async def run(self) -> None:
        """Tick once a second until cancelled (for faces with no loop of their own)."""
        while True:
            await asyncio.sleep(COUNTDOWN_EVERY_S / 2)
            self.tick()

    def tick(self) -> None:
        """A countdown line once a second while reconnecting."""
        if self._lost_at is None:
            return
        now = self.clock()
        if now - self._last_said >= COUNTDOWN_EVERY_S:
            self._last_said = now
            self.say(f"reconnecting... {self.seconds_left():.0f} s left")
