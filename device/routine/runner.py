"""The routine runner: walks a routine's units on a supervised device session.

Per unit it sets the zone, band and hold timing in the pipeline, the firmware's hard limit
(``SetLimit`` at the zone's ceiling: the firmware is the backstop, the host acts first at the
limit), tells a simulated person what to do, plays the vibration pattern and waits, in device
time, until the unit is done. The safety loop itself (every batch through the pipeline, Stop
first on a stop or fault, the host-time tick) is ``device.control.supervised.SupervisedSession``.

A stop pauses the unit. It resumes after the user re-arms (``request_rearm``), or with an
unattended policy once force has stayed under the reset threshold for the policy's time; the
unit then starts over. A pause (``pause``/``resume``) sets the unit aside and starts it over
too. Starting over is a new attempt: a hold made before the stop or pause does not complete
it. A unit with a target band that the person does not press into within ``REACH_BAND_S``
ends early with the outcome ``band_not_reached`` (vibration off): nothing vibrates for
minutes on a ball nobody presses. When a lighter zone comes next, the runner waits for the
person to let go first, in the zone the ball is still in (vibration off, the unit not begun).

A unit's window (its peak, time in band, holds and stops) runs from its ``step_started`` to
its ``step_finished`` event, pauses and restarts included: the same windows
``device.routine.timeline`` cuts a recording into, so the live summary and ``analyze`` of
the recording see the same samples.

``report_symptom`` ends the session at once with advice; ``user_stop`` ends it. On Ctrl-C,
an exception or a lost link: Stop first, then the summary is finished.

Faces read ``runner.state`` at their own pace and subscribe with ``add_listener`` /
``add_batch_listener``. Nothing here draws or prints.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from device.control.supervised import SupervisedSession
from device.control.vibration import get_pattern
from device.errors import LinkClosedError
from device.routine.routines import ResumeKind, Routine, StepKind, StepUnit
from device.session.device_session import DeviceSession, SampleBatch
from dsp.events import (
    Cause,
    CommandSent,
    Event,
    FastRelease,
    Fault,
    HoldEnded,
    HoldPassedMax,
    HoldReachedMin,
    HoldStarted,
    Screening,
    StepFinished,
    StepOutcome,
    StepPaused,
    StepStarted,
    Stop,
)
from dsp.pipeline import BatchResult, ForcePipeline
from dsp.session_summary import MIN_REPORTED_HOLD_S  # passes through the band are not holds

#: A press-and-hold unit with no completed hold ends after hold_max + this (device time).
#: said on a step that would vibrate, on a device without a motor
NO_MOTOR_PROMPT = "This device has no motor: this step runs without vibration (pressure only)."

HOLD_TIMEOUT_EXTRA_S = 30.0
#: A unit with a target band that was not pressed into within this time (device seconds from
#: its start) ends with the outcome ``band_not_reached`` (docs/routines.md: why).
REACH_BAND_S = 20.0
#: The prompt when the person has not reached the band after this long.
REACH_BAND_PROMPT_S = 5.0
#: Auto-zero at the end of a rest: the pipeline re-zeroes on the last AUTO_ZERO_WINDOW_S of
#: raw counts when every filtered sample is within ``dsp.calibration.AUTO_ZERO_MAX_N`` of
#: zero (the bound drift tracking uses, so a real light press is never zeroed away by more
#: than that) and the window is quiet (``ForcePipeline.auto_zero``).
AUTO_ZERO_WINDOW_S = 0.5
#: A unit that was stopped this many times ends (and the routine goes on).
MAX_RESTARTS_PER_UNIT = 3
#: Advice given when the user reports pain, dizziness or tingling during a session.
SYMPTOM_ADVICE = (
    "Session ended. Pain, dizziness or tingling during a massage is a reason to stop: rest, "
    "and do not start again today. If it came with numbness or weakness in an arm or hand, a "
    "severe headache, trouble seeing, or it does not settle, get medical help now; otherwise "
    "talk to a doctor before the next session."
)


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
    #: how it ended: a ``dsp.events.StepOutcome`` value ("" while it runs)
    outcome: str = ""
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
            "outcome": self.outcome,
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

    @property
    def not_reached(self) -> int:
        """Units that ended because their band was never reached."""
        return sum(u.outcome == StepOutcome.BAND_NOT_REACHED for u in self.units)

    def to_dict(self) -> dict[str, Any]:
        return {
            "routine": self.routine,
            "end": str(self.end),
            "units_not_reached": self.not_reached,
            "message": self.message,
            "advice": self.advice,
            "vibration_s": round(self.vibration_s, 3),
            "stops": self.stops,
            "units": [u.to_dict() for u in self.units],
        }


class _Paused(Exception):
    """Internal: the person paused; the unit stops and starts over on resume."""


class _End(Exception):
    """Internal: the session ends now (reason in ``end``)."""

    def __init__(self, end: RunEnd, message: str = "") -> None:
        super().__init__(message)
        self.end = end
        self.message = message


class RoutineRunner:
    """Runs ``routine`` on an open ``session``.

    ``unattended``: nobody is there to re-arm; a stop resumes once force has reset (plus the
    step's ``after_s`` for ``auto_after_reset``); ``end`` still ends. Time (speed, timers) is
    the session's time base.
    """

    def __init__(
        self,
        session: DeviceSession,
        routine: Routine,
        pipeline: ForcePipeline,
        *,
        unattended: bool = False,
        motor_hz: int = 0,
        screening: dict | None = None,
        zones: dict | None = None,
        live: SupervisedSession | None = None,
    ) -> None:
        self.session = session
        self.routine = routine
        self.pipeline = pipeline
        self.unattended = unattended
        self.screening = screening
        #: the supervised loop: a run's (``device.control.run``), or one of our own
        self.live = live or SupervisedSession(session, pipeline, motor_hz=motor_hz)
        self.live.add_decision_hook(self._on_decision)
        self.live.add_batch_listener(self._account)
        #: every unit with its effective zone: the profile's table when one is in force
        self.units = list(routine.units(zones))
        self.state = self.live.state
        self.state.unit_count = len(self.units)
        self.summary = RunSummary(routine.name)
        self._rearm_requested = False
        self._end_request: _End | None = None
        #: paused by the person: vibration off, supervision on, the unit waits
        self.paused = False
        self._pausable = False
        self._unit: UnitResult | None = None
        #: the current attempt of the unit: its first hold's index, whether the band in force
        #: (None while paused or between units) was reached
        self._attempt_first_hold = 0
        self._band_now: tuple[float, float] | None = None
        self._band_reached = False
        self._hold_open_since: float | None = None
        self._user_tasks: list[asyncio.Task] = []
        self._recent_raw: deque[np.ndarray] = deque()
        self._recent_filtered: deque[np.ndarray] = deque()
        self.auto_zeros = 0

    # ---- subscriptions and controls -------------------------------------------------------

    def add_listener(self, fn: Callable[[Event], None]) -> None:
        """``fn(event)`` for every event (a ``dsp.events`` type: step, hold, stop, command,
        link...)."""
        self.live.add_listener(fn)

    def add_batch_listener(self, fn: Callable[[SampleBatch, BatchResult], None]) -> None:
        """``fn(batch, result)`` for every batch after the pipeline ran (recorder, plots)."""
        self.live.add_batch_listener(fn)

    @property
    def stop_latency_s(self) -> list[float]:
        return self.live.stop_latency_s

    def request_rearm(self) -> None:
        """The user says go on after a stop (applied once force has reset)."""
        self._rearm_requested = True
        self.live.changed.set()

    def pause(self) -> None:
        """Pause the routine: vibration stops at once (supervision goes on); the current
        unit is set aside and starts over on ``resume``."""
        if self.paused or self._end_request is not None:
            return
        self.paused = True
        self.live.vibration_enabled = False
        self.state.prompt = "Paused. Resume when you are ready."
        task = asyncio.get_running_loop().create_task(self.live.halt_vibration(), name="pause")
        self._user_tasks.append(task)
        self.live.changed.set()

    def resume(self) -> None:
        """Go on after ``pause``: the unit that was paused starts over."""
        if not self.paused:
            return
        self.paused = False
        self.live.vibration_enabled = True
        self.state.prompt = ""
        self.live.changed.set()

    def user_stop(self) -> None:
        """The STOP key: Stop goes out at once and the session ends."""
        self._request_end(_End(RunEnd.USER_STOP, "stopped by the user"), Cause.USER_STOP)

    def report_symptom(self, symptom: str = "pain, dizziness or tingling") -> None:
        """The "pain, dizziness or tingling" key: Stop at once, end with advice."""
        self.summary.advice = SYMPTOM_ADVICE
        self._request_end(
            _End(RunEnd.SYMPTOM, f"you reported {symptom}"),
            Cause.USER_REPORTED_SYMPTOM,
            symptom=symptom,
        )

    def _request_end(self, end: _End, cause: Cause, *, symptom: str | None = None) -> None:
        if self._end_request is not None:
            return
        self._end_request = end
        self.live.vibration_enabled = False
        task = asyncio.get_running_loop().create_task(
            self.live.user_stop(cause, symptom=symptom), name="user-stop"
        )
        self._user_tasks.append(task)
        self.live.changed.set()

    # ---- the run --------------------------------------------------------------------------

    async def run(self) -> RunSummary:
        """Run every unit; always ends with the motor stopped. Returns the summary."""
        self.live.start()
        try:
            if self.screening is not None:
                self.live.emit(
                    Screening(
                        t_s=self.state.t_s,
                        force_n=self.state.filtered_n,
                        passed=bool(self.screening.get("passed")),
                        record=self.screening,
                    )
                )
            await self._wait_until(lambda: self.state.t_s > 0.0, None)
            for number, unit in enumerate(self.units, start=1):
                await self._run_unit(number, unit)
            self.summary.end = RunEnd.COMPLETED
            self.summary.message = "routine completed"
            if self.summary.not_reached:
                n, total = self.summary.not_reached, len(self.summary.units)
                self.summary.message += f"; {n} of {total} steps never reached their band"
        except _End as end:
            self.summary.end = end.end
            self.summary.message = end.message
        except LinkClosedError as exc:
            self.summary.end = RunEnd.LINK_LOST
            self.summary.message = str(exc)
        except asyncio.CancelledError:
            self.summary.end = RunEnd.INTERRUPTED
            self.summary.message = "interrupted"
            raise
        except BaseException as exc:
            self.summary.end = RunEnd.ERROR
            self.summary.message = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            # Stop first (close halts vibration before anything else), then the bookkeeping.
            await self.live.close()
            for task in self._user_tasks:
                try:
                    await task
                except (LinkClosedError, asyncio.CancelledError):
                    pass
            self._finish_unit(StepOutcome.SESSION_ENDED)
            self.summary.vibration_s = self.pipeline.supervisor.vibration_s
            self.summary.stops = self.live.stops
            self.state.finished = True
        return self.summary

    async def _run_unit(self, number: int, unit: StepUnit) -> None:
        await self._let_go_before(unit)
        if self.pipeline.supervisor.latched and self.summary.units:
            # stopped between units (letting go, resting), in the zone the ball was in: re-armed
            # there before the unit begins. (Before the first unit the zone in force is only
            # the default; a stop then is the first unit's, re-armed in its zone, as below.)
            await self._rearm(auto=self.unattended)
        restarts = 0
        again = False  # starting over after a pause: the same unit result goes on
        while True:
            # a pause that came while the unit was not running holds its (re)start
            await self._wait_until(lambda: not self.paused, None)
            self._pausable = True  # a pause interrupts a running unit only
            try:
                self._start_unit(number, unit, restarts, again)
                await self._prepare_unit(unit)
                outcome = await self._drive_unit(unit)
            except _Paused:
                self._pausable = False
                await self._wait_while_paused()
                again = True
                if not self.pipeline.supervisor.latched:
                    continue  # the unit starts over
                outcome = None  # stopped while paused: as any stop in the unit
            self._pausable = False
            if outcome is not None:
                self._finish_unit(outcome)
                break
            restarts += 1
            await self._wait_for_resume(unit)
            if restarts >= MAX_RESTARTS_PER_UNIT:
                self._finish_unit(StepOutcome.STOPPED_TOO_OFTEN)
                break
        if unit.step.rest_s and number < len(self.units):
            await self._rest(unit.step.rest_s)

    async def _let_go_before(self, unit: StepUnit) -> None:
        """A lighter zone comes next: the person lets go first, judged meanwhile in the zone
        the ball is still in (switching while they are still releasing would stop them for
        nothing). The unit has not begun: faces show the zone in force, vibration is off,
        and a pause holds the wait."""
        if unit.zone.limit_n >= self.pipeline.zone.limit_n:
            return
        reset_n = unit.zone.reset_n
        if self.state.filtered_n < reset_n and not self.paused:
            return
        self.live.play(None, 0.0)
        self.state.prompt = "Let go fully before the next step."
        await self._wait_until(lambda: self.state.filtered_n < reset_n and not self.paused, None)
        self.state.prompt = ""

    def _start_unit(self, number: int, unit: StepUnit, restarts: int, again: bool) -> None:
        """Begin (or begin again) ``unit``: its result, the pipeline's zone and band, and the
        ``step_started`` event, all between two batches (the unit's window starts here)."""
        if (restarts or again) and self._unit is not None:
            self._unit.restarts = restarts
            self._close_open_holds(self._unit)
        else:
            self._unit = UnitResult(
                unit.label,
                unit.step.id,
                str(unit.step.kind),
                unit.zone_name,
                unit.limit_n,
                unit.band_n,
                started_t_s=self.state.t_s,
            )
            self.summary.units.append(self._unit)
        self._attempt_first_hold = len(self._unit.holds)
        self.live.context = {"unit": unit.label}
        self._hold_open_since = None
        st = self.state
        st.unit, st.unit_number = unit, number
        st.instruction = unit.instruction
        st.prompt = ""
        st.unit_started_t_s = st.t_s
        st.hold_s = 0.0
        st.hold_min_s, st.hold_max_s = unit.step.hold_min_s, unit.step.hold_max_s
        step = unit.step
        hold = None
        if unit.band_n is not None and step.kind is StepKind.PRESS_AND_HOLD:
            hold = (step.hold_min_s, step.hold_max_s, step.release_s)
        self.pipeline.set_zone(unit.zone, band=unit.band_n, hold=hold)
        self._band_now = unit.band_n
        self._band_reached = False
        vib = unit.vibration
        self.live.emit(
            StepStarted(
                t_s=self.state.t_s,
                force_n=self.state.filtered_n,
                step=step.id,
                step_kind=str(step.kind),
                zone=unit.zone_name,
                limit_n=unit.limit_n,
                band_n=unit.band_n,
                side=str(unit.side),
                vibration_pct=vib.intensity_pct if vib.is_on else 0.0,
                pattern=vib.pattern,
                motor_hz=self.live.motor_hz,
                hold_min_s=step.hold_min_s,
                hold_max_s=step.hold_max_s,
                release_s=step.release_s,
            )
        )

    async def _prepare_unit(self, unit: StepUnit) -> None:
        """The firmware's hard limit for the unit's zone, the simulated person told, the
        vibration started."""
        await self.session.set_limit(unit.zone.ceiling_n)
        vib = unit.vibration
        self.session.link.announce_step(self._step_data(unit))
        pattern = get_pattern(vib.pattern) if vib.is_on and vib.pattern is not None else None
        if pattern is not None and not self.live.has_motor:
            # monitor mode: the step runs without its vibration, and says so
            self.state.prompt = NO_MOTOR_PROMPT
            pattern = None
        self.live.play(pattern, vib.intensity_pct)

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

    async def _drive_unit(self, unit: StepUnit) -> StepOutcome | None:
        """Wait in device time until the unit ends; its outcome, or None when it stopped."""
        step = unit.step
        start = self.state.t_s
        if step.kind is StepKind.PRESS_AND_HOLD:
            limit_s = (step.hold_max_s or 30.0) + HOLD_TIMEOUT_EXTRA_S
            self.state.unit_deadline_t_s = None
            done = self._hold_completed
        else:
            limit_s = self._unit_duration_s(unit) or 0.0
            self.state.unit_deadline_t_s = start + limit_s
            done = None
        latched = self.pipeline.supervisor
        banded = unit.band_n is not None
        st = self.state

        def not_reaching() -> bool:
            if not banded or self._band_reached:
                return False
            if st.t_s >= start + REACH_BAND_PROMPT_S and not st.prompt:
                lo, hi = unit.band_n or (0.0, 0.0)
                st.prompt = f"Press a little harder: aim for {lo:g}-{hi:g} N."
            return st.t_s >= start + REACH_BAND_S

        finished = await self._wait_until(
            lambda: latched.latched or (done is not None and done()) or not_reaching(),
            start + limit_s,
        )
        if latched.latched:
            return None
        if banded and not self._band_reached:
            st.prompt = "The target band was not reached: going on."
            return StepOutcome.BAND_NOT_REACHED
        # A timed unit is done when its time is up; a hold unit when its hold completed.
        if done is None or finished:
            return StepOutcome.COMPLETED
        return StepOutcome.HOLD_NOT_COMPLETED

    def _hold_completed(self) -> bool:
        """A hold of this attempt (not one made before a stop or pause) reached its minimum
        and ended."""
        u = self._unit
        if u is None:
            return False
        holds = u.holds[self._attempt_first_hold :]
        return any(h["reached_min"] and h["end_s"] is not None for h in holds)

    async def _wait_for_resume(self, unit: StepUnit) -> None:
        policy = unit.step.resume
        if policy.kind is ResumeKind.END:
            raise _End(RunEnd.STOP_POLICY, f"stopped in {unit.label}; this step ends on a stop")
        auto = self.unattended or policy.kind is ResumeKind.AUTO_AFTER_RESET
        extra_s = (policy.after_s or 0.0) if policy.kind is ResumeKind.AUTO_AFTER_RESET else 0.0
        await self._rearm(auto=auto)
        if extra_s:
            await self._rest(extra_s)

    async def _rearm(self, *, auto: bool) -> None:
        """Wait until the latched stop may be re-armed (force eased off for the reset time)
        and, unless ``auto``, the person asked to go on; then re-arm."""
        self.state.waiting_rearm = True
        self._rearm_requested = False
        if not auto:
            self.state.prompt = "Stopped. Ease off, then press R to go on."
        sup = self.pipeline.supervisor
        while True:
            await self._wait_until(
                lambda: (auto or self._rearm_requested) and sup.can_rearm(self.state.t_s), None
            )
            if self.live.rearm():
                break
        self.state.waiting_rearm = False

    async def _rest(self, rest_s: float) -> None:
        self.live.play(None, 0.0)
        self.pipeline.set_zone(self.pipeline.zone)
        self.state.prompt = "Rest."
        self.state.hold_min_s = self.state.hold_max_s = None
        self.state.unit_deadline_t_s = self.state.t_s + rest_s
        await self._wait_until(lambda: False, self.state.t_s + rest_s)
        self.state.prompt = ""
        self._auto_zero()

    def _auto_zero(self) -> None:
        """Ask the pipeline to re-zero on a quiet, unloaded end of a rest (the sensor's zero
        drifts; holds and limits are judged on force above the true zero)."""
        if not self._recent_raw:
            return
        offset = self.pipeline.auto_zero(
            np.concatenate(self._recent_raw), np.concatenate(self._recent_filtered)
        )
        if offset is None:
            return  # loaded or not quiet: the pipeline kept its zero
        self.auto_zeros += 1
        self.live.emit(
            CommandSent(
                t_s=self.state.t_s,
                force_n=self.state.filtered_n,
                command="auto_zero",
                offset_counts=offset,
            )
        )

    def _finish_unit(self, outcome: StepOutcome) -> None:
        """End the unit (its window ends here): no band from now on, the zone stays."""
        u = self._unit
        if u is None:
            return
        u.completed = outcome is StepOutcome.COMPLETED
        u.outcome = str(outcome)
        u.ended_t_s = self.state.t_s
        self._close_open_holds(u)
        self.pipeline.set_zone(self.pipeline.zone)
        self._band_now = None
        self.live.emit(
            StepFinished(
                t_s=self.state.t_s,
                force_n=self.state.filtered_n,
                step=u.step_id,
                completed=u.completed,
                restarts=u.restarts,
                outcome=str(outcome),
                time_in_band_s=round(u.time_in_band_s, 3) if u.band_n is not None else None,
                peak_n=round(u.peak_n, 3),
            )
        )
        self._unit = None
        self.live.context = {}  # until the next unit: events between units belong to none

    def _close_open_holds(self, u: UnitResult) -> None:
        """A hold still open when its unit ends or restarts ends there."""
        for h in u.holds:
            if h["end_s"] is None:
                h["end_s"] = round(self.state.t_s, 4)
                h["duration_s"] = round(self.state.t_s - h["start_s"], 4)
        u.holds = [h for h in u.holds if h["duration_s"] >= MIN_REPORTED_HOLD_S]
        self._hold_open_since = None

    async def _wait_while_paused(self) -> None:
        u = self._unit
        if u is None:  # a pause interrupts a running unit only
            raise RuntimeError("routine paused with no unit running")
        self._close_open_holds(u)
        self.live.play(None, 0.0)
        # no band while paused (no hold, no time in band); the zone and supervision stay
        self.pipeline.set_zone(self.pipeline.zone)
        self._band_now = None
        st = self.state
        self.live.emit(StepPaused(t_s=st.t_s, force_n=st.filtered_n, step=u.step_id))
        await self._wait_until(lambda: not self.paused, None)

    async def _wait_until(self, cond: Callable[[], bool], deadline_t_s: float | None) -> bool:
        """Wait until ``cond()`` (True) or device time reaches ``deadline_t_s`` (False).
        Raises the pending end request, LinkClosedError when the link is gone, and (while
        a unit runs) _Paused when the person pauses."""
        changed = self.live.changed
        while True:
            if self._end_request is not None:
                raise self._end_request
            if self._pausable and self.paused:
                raise _Paused
            if self.live.failure is not None:
                raise self.live.failure
            if self.live.link_error is not None:
                raise self.live.link_error
            if cond():
                return True
            if deadline_t_s is not None and self.state.t_s >= deadline_t_s:
                return False
            changed.clear()
            await changed.wait()

    # ---- bookkeeping from the safety loop -------------------------------------------------

    def _on_decision(self, d: Event) -> None:
        u = self._unit
        if u is None:
            return
        if isinstance(d, Stop | Fault):
            u.stops.append(
                {
                    "cause": str(d.cause),
                    "t_s": round(d.t_s, 4),
                    "detection_delay_s": round(d.detection_delay_s, 4),
                    "was_vibrating": bool(d.was_vibrating),
                }
            )
        elif isinstance(d, HoldStarted):
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
        elif isinstance(d, HoldReachedMin) and u.holds:
            u.holds[-1]["reached_min"] = True
            self.state.prompt = "Hold reached: release slowly."
        elif isinstance(d, HoldPassedMax) and u.holds:
            u.holds[-1]["passed_max"] = True
            self.state.prompt = "That is long enough: release slowly now."
        elif isinstance(d, HoldEnded) and u.holds:
            h = u.holds[-1]
            h["start_s"], h["end_s"] = round(d.start_s, 4), round(d.end_s, 4)
            h["duration_s"] = round(d.duration_s, 4)
            self._hold_open_since = None
        elif isinstance(d, FastRelease):
            u.fast_releases += 1
            self.state.prompt = "Released too fast: let go more slowly next time."

    def _account(self, batch: SampleBatch, result: BatchResult) -> None:
        self._recent_raw.append(batch.raw_counts)
        self._recent_filtered.append(result.filtered_n)
        keep = max(1, round(AUTO_ZERO_WINDOW_S * batch.rate_hz / len(batch.raw_counts)))
        while len(self._recent_raw) > keep:
            self._recent_raw.popleft()
            self._recent_filtered.popleft()
        u = self._unit
        if u is None:
            return
        # the pressing force (filtered): motor leakage and noise are not pressing
        u.peak_n = max(u.peak_n, float(np.max(result.filtered_n)))
        if self._band_now is not None:
            lo, hi = self._band_now
            f = result.filtered_n
            n_in = int(np.count_nonzero((f >= lo) & (f <= hi)))
            u.time_in_band_s += n_in / batch.rate_hz
            if n_in:
                self._band_reached = True
        if self._hold_open_since is not None:
            self.state.hold_s = self.state.t_s - self._hold_open_since
