"""The live window's device side, with no Qt in it: one device session, its safety loop,
an optional routine, and the ring buffers the plot reads.

Outside a routine the controller runs its own ``SupervisedSession`` on the session: every
batch goes through the ``ForcePipeline`` as it arrives and the host-time checks run on an
asyncio tick of at most 50 ms, so the window supervises even when nobody runs a routine; a
stop or fault sends ``Stop`` before anything else. A routine hands the same session and the
same pipeline (filter state and any latched stop carry over) to a ``RoutineRunner``, which
runs its own supervised loop; when it ends the controller's loop starts again. The redraw
timer of the window only reads ``state`` and the ring: nothing safety-related runs on it.

Controls are plain methods that a Qt slot may call directly: each starts its work as an
asyncio task kept in ``_tasks``. A task that fails is never swallowed: its error becomes
``error`` (the window turns red and shows it) and the motor is told to stop.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from device.control.pipeline_factory import live_pipeline
from device.control.run import abandon_recording, log_event
from device.control.supervised import LiveState, SupervisedSession
from device.control.vibration import get_pattern
from device.errors import MassagectlError
from device.routine.progress import Progress, RoutineProgress
from device.routine.routines import Routine
from device.routine.runner import RoutineRunner, RunSummary
from device.screening.gate import ScreeningResult, ensure_screened
from device.session.device_session import DeviceSession, SampleBatch
from device.session.reconnect import open_device_session
from device.timebase import check_face_speed
from device.urls import parse_url
from dsp.decisions import SafetyState
from dsp.events import Cause, CommandSent, Event, describe_cause
from dsp.pipeline import BatchResult, ForcePipeline
from dsp.session_summary import SessionSummary, summarize_session
from dsp.zones import DEFAULT_ZONE, DEFAULT_ZONES, Zone, get_zone
from ui.plot_buffers import ForceRing

#: The ring holds this much history (seconds): the longest window the plot may show.
MAX_WINDOW_S = 120.0
#: Events kept for the window's event list.
EVENT_HISTORY = 50


def _sentence(words: str) -> str:
    """Words that stand alone in the banner start with a capital letter."""
    return words[:1].upper() + words[1:]


class AlarmLevel:
    """How the window colours itself: OK (normal), WARNING (amber), ALARM (red)."""

    OK = "ok"
    WARNING = "warning"
    ALARM = "alarm"


@dataclass(frozen=True)
class Alarm:
    level: str
    text: str


class LiveController:
    """Connects to a device and keeps it supervised; see the module docstring.

    ``speed``: simulation speed for ``sim://`` links (host timers scale by it).
    ``unattended``: routines re-arm by their policy (nobody at the window).
    ``screening``: a passed screening; required before vibration on a real device.
    ``on_error``: called with a message when a background task fails.
    ``zones``: the zone table in force (a profile's, from ``ui.session_setup.zone_table``);
    default the built-in one. The zone picker, the limits, the caps and routines use it.
    """

    def __init__(
        self,
        *,
        speed: float | None = None,
        unattended: bool = False,
        screening: ScreeningResult | None = None,
        max_window_s: float = MAX_WINDOW_S,
        rate_hz: int | None = None,
        zones: Mapping[str, Zone] | None = None,
    ) -> None:
        self.speed = speed
        self.unattended = unattended
        self.screening = screening
        #: the rate asked for (None: the device's own, 1000 Hz within its range)
        self.rate_hz = rate_hz
        self.ring = ForceRing(int(max_window_s * (rate_hz or 1000) * 1.05) + 16)
        self.session: DeviceSession | None = None
        self.pipeline: ForcePipeline | None = None
        self.live: SupervisedSession | None = None
        self.runner: RoutineRunner | None = None
        self.summary: RunSummary | None = None
        self.zones: dict[str, Zone] = dict(DEFAULT_ZONES if zones is None else zones)
        self.zone: Zone = get_zone(DEFAULT_ZONE, self.zones)
        self.pattern_name = "constant"
        self.vibration_pct = 0.0
        self.events: deque[Event] = deque(maxlen=EVENT_HISTORY)
        #: Set when a background task failed (the window shows it in red).
        self.error: str | None = None
        #: The last STOP the user pressed (shown until vibration is started again).
        self.user_stopped = False
        self.on_event: Callable[[Event], None] | None = None
        #: LSL outlets fed with every batch and event (``plot --lsl``), if any
        self.lsl: Any = None
        #: The recording in progress (``device.recording.folder.Recorder``), if any.
        self.recorder = None
        #: Why the last recording stopped on its own (a write failed), if it did.
        self.recording_error: str | None = None
        #: every event of the last routine (for its summary) and its progress
        self.routine_events: list[Event] = []
        self.progress_tracker: RoutineProgress | None = None
        self._tasks: set[asyncio.Task] = set()
        self._routine_task: asyncio.Task | None = None
        self._closing = False
        self._last_state = LiveState()
        self._last_routine: Routine | None = None

    # ---- reading ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.session is not None

    @property
    def state(self) -> LiveState:
        """The snapshot to show: the routine's while one runs, else the window's own loop's."""
        if self.runner is not None:
            return self.runner.state
        if self.live is not None:
            return self.live.state
        return self._last_state

    @property
    def routine_running(self) -> bool:
        return self._routine_task is not None and not self._routine_task.done()

    @property
    def is_simulated(self) -> bool:
        return self.session is not None and self.session.link.is_simulated

    @property
    def current_zone(self) -> Zone:
        """The zone the supervisor judges by now (a routine's unit sets it)."""
        return self.pipeline.zone if self.pipeline is not None else self.zone

    @property
    def vibration_allowed(self) -> bool:
        """Vibration controls may drive the motor: a simulated device, or a passed screening
        by a real person."""
        if self.session is None:
            return False
        try:
            ensure_screened(self.screening, device_is_simulated=self.is_simulated)
        except MassagectlError:
            return False
        return True

    def _clear_for_vibration(self) -> None:
        """Hand the screening to the session, which refuses vibration on a real device
        without a passed one (``ScreeningRefused``): the gate lives below this face."""
        if self.session is None:
            if not self.is_simulated:
                ensure_screened(self.screening, device_is_simulated=False)
            return
        self.session.clear_for_vibration(self.screening)

    def alarm(self) -> Alarm:
        """What colour the window is and why, from the safety state and the loop's health."""
        st = self.state
        if self.error:
            return Alarm(AlarmLevel.ALARM, f"Error: {self.error}")
        if st.link_lost:
            return Alarm(AlarmLevel.ALARM, _sentence(describe_cause(Cause.LINK_LOST)))
        if st.safety in (SafetyState.STOPPED, SafetyState.FAULT):
            what = "FAULT" if st.safety is SafetyState.FAULT else "STOPPED"
            text = describe_cause(st.alarm) or "latched stop"
            return Alarm(AlarmLevel.ALARM, f"{what}: {text}")
        if st.safety is SafetyState.WARNING:
            return Alarm(AlarmLevel.WARNING, "Close to the limit: ease off a little")
        if self.user_stopped:
            return Alarm(AlarmLevel.OK, _sentence(describe_cause(Cause.USER_STOP)))
        return Alarm(AlarmLevel.OK, "")

    def played_pct(self) -> float:
        """The vibration level being played: the pattern's intensity, capped by the zone;
        0 while a stop is latched, while paused, or with nothing playing (a pulse's off
        phases count as playing)."""
        live = self.runner.live if self.runner is not None else self.live
        if live is None or not live.vibration_enabled:
            return 0.0
        return min(live.player.intensity_pct, live.pipeline.supervisor.allowed_intensity_pct(100.0))

    def progress(self) -> Progress | None:
        """The running routine's progress and time left, else None."""
        if self.runner is None or self.progress_tracker is None:
            return None
        return self.progress_tracker.at(self.runner.state)

    def session_summary(self) -> SessionSummary | None:
        """The last routine's summary (dsp.session_summary over its events), else None."""
        if not self.routine_events:
            return None
        return summarize_session(self.routine_events)

    def routine_titles(self) -> dict[str, str]:
        """Step id -> title of the routine running or last run (events name steps by id)."""
        routine = self.runner.routine if self.runner is not None else self._last_routine
        return {s.id: s.title for s in routine.steps} if routine is not None else {}

    def measured_rate_hz(self) -> float:
        """Samples per second of device time over the session."""
        if self.session is None:
            return 0.0
        t = self.state.t_s
        return self.session.counters.samples / t if t > 0 else 0.0

    # ---- connecting ------------------------------------------------------------------------

    async def connect(self, url: str, **link_options: Any) -> None:
        """Open ``url`` (closing any current device first), greet it, start supervising."""
        await self.disconnect()
        self._closing = False
        self.error = None
        check_face_speed(parse_url(url), self.speed)
        # the calibration stored at pairing; ble:// reconnects (device.session.reconnect, issue 5)
        session = open_device_session(url, rate_hz=self.rate_hz, speed=self.speed, **link_options)
        await session.start()
        self.session = session
        self.pipeline = live_pipeline(session, self.zone)  # as the command line's: drift tracked
        self.ring.clear()
        self.events.clear()
        await session.set_limit(self.zone.ceiling_n)
        self._start_own_loop()

    async def disconnect(self) -> None:
        """Stop the motor, end any routine and the loop, close the session. Safe twice."""
        self._closing = True
        if self._routine_task is not None:
            self._routine_task.cancel()
            try:
                await self._routine_task
            except (asyncio.CancelledError, MassagectlError):
                pass
            self._routine_task = None
        if self.live is not None:
            live, self.live = self.live, None
            self._last_state = live.state
            await live.close()
        # not the task running this (connect() disconnects first, and may run as a task)
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, MassagectlError):
                pass
        if self.session is not None:
            session, self.session = self.session, None
            await session.close()
        self.stop_recording()

    def _start_own_loop(self, previous: LiveState | None = None) -> None:
        live = SupervisedSession(self.session, self.pipeline)
        if previous is not None:
            for name in (
                "t_s",
                "force_n",
                "filtered_n",
                "safety",
                "alarm",
                "battery_pct",
                "rate_hz",
                "missed_batches",
                "crc_errors",
                "latency_s",
            ):
                setattr(live.state, name, getattr(previous, name))
        live.add_batch_listener(self._on_batch)
        live.add_listener(self._on_event)
        self.live = live
        live.start()
        if self.vibration_pct > 0 and not self.user_stopped:
            self._play()

    # ---- data from the loops ---------------------------------------------------------------

    def _on_batch(self, batch: SampleBatch, result: BatchResult) -> None:
        self.ring.append(batch.t_s, result.force_n, result.filtered_n)
        if self.lsl is not None:
            self.lsl.on_batch(batch, result)
        if self.recorder is not None:
            self._record(self.recorder.on_batch, batch, result)

    def _on_event(self, event: Event) -> None:
        log_event(event)
        if self.lsl is not None:
            self.lsl.on_event(event)
        if self.recorder is not None:
            self._record(self.recorder.on_event, event)
        if self.runner is not None:
            self.routine_events.append(event)
        if isinstance(event, CommandSent):
            return
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def _record(self, hook: Callable, *args: Any) -> None:
        """Hand data to the recorder. A failed write (disk full, folder gone) follows the
        supervised run's one policy (device.control.run): vibration stops, the run (and any
        routine) ends with the error, which names the file; what was written stays
        readable."""
        try:
            hook(*args)
        except MassagectlError as exc:
            self._recording_failed(exc)

    def _recording_failed(self, exc: MassagectlError) -> None:
        self.recording_error = str(exc)
        recorder, self.recorder = self.recorder, None
        abandon_recording(recorder, exc)
        live = self.runner.live if self.runner is not None else self.live
        if live is not None:
            live.fail(exc)

    # ---- recording -------------------------------------------------------------------------

    def start_recording(self, folder) -> None:
        """Record samples and events into ``folder`` (created; refused if it holds
        anything) until ``stop_recording`` or disconnect."""
        from device.recording.folder import Recorder, session_meta

        if self.session is None:
            raise MassagectlError("not connected to a device")
        if self.recorder is not None:
            raise MassagectlError("already recording")
        screening = self.screening.to_record() if self.screening is not None else None
        routine = self.runner.routine if self.runner is not None else None
        meta = session_meta(self.session, routine=routine, screening=screening, face="window")
        self.recording_error = None
        self.recorder = Recorder.create(folder, meta)
        self.recorder.on_error = self._recording_failed  # a timed flush that fails

    def stop_recording(self) -> None:
        """Finish the recording in progress (with the last routine's summary, if any)."""
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            summary = self.summary.to_dict() if self.summary is not None else None
            recorder.finish(summary)

    # ---- controls --------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine, name: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        self.error = f"{task.get_name()}: {exc}"
        if self.session is not None and not self._closing and task.get_name() != "stop":
            # a failed command leaves the motor in doubt: stop it
            self._spawn(self.session.stop_motor(), "stop")

    def stop_now(self) -> asyncio.Task | None:
        """The STOP button: Stop goes out at once (a task started before this returns);
        a running routine ends; manual vibration stays off until started again."""
        if self.session is None:
            return None
        self.user_stopped = True
        self.vibration_pct = 0.0
        if self.runner is not None:
            self.runner.user_stop()
            return self._spawn(self.session.stop_motor(), "stop")
        if self.live is not None:
            return self._spawn(self.live.user_stop(), "stop")
        return self._spawn(self.session.stop_motor(), "stop")

    def report_symptom(self) -> None:
        """The "pain, dizziness or tingling" key: ends a routine with advice, else stops."""
        if self.runner is not None:
            self.runner.report_symptom()
        elif self.live is not None and self.session is not None:
            self.user_stopped = True
            self.vibration_pct = 0.0
            self._spawn(self.live.user_stop(Cause.USER_REPORTED_SYMPTOM), "stop")

    def rearm(self) -> bool:
        """Go on after a stop: a routine re-arms when force has reset; the window's own loop
        re-arms now if force has stayed under 70 % of the limit for 1 s (False if not)."""
        if self.runner is not None:
            self.runner.request_rearm()
            return True
        return self.live.rearm() if self.live is not None else False

    def set_vibration(self, pattern_name: str, intensity_pct: float) -> None:
        """Manual vibration (no routine): ``pattern_name`` at ``intensity_pct``, capped by the
        zone (and nothing while a stop is latched). Refused on a real device that has not
        been screened (``ScreeningRefused``)."""
        get_pattern(pattern_name)  # a bad name raises here, not in the loop
        if intensity_pct > 0:
            self._clear_for_vibration()
            self.user_stopped = False
        self.pattern_name = pattern_name
        self.vibration_pct = max(0.0, min(float(intensity_pct), self.zone.vibration_cap_pct))
        if self.runner is None:
            self._play()

    def _play(self) -> None:
        if self.live is None:
            return
        pct = self.vibration_pct
        self.live.play(get_pattern(self.pattern_name) if pct > 0 else None, pct)

    def set_zone(self, name: str) -> asyncio.Task | None:
        """Manual zone (no routine): the supervisor's limits and the firmware's hard limit."""
        self.zone = get_zone(name, self.zones)
        if self.pipeline is None or self.runner is not None:
            return None
        self.pipeline.set_zone(self.zone)
        if self.vibration_pct > self.zone.vibration_cap_pct:
            self.vibration_pct = self.zone.vibration_cap_pct
            self._play()
        return self._spawn(self.session.set_limit(self.zone.ceiling_n), "set-limit")

    def tare(self) -> asyncio.Task | None:
        """Zero the sensor (on the device); the pipeline measures from its new zero."""
        if self.session is None or self.runner is not None:
            return None
        return self._spawn(self._tare(), "tare")

    async def _tare(self) -> None:
        offset = await self.session.tare()
        self.pipeline.apply_device_tare(offset)

    # ---- routines --------------------------------------------------------------------------

    def start_routine(self, routine: Routine) -> asyncio.Task:
        """Run ``routine`` on this device now. Refused (``ScreeningRefused``) on a real device
        without a passed screening; ``MassagectlError`` when not connected or one runs."""
        if self.session is None:
            raise MassagectlError("not connected to a device")
        if self.routine_running:
            raise MassagectlError("a routine is already running")
        self._clear_for_vibration()
        self.summary = None
        self.user_stopped = False
        self._routine_task = asyncio.get_running_loop().create_task(
            self._run_routine(routine), name="routine"
        )
        self._routine_task.add_done_callback(self._task_done)
        return self._routine_task

    @property
    def routine_paused(self) -> bool:
        return self.runner is not None and self.runner.paused

    def toggle_pause(self) -> None:
        """Pause the running routine (vibration stops at once; supervision goes on), or
        resume it (the paused step starts over)."""
        if self.runner is None:
            return
        if self.runner.paused:
            self.runner.resume()
        else:
            self.runner.pause()

    def end_routine(self) -> None:
        """End the running routine (Stop first); the window's own loop takes over."""
        if self.runner is not None:
            self.runner.user_stop()

    async def _run_routine(self, routine: Routine) -> RunSummary:
        if self.live is not None:
            live, self.live = self.live, None
            await live.close()
        screening = self.screening.to_record() if self.screening is not None else None
        runner = RoutineRunner(
            self.session,
            routine,
            self.pipeline,
            unattended=self.unattended,
            screening=screening,
        )
        runner.add_batch_listener(self._on_batch)
        self.routine_events = []
        self.progress_tracker = RoutineProgress(runner.units)
        runner.add_listener(self.progress_tracker.on_event)
        runner.add_listener(self._on_event)
        self._last_routine = routine
        self.runner = runner
        try:
            self.summary = await runner.run()
        finally:
            self.runner = None
            self._last_state = runner.state
            if not self._closing and self.session is not None and not runner.state.link_lost:
                # back to the window's own loop, in the zone the picker shows
                self.pipeline.set_zone(self.zone)
                self.vibration_pct = 0.0
                self._start_own_loop(previous=runner.state)
                self._spawn(self.session.set_limit(self.zone.ceiling_n), "set-limit")
        return self.summary

    async def wait_until(self, cond: Callable[[], bool], timeout_s: float) -> bool:
        """Wait (real seconds, polling every 10 ms) until ``cond()``; for scripts and tests."""
        deadline = time.monotonic() + timeout_s
        while not cond():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def raise_if_failed(self) -> None:
        """Raise the first background failure (tests and scripts)."""
        if self.error:
            raise MassagectlError(self.error)


__all__ = [
    "Alarm",
    "AlarmLevel",
    "LiveController",
]
