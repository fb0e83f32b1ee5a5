"""The time base of a run: the one owner of simulation speed, device time on the host side
and the period of every host timer (keepalive, supervisor tick, stale floor, waits).

Built once per run from the URL (``sim://ball?speed=4``) or the ``--speed`` option
(``TimeBase.for_url``); the link, the session, the supervised loop, the runner, pairing and
reconnect all take it from there and never scale anything by a speed of their own.

Clocks. Host timers are asyncio timers on the event loop's clock (``loop.time()``): a test
that runs the loop on virtual time drives them with no wall clock at all. Device time on
the host (``now_s``) is:

* for a device in another process or on real hardware: loop time since start, times speed
  (speed is 1 for real devices);
* for a simulator in this process (``sim://``): the simulator's own clock, which this time
  base *is*. The simulator steps it (``advance``) every few milliseconds by the loop time
  that passed times speed, but never by more than ``MAX_STEP_S`` of device time in one step.
  A late event loop (a busy machine) therefore slows both sides alike instead of making
  simulated time jump past the firmware's 500 ms keepalive deadman or the host's stale
  timer: the run just takes longer.
"""

from __future__ import annotations

import asyncio
import math

from device.errors import UsageError
from device.urls import DeviceUrl, check_sim_speed

#: Device seconds between keepalives (the firmware's deadman is 0.5 s).
KEEPALIVE_S = 0.1
#: Device seconds between supervisor ticks (DESIGN.md: at least every 50 ms).
TICK_S = 0.05
#: Real (loop) seconds of scheduling jitter that the stale-stream timer always allows when the
#: device's clock is *not* this time base's (a simulator in another process at speed K).
STALE_REAL_FLOOR_S = 0.1
#: The most device time one step of an in-process simulator may cover.
MAX_STEP_S = 0.05


def _check_speed(speed: float, where: str) -> float:
    if not (isinstance(speed, int | float) and math.isfinite(speed) and speed > 0):
        raise UsageError(f"{where}: speed must be a positive number, got {speed!r}")
    return float(speed)


def check_face_speed(url: DeviceUrl, speed: float | None) -> TimeBase:
    """For the session faces (routine, vibrate, plot): a ``--speed`` other than 1 only for a
    simulated device named as one (sim://, replay://). Returns the run's time base."""
    if speed is not None and speed != 1.0 and url.scheme not in ("sim", "replay"):
        _check_speed(speed, "--speed")
        raise UsageError("--speed is only for simulated devices (sim://, replay://)")
    if speed is not None and url.scheme == "sim":
        check_sim_speed(speed)
    return TimeBase.for_url(url, speed)


class TimeBase:
    """Speed, host timer periods and device time for one run.

    ``speed`` K (simulation only) makes device time run K times faster than loop time.
    """

    def __init__(self, speed: float = 1.0) -> None:
        self.speed = _check_speed(speed, "time base")
        self._loop_t0_s: float | None = None
        #: Set once a simulator in this process drives device time (see ``advance``).
        self.driven = False
        self._device_s = 0.0
        self._last_loop_s: float | None = None

    @classmethod
    def for_url(cls, url: DeviceUrl, speed: float | None = None) -> TimeBase:
        """The time base for ``url``: the ``speed`` option if given, else the URL's
        ``?speed=K`` (sim:// and replay://), else 1. Replay's ``speed=max`` paces nothing,
        so host timers run at 1. (A ``ble://`` device may be a simulator on a software
        radio, so this refuses no scheme: faces call ``check_face_speed``.)"""
        if speed is None:
            raw = url.params.get("speed") if url.scheme in ("sim", "replay") else None
            if raw is None or str(raw).lower() == "max":
                return cls(1.0)
            try:
                return cls(float(raw))
            except ValueError:
                raise UsageError(f"{url}: speed must be a positive number, got {raw!r}") from None
        return cls(_check_speed(speed, "--speed"))

    # ---- host timers (loop seconds) ---------------------------------------------------------

    def loop_s(self, device_s: float) -> float:
        """Loop (host) seconds that ``device_s`` of device time takes."""
        return device_s / self.speed

    @property
    def keepalive_period_s(self) -> float:
        return self.loop_s(KEEPALIVE_S)

    @property
    def tick_period_s(self) -> float:
        return self.loop_s(TICK_S)

    @property
    def stale_floor_s(self) -> float:
        """A lower bound for the stale-stream timer, in device seconds. Zero when this time
        base is the device's clock or runs at real speed; else STALE_REAL_FLOOR_S of loop
        time (a separate simulator's clock and ours drift apart by scheduling jitter)."""
        if self.driven or self.speed <= 1.0:
            return 0.0
        return STALE_REAL_FLOOR_S * self.speed

    def timeout(self, device_s: float) -> asyncio.Timeout:
        """``async with tb.timeout(s):`` a deadline ``s`` seconds of device time away."""
        return asyncio.timeout(self.loop_s(device_s))

    # ---- device time ------------------------------------------------------------------------

    def _loop_now_s(self) -> float:
        now = asyncio.get_running_loop().time()
        if self._loop_t0_s is None:
            self._loop_t0_s = now
        return now

    def now_s(self) -> float:
        """Device seconds since this time base started (the host's view of device time)."""
        if self.driven:
            return self._device_s
        now = self._loop_now_s()
        assert self._loop_t0_s is not None
        return (now - self._loop_t0_s) * self.speed

    def drive(self) -> TimeBase:
        """Make this time base the clock of a simulator in this process, which then steps it
        with ``advance``; device time starts at 0."""
        self.driven = True
        self._device_s = 0.0
        self._last_loop_s = None
        return self

    def advance(self) -> float:
        """Step device time to now (the in-process simulator's step): by the loop time passed
        times speed, at most MAX_STEP_S. Returns the new device time."""
        if not self.driven:
            raise RuntimeError("advance() on a time base no simulator drives")
        now = asyncio.get_running_loop().time()
        if self._last_loop_s is not None:
            self._device_s += min((now - self._last_loop_s) * self.speed, MAX_STEP_S)
        self._last_loop_s = now
        return self._device_s

    def __repr__(self) -> str:
        return f"TimeBase(speed={self.speed:g}{', driven' if self.driven else ''})"
