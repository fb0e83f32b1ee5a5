"""The routine runner: walks a routine's units on a live device session, with the safety
pipeline watching every batch.

Per unit it sets the zone, band and hold timing in the pipeline, the firmware's hard limit
(``SetLimit``, the zone's ceiling: the firmware is the backstop, the host acts first at the
limit), tells a simulated person what to do, plays the vibration pattern and waits, in device
time, until the unit is done. Three tasks run beside it:

- the stream task: every batch goes through the pipeline at once; a stop or fault sends
  ``Stop`` before anything else happens, then the event is recorded;
- the tick task: host-time checks (stale stream) at least every 50 ms;
- the step driver (``run``) itself.

A stop pauses the unit. It resumes after the user re-arms (``request_rearm``), or with an
unattended policy once force has stayed under the reset threshold for the policy's time; the
unit then starts over. ``report_symptom`` ends the session at once with advice; ``user_stop``
ends it. On Ctrl-C, an exception or a lost link: Stop first, then the summary is finished and
listeners (the recorder) are closed.

Faces (terminal view, live window) read ``RunnerState`` at their own pace and may subscribe
to events with ``add_listener``. Nothing here draws or prints.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np

from device.errors import LinkClosedError, MassagectlError
from device.routines import ResumeKind, Routine, StepKind, StepUnit
from device.session import DeviceSession, SampleBatch
from device.vibration import CommandCoalescer, PatternPlayer, get_pattern
from dsp.decisions import Decision, SafetyState
from dsp.events import Cause, EventKind
from dsp.pipeline import BatchResult, ForcePipeline
from firmware_bridge.messages import StatusFlags

#: Host seconds between supervisor ticks (DESIGN.md: at least every 50 ms).
TICK_S = 0.05
#: Real host seconds of scheduling jitter the stale-stream timer always allows. Under
#: ``--speed K`` the timer is scaled by K (DESIGN.md) but never below this much real time.
STALE_REAL_FLOOR_S = 0.04
#: A press-and-hold unit with no completed hold ends after hold_max + this (device time).
HOLD_TIMEOUT_EXTRA_S = 30.0
#: Shorter passes through the band (force on its way somewhere else) are not holds.
MIN_REPORTED_HOLD_S = 0.3
#: A unit that was stopped this many times ends (and the routine goes on).
MAX_RESTARTS_PER_UNIT = 3
#: Advice given when the user reports pain, dizziness or tingling during a session.
SYMPTOM_ADVICE = (
    "Session ended. Pain, dizziness or tingling during a massage is a reason to stop: rest, "
    "and do not start again today. If it came with numbness or weakness in an arm or hand, a "
    "severe headache, trouble seeing, or it does not settle, get medical help now; otherwise "
    "talk to a doctor before the next session."
)
EASE_OFF_PROMPT = "Too much pressure for this spot: ease off now."


class RunEnd(StrEnum):
    COMPLETED = "completed"
    USER_STOP = "user_stop"
    SYMPTOM = "user_reported_symptom"
    STOP_POLICY = "ended_by_stop_policy"
    LINK_LOST = "link_lost"
    INTERRUPTED = "interrupted"
    ERROR = "error"


@dataclass
class UnitResult:
    """What happened in one unit (a step at one side, position and repetition)."""

    label: str
    step_id: str
    kind: str
    zone: str
    limit_n: float
    band_n: tuple[float, float] | None
    started_t_s: float = 0.0
    ended_t_s: float = 0.0
    completed: bool = False
    restarts: int = 0
    holds: list[dict] = field(default_factory=list)
    time_in_band_s: float = 0.0
    peak_n: float = 0.0
    stops: list[dict] = field(default_factory=list)
    fast_releases: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "step_id": self.step_id,
            "kind": self.kind,
            "zone": self.zone,
            "limit_n": self.limit_n,
            "band_n": list(self.band_n) if self.band_n else None,
            "started_t_s": round(self.started_t_s, 4),
            "ended_t_s": round(self.ended_t_s, 4),
            "completed": self.completed,
            "restarts": self.restarts,
            "holds": self.holds,
            "time_in_band_s": round(self.time_in_band_s, 3),
            "peak_n": round(self.peak_n, 3),
            "stops": self.stops,
            "fast_releases": self.fast_releases,
        }


@dataclass
class RunSummary:
    routine: str
    end: RunEnd = RunEnd.COMPLETED
    message: str = ""
    units: list[UnitResult] = field(default_factory=list)
    vibration_s: float = 0.0
    stops: int = 0
    advice: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "routine": self.routine,
            "end": str(self.end),
            "message": self.message,
            "advice": self.advice,
            "vibration_s": round(self.vibration_s, 3),
            "stops": self.stops,
            "units": [u.to_dict() for u in self.units],
        }


@dataclass
class RunnerState:
    """A snapshot for faces; updated on every batch and step change."""

    unit: StepUnit | None = None
    unit_number: int = 0
    unit_count: int = 0
    instruction: str = ""
    prompt: str = ""
    t_s: float = 0.0
    unit_started_t_s: float = 0.0
    unit_deadline_t_s: float | None = None
    force_n: float = 0.0
    filtered_n: float = 0.0
    safety: SafetyState = SafetyState.ARMED
    alarm: str = ""
    hold_s: float = 0.0
    hold_min_s: float | None = None
    hold_max_s: float | None = None
    vibration_pct: float = 0.0
    link_kind: str = ""
    battery_pct: int | None = None
    rate_hz: float = 0.0
    missed_batches: int = 0
    crc_errors: int = 0
    latency_s: float = 0.0
    waiting_rearm: bool = False
    finished: bool = False


Listener = Callable[[dict], None]
BatchListener = Callable[[SampleBatch, BatchResult], None]


class _End(Exception):
    """Internal: the session ends now (reason in ``end``)."""

    def __init__(self, end: RunEnd, message: str = "") -> None:
        super().__init__(message)
        self.end = end
        self.message = message


class RoutineRunner:
    """Runs ``routine`` on an open ``session``.

    ``unattended``: nobody is there to re-arm; a stop resumes by the step's policy when it is
    ``auto_after_reset`` and otherwise after force has reset (``ask`` needs a person: the
    unattended runner treats it as auto with no extra wait). ``speed``: simulation speed (the
    host's timers are scaled by it; only for simulated devices).
    """

    def __init__(
        self,
        session: DeviceSession,
        routine: Routine,
        pipeline: ForcePipeline,
        *,
        unattended: bool = False,
        speed: float = 1.0,
        motor_hz: int = 0,
        screening: dict | None = None,
    ) -> None:
        self.session = session
        self.routine = routine
        self.pipeline = pipeline
        self.unattended = unattended
        self.speed = speed
        self.motor_hz = motor_hz
        self.screening = screening
        self.units = list(routine.units())
        pipeline.supervisor.stale_floor_s = STALE_REAL_FLOOR_S * speed if speed > 1 else 0.0
        self.state = RunnerState(unit_count=len(self.units), link_kind=session.link.kind)
        self.summary = RunSummary(routine.name)
        self.coalescer = CommandCoalescer(self._send_vibrate, self._send_stop)
        self.player = PatternPlayer(self.coalescer)
        self._listeners: list[Listener] = []
        self._batch_listeners: list[BatchListener] = []
        self._changed = asyncio.Event()
        self._rearm_requested = False
        self._end_request: _End | None = None
        self._unit: UnitResult | None = None
        self._hold_open_since: float | None = None
        self._last_flags = 0
        self._last_crc = 0
        self._t0_host = time.monotonic()
        self._tasks: list[asyncio.Task] = []
        self._stop_event_t_s: float | None = None
        self.stop_latency_s: list[float] = []

    # ---- subscriptions --------------------------------------------------------------------

    def add_listener(self, fn: Listener) -> None:
        """``fn(event_dict)`` for every event (step, hold, stop, command, link...)."""
        self._listeners.append(fn)

    def add_batch_listener(self, fn: BatchListener) -> None:
        """``fn(batch, result)`` for every batch after the pipeline ran (recorder, plots)."""
        self._batch_listeners.append(fn)

    # ---- controls for faces ---------------------------------------------------------------

    def request_rearm(self) -> None:
        """The user says go on after a stop (applied when force has reset)."""
        self._rearm_requested = True
        self._changed.set()

    def user_stop(self) -> None:
        """The STOP key: Stop goes out at once and the session ends."""
        self._request_end(_End(RunEnd.USER_STOP, "stopped by the user"), Cause.USER_STOP)

    def report_symptom(self, symptom: str = "pain, dizziness or tingling") -> None:
        """The "pain, dizziness or tingling" key: Stop at once, end with advice."""
        self.summary.advice = SYMPTOM_ADVICE
        self._request_end(
            _End(RunEnd.SYMPTOM, f"you reported {symptom}"),
            Cause.USER_REPORTED_SYMPTOM,
            {"symptom": symptom},
        )

    def _request_end(self, end: _End, cause: Cause, detail: dict | None = None) -> None:
        if self._end_request is not None:
            return
        self._end_request = end
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._stop_now(cause, detail or {}), name="user-stop")
        self._tasks.append(task)
        self._changed.set()

    async def _stop_now(self, cause: Cause, detail: dict) -> None:
        await self._halt_vibration()
        self._emit(
            Decision(EventKind.STOP, cause, self.state.t_s, 0.0, self.state.filtered_n, detail)
        )

    # ---- host time ------------------------------------------------------------------------

    def host_s(self) -> float:
        """Host time for the supervisor: seconds since start, scaled by the simulation speed
        so that its stale-stream timer runs in the same time as the simulated device."""
        return (time.monotonic() - self._t0_host) * self.speed

    # ---- sending --------------------------------------------------------------------------

    async def _send_vibrate(self, intensity_pct: float, frequency_hz: int) -> None:
        if intensity_pct <= 0:
            await self.session.stop_motor()
        else:
            await self.session.vibrate(intensity_pct, frequency_hz)
        self._emit_command("vibrate", intensity_pct=intensity_pct, frequency_hz=frequency_hz)

    async def _send_stop(self) -> None:
        await self.session.stop_motor()
        self._emit_command("stop")

    async def _halt_vibration(self) -> None:
        """Stop first: cancel any pending Vibrate and send Stop at once."""
        self.player.silence()
        self.pipeline.set_vibration(0.0, None)
        self.state.vibration_pct = 0.0
        await self.coalescer.stop()

    def _emit_command(self, name: str, **detail) -> None:
        self._emit(
            Decision(
                EventKind.COMMAND_SENT,
                None,
                self.state.t_s,
                0.0,
                self.state.filtered_n,
                {"command": name, **detail},
            )
        )

    def _emit(self, d: Decision) -> None:
        event = d.to_dict()
        event["t_host_s"] = round(time.monotonic() - self._t0_host, 6)
        if self._unit is not None:
            event.setdefault("unit", self._unit.label)
        for fn in self._listeners:
            fn(event)

    # ---- the run --------------------------------------------------------------------------

    async def run(self) -> RunSummary:
        """Run every unit; always ends with the motor stopped. Returns the summary."""
        loop = asyncio.get_running_loop()
        stream = loop.create_task(self._stream_loop(), name="runner-stream")
        ticker = loop.create_task(self._tick_loop(), name="runner-tick")
        self._tasks += [stream, ticker]
        try:
            if self.screening is not None:
                self._emit(
                    Decision(
                        EventKind.SCREENING,
                        None,
                        0.0,
                        0.0,
                        0.0,
                        {"passed": bool(self.screening.get("passed", True))},
                    )
                )
            await self._wait_until(lambda: self.state.t_s > 0.0, None)
            for number, unit in enumerate(self.units, start=1):
                await self._run_unit(number, unit)
            self.summary.end = RunEnd.COMPLETED
            self.summary.message = "routine completed"
        except _End as end:
            self.summary.end = end.end
            self.summary.message = end.message
        except LinkClosedError as exc:
            self.summary.end = RunEnd.LINK_LOST
            self.summary.message = str(exc)
        except asyncio.CancelledError:
            self.summary.end = RunEnd.INTERRUPTED
            self.summary.message = "interrupted"
            await self._final_stop()
            raise
        except BaseException as exc:
            self.summary.end = RunEnd.ERROR
            self.summary.message = f"{type(exc).__name__}: {exc}"
            await self._final_stop()
            raise
        finally:
            if self.summary.end is not RunEnd.INTERRUPTED and self.summary.end is not RunEnd.ERROR:
                await self._final_stop()
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                try:
                    await task
                except (asyncio.CancelledError, LinkClosedError):
                    pass
            self._finish_unit(completed=False)
            self.summary.vibration_s = self.pipeline.supervisor.vibration_s
            self.state.finished = True
        return self.summary

    async def _final_stop(self) -> None:
        try:
            await self._halt_vibration()
        except (LinkClosedError, MassagectlError):
            # The link is gone: the firmware's deadman stops the motor within 500 ms.
            pass

    async def _run_unit(self, number: int, unit: StepUnit) -> None:
        restarts = 0
        while True:
            self._start_unit(number, unit, restarts)
            await self._prepare_unit(unit)
            outcome = await self._drive_unit(unit)
            if outcome == "done":
                self._finish_unit(completed=True)
                break
            if outcome == "timeout":
                self._finish_unit(completed=False)
                break
            # stopped: wait until it may resume, then the unit starts over
            restarts += 1
            await self._wait_for_resume(unit)
            if restarts >= MAX_RESTARTS_PER_UNIT:
                self._finish_unit(completed=False)
                break
        if unit.step.rest_s and self._more_units_after(number):
            await self._rest(unit.step.rest_s)

    def _more_units_after(self, number: int) -> bool:
        return number < len(self.units)

    def _start_unit(self, number: int, unit: StepUnit, restarts: int) -> None:
        if self._unit is not None and self._unit.label == unit.label and restarts:
            result = self._unit
            result.restarts = restarts
        else:
            result = UnitResult(
                unit.label,
                unit.step.id,
                str(unit.step.kind),
                unit.zone_name,
                unit.limit_n,
                unit.band_n,
                started_t_s=self.state.t_s,
            )
            self.summary.units.append(result)
        self._unit = result
        self._hold_open_since = None
        st = self.state
        st.unit, st.unit_number = unit, number
        st.instruction = unit.instruction
        st.prompt = ""
        st.unit_started_t_s = self.state.t_s
        st.hold_s = 0.0
        st.hold_min_s, st.hold_max_s = unit.step.hold_min_s, unit.step.hold_max_s

    async def _prepare_unit(self, unit: StepUnit) -> None:
        step = unit.step
        hold = None
        if unit.band_n is not None and step.kind is StepKind.PRESS_AND_HOLD:
            hold = (step.hold_min_s, step.hold_max_s, step.release_s)
        self.pipeline.set_zone(unit.zone, band=unit.band_n, hold=hold)
        await self.session.set_limit(unit.zone.ceiling_n)
        self._emit(
            Decision(
                EventKind.STEP_STARTED,
                None,
                self.state.t_s,
                0.0,
                self.state.filtered_n,
                {
                    "step": step.id,
                    "kind": str(step.kind),
                    "zone": unit.zone_name,
                    "limit_n": unit.limit_n,
                    "band_n": list(unit.band_n or ()),
                    "side": str(unit.side),
                    "vibration_pct": unit.vibration.intensity_pct,
                    "pattern": unit.vibration.pattern,
                    "motor_hz": self.motor_hz,
                },
            )
        )
        self.session.link.announce_step(self._step_data(unit))
        vib = unit.vibration
        pattern = get_pattern(vib.pattern) if vib.is_on else None
        self.player.play(pattern, vib.intensity_pct if vib.is_on else 0.0, self.motor_hz)

    def _step_data(self, unit: StepUnit) -> dict:
        step = unit.step
        return {
            "kind": str(step.kind),
            "zone": unit.zone_name,
            "band_n": list(unit.band_n) if unit.band_n else None,
            "limit_n": unit.limit_n,
            "hold_min_s": step.hold_min_s,
            "hold_max_s": step.hold_max_s,
            "release_s": step.release_s,
            "duration_s": self._unit_duration_s(unit),
            "technique": str(step.technique) if step.technique else None,
            "label": unit.label,
        }

    def _unit_duration_s(self, unit: StepUnit) -> float | None:
        step = unit.step
        if step.kind in (StepKind.CUE, StepKind.AFTERCARE):
            return float(step.duration_s or 0.0)
        if step.kind in (StepKind.TIMED_PRESSURE, StepKind.STRETCH):
            return step.nominal_hold_s or float(step.duration_s or 0.0)
        return None

    async def _drive_unit(self, unit: StepUnit) -> str:
        """Wait in device time until the unit is done ("done"), stopped ("stopped") or out of
        time ("timeout")."""
        step = unit.step
        start = self.state.t_s
        if step.kind is StepKind.PRESS_AND_HOLD:
            limit_s = (step.hold_max_s or 30.0) + HOLD_TIMEOUT_EXTRA_S
            self.state.unit_deadline_t_s = None
            done = self._hold_completed
        else:
            duration = self._unit_duration_s(unit) or 0.0
            limit_s = duration
            self.state.unit_deadline_t_s = start + duration
            done = None
        finished = await self._wait_until(
            lambda: self.pipeline.supervisor.latched or (done is not None and done()),
            start + limit_s,
        )
        if self.pipeline.supervisor.latched:
            return "stopped"
        # A timed unit is done when its time is up; a hold unit when its hold completed.
        return "done" if done is None or finished else "timeout"

    def _hold_completed(self) -> bool:
        u = self._unit
        return bool(u and any(h.get("reached_min") and h.get("end_s") is not None for h in u.holds))

    async def _wait_for_resume(self, unit: StepUnit) -> None:
        policy = unit.step.resume
        if policy.kind is ResumeKind.END:
            raise _End(RunEnd.STOP_POLICY, f"stopped in {unit.label}; this step ends on a stop")
        self.state.waiting_rearm = True
        auto = self.unattended or policy.kind is ResumeKind.AUTO_AFTER_RESET
        extra_s = (policy.after_s or 0.0) if policy.kind is ResumeKind.AUTO_AFTER_RESET else 0.0
        self._rearm_requested = False
        if not auto:
            self.state.prompt = "Stopped. Ease off; press R to go on when ready."
        while True:
            ok = await self._wait_until(
                lambda: (
                    (auto or self._rearm_requested)
                    and self.pipeline.supervisor.can_rearm(self.state.t_s)
                ),
                None,
            )
            if ok and self.pipeline.rearm(self.state.t_s):
                break
        self.state.waiting_rearm = False
        self.state.alarm = ""
        self.state.prompt = ""
        if extra_s:
            await self._rest(extra_s)

    async def _rest(self, rest_s: float) -> None:
        self.player.play(None, 0.0)
        self.pipeline.set_zone(self.pipeline.zone)
        self.state.prompt = "Rest."
        self.state.unit_deadline_t_s = self.state.t_s + rest_s
        await self._wait_until(lambda: False, self.state.t_s + rest_s)
        self.state.prompt = ""

    def _finish_unit(self, completed: bool) -> None:
        u = self._unit
        if u is None:
            return
        u.completed = completed
        u.ended_t_s = self.state.t_s
        # A hold still open when the unit ends (timed pressure) ends with it.
        for h in u.holds:
            if h["end_s"] is None:
                h["end_s"] = round(self.state.t_s, 4)
                h["duration_s"] = round(self.state.t_s - h["start_s"], 4)
        u.holds = [h for h in u.holds if h["duration_s"] >= MIN_REPORTED_HOLD_S]
        self._emit(
            Decision(
                EventKind.STEP_FINISHED,
                None,
                self.state.t_s,
                0.0,
                self.state.filtered_n,
                {"step": u.step_id, "completed": completed, "restarts": u.restarts},
            )
        )
        self._unit = None

    async def _wait_until(self, cond: Callable[[], bool], deadline_t_s: float | None) -> bool:
        """Wait until ``cond()`` (True) or device time reaches ``deadline_t_s`` (False).
        Raises the pending end request, if any."""
        while True:
            if self._end_request is not None:
                raise self._end_request
            if cond():
                return True
            if deadline_t_s is not None and self.state.t_s >= deadline_t_s:
                return False
            self._changed.clear()
            await self._changed.wait()

    # ---- the stream -----------------------------------------------------------------------

    async def _stream_loop(self) -> None:
        try:
            async for batch in self.session.batches():
                await self._on_batch(batch)
        except LinkClosedError as exc:
            await self._on_link_lost(exc)
            return
        await self._on_link_lost(LinkClosedError(f"{self.session.link.url}: stream ended"))

    async def _on_link_lost(self, exc: LinkClosedError) -> None:
        self._emit(
            Decision(
                EventKind.LINK_LOST,
                Cause.LINK_LOST,
                self.state.t_s,
                0.0,
                self.state.filtered_n,
                {"error": str(exc)},
            )
        )
        if self._end_request is None:
            self._end_request = _End(RunEnd.LINK_LOST, f"link lost: {exc}")
        self._changed.set()

    async def _on_batch(self, batch: SampleBatch) -> None:
        crc = self.session.link.stats.crc_errors
        result = self.pipeline.on_batch(
            batch.t_s,
            batch.raw_counts,
            self.host_s(),
            seq_gap=batch.gap,
            crc_errors=crc - self._last_crc,
        )
        self._last_crc = crc
        t_last = float(batch.t_s[-1])
        st = self.state
        st.t_s = t_last
        st.force_n = float(result.force_n[-1])
        st.filtered_n = float(result.filtered_n[-1])
        decisions = list(result.events) + self._firmware_flags(t_last)
        for d in decisions:
            await self._on_decision(d)
        # vibration follows the pattern, capped by the zone, and nothing while latched
        cap = self.pipeline.supervisor.allowed_intensity_pct(100.0)
        if self._end_request is None:
            pct = self.player.update(t_last, cap)
            if pct != st.vibration_pct:
                st.vibration_pct = pct
                self.pipeline.set_vibration(pct, self.motor_hz or None if pct > 0 else None)
        self._account(batch, result)
        st.safety = self.pipeline.state
        st.missed_batches = self.session.counters.missed_batches
        st.crc_errors = crc
        st.rate_hz = batch.rate_hz
        st.latency_s = time.monotonic() - batch.t_host_s
        if self.session.status is not None:
            st.battery_pct = self.session.status.battery_pct
        for fn in self._batch_listeners:
            fn(batch, result)
        self._changed.set()

    def _firmware_flags(self, t_s: float) -> list[Decision]:
        """Stops the firmware reported on its own (hard limit, deadman) become events."""
        status = self.session.status
        if status is None:
            return []
        new = status.flags & ~self._last_flags
        self._last_flags = status.flags
        out = []
        if new & StatusFlags.LIMIT_TRIPPED:
            out.append(
                Decision(EventKind.STOP, Cause.FIRMWARE_LIMIT, t_s, 0.0, self.state.filtered_n, {})
            )
        if new & StatusFlags.KEEPALIVE_LOST:
            out.append(
                Decision(EventKind.FAULT, Cause.KEEPALIVE_LOST, t_s, 0.0, self.state.filtered_n, {})
            )
        return out

    async def _on_decision(self, d: Decision) -> None:
        if d.kind in (EventKind.STOP, EventKind.FAULT):
            was_vibrating = self.state.vibration_pct > 0 or self.coalescer.sent not in (
                None,
                (0.0, 0),
            )
            detected_host_s = time.monotonic()
            await self._halt_vibration()
            self.stop_latency_s.append(time.monotonic() - detected_host_s)
            if d.cause in (Cause.FIRMWARE_LIMIT, Cause.KEEPALIVE_LOST):
                # make the host supervisor latch too, so re-arming follows the same rules
                self.pipeline.supervisor.state = (
                    SafetyState.FAULT if d.kind is EventKind.FAULT else SafetyState.STOPPED
                )
            self.summary.stops += 1
            self.state.alarm = str(d.cause) if d.cause else str(d.kind)
            if not was_vibrating and d.kind is EventKind.STOP:
                self.state.prompt = EASE_OFF_PROMPT
            if self._unit is not None:
                self._unit.stops.append(
                    {
                        "cause": str(d.cause),
                        "t_s": round(d.t_s, 4),
                        "detection_delay_s": round(d.detection_delay_s, 4),
                        "was_vibrating": was_vibrating,
                    }
                )
            self._emit(replace(d, detail={**d.detail, "was_vibrating": was_vibrating}))
            return
        if self._unit is not None:
            self._track_hold(d)
        if d.kind is EventKind.WARNING:
            self.state.alarm = ""
        self._emit(d)

    def _track_hold(self, d: Decision) -> None:
        u = self._unit
        if d.kind is EventKind.HOLD_STARTED:
            u.holds.append(
                {
                    "start_s": round(d.t_s, 4),
                    "end_s": None,
                    "duration_s": None,
                    "reached_min": False,
                    "passed_max": False,
                }
            )
            self._hold_open_since = d.t_s
        elif d.kind is EventKind.HOLD_REACHED_MIN and u.holds:
            u.holds[-1]["reached_min"] = True
            self.state.prompt = "Hold reached: release slowly."
        elif d.kind is EventKind.HOLD_PASSED_MAX and u.holds:
            u.holds[-1]["passed_max"] = True
            self.state.prompt = "That is long enough: release slowly now."
        elif d.kind is EventKind.HOLD_ENDED and u.holds:
            h = u.holds[-1]
            start = d.detail.get("start_s", h["start_s"])
            end = d.detail.get("end_s", d.t_s)
            h["start_s"], h["end_s"] = round(start, 4), round(end, 4)
            h["duration_s"] = round(d.detail.get("duration_s", end - start), 4)
            self._hold_open_since = None
        elif d.kind is EventKind.FAST_RELEASE:
            u.fast_releases += 1
            self.state.prompt = "Released too fast: let go more slowly next time."

    def _account(self, batch: SampleBatch, result: BatchResult) -> None:
        u = self._unit
        if u is None:
            return
        f = result.filtered_n
        u.peak_n = max(u.peak_n, float(np.max(result.force_n)) if len(f) else 0.0)
        if u.band_n is not None:
            lo, hi = u.band_n
            u.time_in_band_s += float(np.count_nonzero((f >= lo) & (f <= hi))) / batch.rate_hz
        if self._hold_open_since is not None:
            self.state.hold_s = self.state.t_s - self._hold_open_since

    async def _tick_loop(self) -> None:
        period = TICK_S / self.speed
        while True:
            await asyncio.sleep(period)
            for d in self.pipeline.tick(self.host_s()):
                await self._on_decision(d)
            self._changed.set()
