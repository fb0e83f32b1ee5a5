"""A device session under live supervision: the one safety loop every face uses.

``SupervisedSession`` runs the force pipeline on every batch as it arrives and the host-time
checks on a tick of at least every 50 ms (never on a redraw timer). A stop or fault sends
``Stop`` before anything else happens (cancelling any pending Vibrate), then the event goes
to listeners. Vibration only ever goes out through its pattern player and command coalescer,
capped by the zone and silenced while a stop is latched. A lost link ends the loop with a
``link_lost`` event (the firmware's deadman is the backstop).

On a session that reconnects (``device.session.reconnect.ReconnectingSession``, which offers
``add_link_listener``) a lost link *pauses* the loop instead: vibration is halted at once,
one ``link_lost`` event is published (no stale-stream fault follows: nothing vibrates), and
when the link is back the pipeline restarts its stream (``ForcePipeline.restart_stream``:
no false stop from the filters' start-up mid-press) and a ``link_restored`` event says how
long the gap was. The loss latches the supervisor (cause ``link_lost``): nothing vibrates
again until a re-arm under the usual rules (force eased off for 1 s, then the person or an
unattended routine's policy), as after any stop. Only a device that does not come back
ends the loop (a ``fault`` with cause ``link_lost``).

The routine runner, ``massagectl vibrate`` and the live window build on it; faces read
``LiveState`` at their own pace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from device.control.vibration import (
    PATTERN_IDS,
    PATTERN_TABLES,
    CommandCoalescer,
    Pattern,
    PatternPlayer,
)
from device.errors import LinkClosedError, MassagectlError, UsageError
from device.session.device_session import DeviceSession, SampleBatch
from dsp.decisions import SafetyState
from dsp.events import (
    Cause,
    ClockJump,
    CommandSent,
    Event,
    Fault,
    LinkLost,
    LinkRestored,
    Stop,
)
from dsp.pipeline import BatchResult, ForcePipeline
from firmware_bridge.messages import DeviceInfo, MotorKind, StatusFlags

if TYPE_CHECKING:
    from device.session.reconnect import LinkEvent, ReconnectingSession

EASE_OFF_PROMPT = "Too much pressure for this spot: ease off now."


def default_motor_hz(info: DeviceInfo | None) -> int:
    """The frequency to command when none is asked for: percussive heads at 40 Hz, vibration
    motors at 150 Hz, within what the device says it can do. The host always names the
    frequency, because its motor band-stop must know where the leakage is."""
    if info is None:
        return 150
    wanted = 40 if info.motor_kind == MotorKind.PERCUSSIVE else 150
    lo, hi = info.motor_freq_min_hz or wanted, info.motor_freq_max_hz or wanted
    return int(min(max(wanted, lo), hi))


def check_motor_hz(motor_hz: int, info: DeviceInfo | None) -> None:
    """Refuse (``UsageError``) a motor frequency the device says it cannot play, before
    anything vibrates (0: the device's default, always fine)."""
    if not motor_hz or info is None or not info.motor_freq_max_hz:
        return
    lo, hi = info.motor_freq_min_hz, info.motor_freq_max_hz
    if not lo <= motor_hz <= hi:
        raise UsageError(
            f"motor frequency {motor_hz} Hz is outside what this device can play ({lo}-{hi} Hz)"
        )


Listener = Callable[[Event], None]
BatchListener = Callable[[SampleBatch, BatchResult], None]
DecisionHook = Callable[[Event], None]


@dataclass
class LiveState:
    """What faces show; updated on every batch, tick and step change."""

    t_s: float = 0.0
    force_n: float = 0.0
    filtered_n: float = 0.0
    safety: SafetyState = SafetyState.ARMED
    alarm: str = ""
    prompt: str = ""
    vibration_pct: float = 0.0
    link_kind: str = ""
    battery_pct: int | None = None
    rate_hz: float = 0.0
    #: the stream's nominal rate (Hz; what the filters are designed for)
    nominal_rate_hz: float = 0.0
    missed_batches: int = 0
    crc_errors: int = 0
    latency_s: float = 0.0
    link_lost: bool = False
    # routine fields (left empty outside a routine)
    unit: object | None = None
    unit_number: int = 0
    unit_count: int = 0
    instruction: str = ""
    unit_started_t_s: float = 0.0
    unit_deadline_t_s: float | None = None
    hold_s: float = 0.0
    hold_min_s: float | None = None
    hold_max_s: float | None = None
    waiting_rearm: bool = False
    finished: bool = False


class SupervisedSession:
    """Supervises an open ``session`` with ``pipeline``, on the session's time base (its
    tick every ``TICK_S`` of device time, the stale timer in device time). ``motor_hz``: the
    frequency asked of the motor (0: the device's default)."""

    def __init__(
        self,
        session: DeviceSession | ReconnectingSession,
        pipeline: ForcePipeline,
        *,
        motor_hz: int = 0,
    ) -> None:
        self.session = session
        self.pipeline = pipeline
        self.timebase = session.timebase
        check_motor_hz(motor_hz, session.info)
        self.motor_hz = motor_hz or default_motor_hz(session.info)
        #: False on a device without a motor: monitor mode (no Stop sent, no vibration, a
        #: stop is an alarm with ``motor: "none"``)
        self.has_motor = bool(getattr(session, "has_motor", True))
        self.state = LiveState(link_kind=session.link.kind, nominal_rate_hz=session.rate_hz)
        self.coalescer = CommandCoalescer(
            self._send_vibrate,
            self._send_stop,
            on_error=self._on_command_error,
            send_play=self._send_play,
        )
        #: the device plays patterns itself (it reports protocol version 3): one PlayPattern
        #: per start instead of a stream of Vibrate commands (docs/protocol.md)
        self.firmware_patterns = self.has_motor and bool(getattr(session, "plays_patterns", False))
        self.player = PatternPlayer(self.coalescer, firmware_patterns=self.firmware_patterns)
        #: the DeviceInfo the pattern table was uploaded for (a reconnect greets the device
        #: again, which forgets its table: a new DeviceInfo, a new upload)
        self._table_for: DeviceInfo | None = None
        #: the patterns the device holds (uploaded for ``_table_for``)
        self._uploaded: set[str] = set()
        #: Set after every batch and tick: waiters re-check their conditions.
        self.changed = asyncio.Event()
        #: Host seconds from a stop decision to Stop handed to the link, per stop.
        self.stop_latency_s: list[float] = []
        self.stops = 0
        self.link_error: LinkClosedError | None = None
        #: An exception that ended the safety loop (a bug, a listener that raised): the loop
        #: failed closed (vibration halted, a fault event); owners re-raise it.
        self.failure: BaseException | None = None
        self.vibration_enabled = True
        #: Fields of ``dsp.events.Event`` set on every event published (the runner's
        #: ``{"unit": label}``).
        self.context: dict[str, Any] = {}
        self._listeners: list[Listener] = []
        self._batch_listeners: list[BatchListener] = []
        self._decision_hooks: list[DecisionHook] = []
        self._last_flags = 0
        self._last_crc = 0
        self._t0_host = time.monotonic()
        self._tasks: list[asyncio.Task] = []
        self._started = False
        pipeline.supervisor.stale_floor_s = self.timebase.stale_floor_s
        #: link losses survived (a reconnecting session) and their gaps (host seconds)
        self.link_gaps_s: list[float] = []
        add_link_listener = getattr(session, "add_link_listener", None)
        if add_link_listener is not None:
            add_link_listener(self._on_link_event)

    # ---- subscriptions --------------------------------------------------------------------

    def add_listener(self, fn: Listener) -> None:
        """``fn(event)`` for every event (a ``dsp.events`` type: step, hold, stop, command,
        link...), stamped with ``t_host_s`` and the context."""
        self._listeners.append(fn)

    def add_batch_listener(self, fn: BatchListener) -> None:
        """``fn(batch, result)`` for every batch after the pipeline ran (recorder, plots)."""
        self._batch_listeners.append(fn)

    def add_decision_hook(self, fn: DecisionHook) -> None:
        """``fn(event)`` for every decision of the pipeline and every stop (stops after Stop
        went out), before listeners see it."""
        self._decision_hooks.append(fn)

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the stream loop and the tick (once: a second call does nothing)."""
        if self._started:
            return
        self._started = True
        loop = asyncio.get_running_loop()
        self._tasks += [
            loop.create_task(self._stream_loop(), name="supervised-stream"),
            loop.create_task(self._tick_loop(), name="supervised-tick"),
        ]

    async def close(self) -> None:
        """End the loop in order: the stream loop and the tick first (no batch can ask for
        vibration any more), then Stop (if the link still works), then the command
        coalescer (nothing it had pending goes out after the Stop). Safe twice."""
        self.vibration_enabled = False
        self.player.play(None, 0.0)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self.halt_vibration()
        except MassagectlError:
            # The link is gone: the firmware's deadman stops the motor within 500 ms.
            pass
        await self.coalescer.close()

    # ---- time and events ------------------------------------------------------------------

    def host_s(self) -> float:
        """Host time for the supervisor, in device seconds (the time base's): its stale-stream
        timer runs in the same time as a simulated device."""
        return self.timebase.now_s()

    def emit(self, event: Event) -> None:
        """Publish an event of this loop's own or its owner's (steps, commands, user
        actions), made at the latest sample (``t_s=state.t_s, force_n=state.filtered_n``)."""
        self._publish(event)

    def _publish(self, d: Event) -> None:
        event = replace(d, t_host_s=round(time.monotonic() - self._t0_host, 6), **self.context)
        for fn in self._listeners:
            fn(event)

    # ---- vibration ------------------------------------------------------------------------

    def play(self, pattern: Pattern | None, intensity_pct: float) -> None:
        """Play ``pattern`` at ``intensity_pct`` (capped by the zone; None or 0: off).

        The motor band-stop follows the pattern's life, not each of its pulses: a pulsing
        motor keeps leaking while it spins down, and re-tuning filters on every pulse would
        put their transients into the force."""
        on = pattern is not None and intensity_pct > 0 and self.has_motor
        if not on:
            pattern, intensity_pct = None, 0.0
        self.player.play(pattern, intensity_pct if on else 0.0, self.motor_hz)
        self.pipeline.set_motor_hz(self.motor_hz if on else None)

    async def _send_vibrate(self, intensity_pct: float, frequency_hz: int) -> None:
        if intensity_pct <= 0:
            await self.session.stop_motor()
        else:
            await self.session.vibrate(intensity_pct, frequency_hz)
        st = self.state
        self.emit(
            CommandSent(
                t_s=st.t_s,
                force_n=st.filtered_n,
                command="vibrate",
                intensity_pct=intensity_pct,
                frequency_hz=frequency_hz,
            )
        )

    async def _send_play(
        self, name: str, intensity_pct: float, cap_pct: float, frequency_hz: int
    ) -> None:
        if self._table_for is not self.session.info:
            self._table_for = self.session.info
            self._uploaded.clear()
        if name not in self._uploaded:
            # each pattern once per session, when first played (never the one playing: that
            # is the only upload a device refuses)
            table = PATTERN_TABLES[name]
            await self.session.define_pattern(PATTERN_IDS[name], table.steps, table.loop_from)
            self._uploaded.add(name)
        await self.session.play_pattern(PATTERN_IDS[name], intensity_pct, cap_pct, frequency_hz)
        st = self.state
        self.emit(
            CommandSent(
                t_s=st.t_s,
                force_n=st.filtered_n,
                command="play_pattern",
                intensity_pct=min(intensity_pct, cap_pct),
                frequency_hz=frequency_hz,
                pattern=name,
            )
        )

    async def _send_stop(self) -> None:
        await self.session.stop_motor()
        self.emit(CommandSent(t_s=self.state.t_s, force_n=self.state.filtered_n, command="stop"))

    async def halt_vibration(self) -> None:
        """Stop first: cancel any pending Vibrate and send Stop at once."""
        self.player.silence()
        self.pipeline.supervisor.set_vibration(0.0, None)
        self.state.vibration_pct = 0.0
        if not self.has_motor:
            return  # no motor: nothing to stop, and no Stop pretends otherwise
        await self.coalescer.stop()

    async def user_stop(
        self, cause: Cause = Cause.USER_STOP, /, *, symptom: str | None = None
    ) -> None:
        """A STOP from a person (button, key; ``symptom``: what they reported): Stop at once,
        then the event; vibration stays off until re-armed or played again."""
        self.player.play(None, 0.0)
        await self.halt_vibration()
        self.stops += 1
        d = Stop(
            cause=cause,
            t_s=self.state.t_s,
            force_n=self.state.filtered_n,
            symptom=symptom,
            motor=None if self.has_motor else "none",
        )
        for hook in self._decision_hooks:
            hook(d)
        self._publish(d)

    def rearm(self) -> bool:
        """Re-arm a latched stop now, if force has reset (70 % of the limit for 1 s)."""
        ok = self.pipeline.rearm(self.state.t_s)
        if ok:
            self.state.alarm = ""
            self.state.prompt = ""
            self.state.safety = self.pipeline.state
        return ok

    # ---- the stream -----------------------------------------------------------------------

    async def _stream_loop(self) -> None:
        try:
            async for batch in self.session.batches():
                await self._on_batch(batch)
        except LinkClosedError as exc:
            self._on_link_lost(exc)
            return
        except Exception as exc:  # noqa: BLE001 - any failure must stop the motor
            await self._fail_closed(exc)
            return
        self._on_link_lost(LinkClosedError(f"{self.session.link.url}: stream ended"))

    def _on_command_error(self, exc: Exception) -> None:
        """A Vibrate that failed (refused by the device, no answer, no screening): the motor
        is in doubt, so the run fails closed at once. A lost link is the link-loss path's."""
        if isinstance(exc, LinkClosedError):
            return
        self.fail(exc)

    def fail(self, exc: BaseException) -> None:
        """Something outside the loop (a recording that cannot be written) ends the run:
        vibration stops at once, the stream loop and tick end, a fault event, ``failure``."""
        if self.failure is not None:
            return
        self.failure = exc
        self.vibration_enabled = False
        self.player.play(None, 0.0)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._fail_from_outside(exc), name="fail-closed"))

    async def _fail_from_outside(self, exc: BaseException) -> None:
        this = asyncio.current_task()
        others = [t for t in self._tasks if t is not this and t.get_name() != "fail-closed"]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await self._fail_closed(exc)

    async def _fail_closed(self, exc: BaseException) -> None:
        """The safety loop cannot go on: stop vibration, latch a fault, tell everyone."""
        self.failure = self.failure or exc
        self.vibration_enabled = False
        self.pipeline.supervisor.state = SafetyState.FAULT
        self.state.safety = SafetyState.FAULT
        self.state.alarm = "internal error"
        try:
            await self.halt_vibration()
        except (LinkClosedError, MassagectlError):
            pass  # the link is gone too: the firmware's deadman stops the motor
        self._publish(
            Fault(
                cause=None,
                t_s=self.state.t_s,
                force_n=self.state.filtered_n,
                error=f"{type(exc).__name__}: {exc}",
            )
        )
        self.changed.set()

    def _on_link_event(self, event: LinkEvent) -> None:
        """A reconnecting session lost its link ("lost") or got it back ("restored")."""
        if event.kind == "lost":
            self._link_paused(event)
        elif event.kind == "restored":
            self._link_restored(event)

    def _link_paused(self, event: LinkEvent) -> None:
        self.player.play(None, 0.0)
        self.pipeline.supervisor.latch(
            Fault(
                cause=Cause.LINK_LOST,
                t_s=self.state.t_s,
                force_n=self.state.filtered_n,
                error=event.error,
            )
        )
        self.state.safety = self.pipeline.state
        # stop first: silence the player and the supervisor's vibration at once (nothing
        # vibrates, so the stale-stream rule stays quiet during the pause); the Stop itself
        # cannot reach the device now and goes out first thing on reconnect
        self.pipeline.supervisor.set_vibration(0.0, None)
        self.pipeline.set_motor_hz(None)
        self.state.vibration_pct = 0.0
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self.halt_vibration(), name="halt-on-link-lost"))
        # the deadman fires during an outage: expected, and accounted for by this event
        self._last_flags |= StatusFlags.KEEPALIVE_LOST
        self.state.link_lost = True
        self.state.alarm = str(Cause.LINK_LOST)
        self.emit(
            LinkLost(
                t_s=self.state.t_s,
                force_n=self.state.filtered_n,
                error=event.error,
                count=event.count,
                reconnecting=True,
            )
        )
        self.changed.set()

    def _link_restored(self, event: LinkEvent) -> None:
        self.link_gaps_s.append(event.gap_s)
        if isinstance(self.coalescer.error, LinkClosedError):
            self.coalescer.error = None  # a send lost with the old link: reported already
        self._last_crc = 0
        self.state.link_lost = False
        if self.state.alarm == str(Cause.LINK_LOST):
            self.state.alarm = ""
        for d in self.pipeline.restart_stream():
            self._publish(d)
        self._publish(
            LinkRestored(
                t_s=self.state.t_s,
                force_n=self.state.filtered_n,
                count=event.count,
                gap_s=round(event.gap_s, 4),
                attempts=event.attempts,
            )
        )
        self.changed.set()

    def _on_link_lost(self, exc: LinkClosedError) -> None:
        self.link_error = exc
        if self.state.link_lost:
            # a reconnecting session gave up: its loss was published; this is the end
            self._publish(
                Fault(
                    cause=Cause.LINK_LOST,
                    t_s=self.state.t_s,
                    force_n=self.state.filtered_n,
                    error=str(exc),
                    gave_up=True,
                )
            )
            self.changed.set()
            return
        self.state.link_lost = True
        self.state.alarm = str(Cause.LINK_LOST)
        self.emit(LinkLost(t_s=self.state.t_s, force_n=self.state.filtered_n, error=str(exc)))
        self.changed.set()

    async def _on_batch(self, batch: SampleBatch) -> None:
        if len(batch.raw_counts) == 0:
            return  # nothing measured: the stale-stream rule covers a device that only sends these
        crc = self.session.link.stats.crc_errors
        result = self.pipeline.on_batch(
            batch.t_s,
            batch.raw_counts,
            self.host_s(),
            seq_gap=batch.gap,
            crc_errors=crc - self._last_crc,
        )
        self._last_crc = crc
        if batch.clock_jump_s:
            self.emit(
                ClockJump(
                    t_s=float(batch.t_s[0]),
                    force_n=self.state.filtered_n,
                    jump_s=batch.clock_jump_s,
                    count=self.session.counters.clock_jumps,
                )
            )
        t_last = float(batch.t_s[-1])
        st = self.state
        st.t_s = t_last
        st.force_n = float(result.force_n[-1])
        st.filtered_n = float(result.filtered_n[-1])
        for d in list(result.events) + self._firmware_flags(t_last):
            await self._on_decision(d)
        # vibration follows its pattern, capped by the zone, nothing while latched
        cap = self.pipeline.supervisor.allowed_intensity_pct(100.0)
        if not self.vibration_enabled:
            cap = 0.0
        pct = self.player.update(t_last, cap)
        if pct != st.vibration_pct:
            st.vibration_pct = pct
            self.pipeline.supervisor.set_vibration(pct, self.motor_hz if pct > 0 else None)
        st.safety = self.pipeline.state
        st.missed_batches = self.session.counters.missed_batches
        st.crc_errors = crc
        st.rate_hz = batch.rate_hz
        st.latency_s = time.monotonic() - batch.t_host_s
        if self.session.status is not None:
            st.battery_pct = self.session.status.battery_pct
        for fn in self._batch_listeners:
            fn(batch, result)
        self.changed.set()

    def _firmware_flags(self, t_s: float) -> list[Event]:
        """Stops the firmware made on its own (hard limit, deadman) become events."""
        status = self.session.status
        if status is None:
            return []
        new = status.flags & ~self._last_flags
        self._last_flags = status.flags
        f = self.state.filtered_n
        out: list[Event] = []
        if new & StatusFlags.LIMIT_TRIPPED:
            out.append(Stop(cause=Cause.FIRMWARE_LIMIT, t_s=t_s, force_n=f))
        if new & StatusFlags.KEEPALIVE_LOST:
            out.append(Fault(cause=Cause.KEEPALIVE_LOST, t_s=t_s, force_n=f))
        return out

    async def _on_decision(self, d: Event) -> None:
        if isinstance(d, Stop | Fault):
            # a running pattern counts even in a pulse's off phase
            was_vibrating = self.player.pattern is not None or self.state.vibration_pct > 0
            detected = time.monotonic()
            await self.halt_vibration()
            self.stop_latency_s.append(time.monotonic() - detected)
            if d.cause in (Cause.FIRMWARE_LIMIT, Cause.KEEPALIVE_LOST):
                # the host latches too, so re-arming follows the same rules
                self.pipeline.supervisor.latch(d)
            self.stops += 1
            self.state.alarm = str(d.cause) if d.cause else str(d.kind)
            if not was_vibrating and isinstance(d, Stop):
                self.state.prompt = EASE_OFF_PROMPT
            d = replace(d, was_vibrating=was_vibrating)
            if isinstance(d, Stop) and not self.has_motor:
                d = replace(d, motor="none", was_vibrating=False)
        for hook in self._decision_hooks:
            hook(d)
        self._publish(d)

    async def _tick_loop(self) -> None:
        period = self.timebase.tick_period_s
        try:
            while True:
                await asyncio.sleep(period)
                for d in self.pipeline.tick(self.host_s()):
                    await self._on_decision(d)
                self.state.safety = self.pipeline.state
                self.changed.set()
        except Exception as exc:  # noqa: BLE001 - any failure must stop the motor
            await self._fail_closed(exc)
