"""The supervised run: the one place that wires a device for a face.

Every command-line face that drives or watches a device under supervision (``vibrate``,
``routine``, ``demo``, ``stream --record``) goes through here, so they cannot differ. (The
live window keeps one session while it swaps its own loop for a routine's; it builds the
same parts: ``live_pipeline``, ``SupervisedSession``, ``clear_for_vibration``, and follows
the same recording failure policy.)

1. open the session for the URL (the calibration stored at pairing; reconnecting for
   ``ble://``) on the run's time base;
2. hand in the screening clearance (``DeviceSession.clear_for_vibration``: a real device
   vibrates only after a passed screening by a person; checked below every face);
3. the live pipeline for the zone (drift tracking on), ``SetLimit`` to the zone's ceiling;
4. the supervised loop (``SupervisedSession``) started;
5. a recorder, if asked for, fed by the loop.

One failure policy: a recording that cannot be written (disk full, folder gone) stops
vibration at once and ends the run with that error, which names the file
(``InputFileError``); what was written before stays readable. A loop that failed for any
other reason ends the run the same way (``run.live.failure``).

``async with supervised_run(url, zone=...) as run:`` then use ``run.live`` (play patterns,
emit events, wait on ``run.live.changed``), or hand ``run.live`` to a ``RoutineRunner``;
``run.finish(summary)`` completes the recording. Leaving the block closes in order: the
loop (stream, Stop, coalescer), the recording, the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from device.control.pipeline_factory import live_pipeline
from device.control.supervised import SupervisedSession
from device.errors import MassagectlError
from device.recording.folder import Recorder, session_meta
from device.screening.gate import ScreeningResult
from device.session.device_session import (
    DEFAULT_RATE_HZ,
    DeviceSession,
    SampleBatch,
)
from device.session.reconnect import (
    DEFAULT_RECONNECT_TIMEOUT_S,
    ReconnectingSession,
    open_device_session,
)
from dsp.events import Event, StepStarted
from dsp.pipeline import BatchResult, ForcePipeline
from dsp.zones import Zone, get_zone


class SupervisedRun:
    """An open session under supervision, with its pipeline, loop and (maybe) recorder."""

    def __init__(
        self,
        session: DeviceSession | ReconnectingSession,
        pipeline: ForcePipeline,
        live: SupervisedSession,
        zone: Zone,
    ) -> None:
        self.session = session
        self.pipeline = pipeline
        self.live = live
        self.zone = zone
        self.recorder: Recorder | None = None
        #: the write error that ended the recording (and the run), if one did
        self.recording_error: MassagectlError | None = None
        live.add_listener(self._record_event)
        live.add_batch_listener(self._record_batch)
        live.add_listener(log_event)

    def watch_step(self, step: str = "stream") -> None:
        """Mark the start of a run that only watches (no routine, nothing vibrates): a
        ``step_started`` for the run's zone, so that a recording carries its own timeline."""
        self.live.context = {"unit": step}
        self.live.emit(
            StepStarted(
                t_s=self.live.state.t_s,
                force_n=self.live.state.filtered_n,
                step=step,
                step_kind=step,
                zone=self.zone.name,
                limit_n=self.zone.limit_n,
                band_n=None,
                side="none",
                vibration_pct=0.0,
                pattern=None,
                motor_hz=None,
                hold_min_s=None,
                hold_max_s=None,
                release_s=None,
            )
        )

    # ---- recording -----------------------------------------------------------------------

    def start_recording(self, folder: str | Path, **meta: Any) -> Recorder:
        """Record samples and events into ``folder`` (new or empty) from now on."""
        if self.recorder is not None:
            raise MassagectlError("already recording")
        recorder = Recorder.create(folder, session_meta(self.session, **meta))
        recorder.on_error = self._recording_failed
        self.recording_error = None
        self.recorder = recorder
        return recorder

    def finish(self, summary: dict | None = None, **extra: Any) -> None:
        """Complete the recording with the run's summary (safe twice, safe without one)."""
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.finish(summary, **extra)

    def _record_batch(self, batch: SampleBatch, result: BatchResult) -> None:
        if self.recorder is not None:
            try:
                self.recorder.on_batch(batch, result)
            except MassagectlError as exc:
                self._recording_failed(exc)

    def _record_event(self, event: Event) -> None:
        if self.recorder is not None:
            try:
                self.recorder.on_event(event)
            except MassagectlError as exc:
                self._recording_failed(exc)

    def _recording_failed(self, exc: MassagectlError) -> None:
        """The policy: a recording that cannot be written stops vibration and ends the run
        with the error (which names the file). What was written stays readable."""
        recorder, self.recorder = self.recorder, None
        self.recording_error = exc
        abandon_recording(recorder, exc)
        self.live.fail(exc)


def log_event(event: Event) -> None:
    """Every event into the debug log (``--log``): stops and faults with their cause."""
    level = logging.WARNING if str(event.kind) in ("stop", "fault") else logging.INFO
    logging.getLogger("massagectl.events").log(level, "event %s", event.to_dict())


def abandon_recording(recorder: Recorder | None, exc: MassagectlError) -> None:
    """Close a recording whose write failed, keeping what was written readable and the
    reason in session.json (best effort: the disk that failed may fail again)."""
    if recorder is not None:
        with contextlib.suppress(MassagectlError, OSError):
            recorder.finish(None, error=str(exc))


@contextlib.asynccontextmanager
async def supervised_run(
    url: str,
    *,
    zone: Zone | None = None,
    screening: ScreeningResult | None = None,
    vibrates: bool = True,
    speed: float | None = None,
    rate_hz: int | None = None,
    samples_per_batch: int | None = None,
    reconnect_timeout_s: float = DEFAULT_RECONNECT_TIMEOUT_S,
    motor_hz: int = 0,
    record_dir: str | Path | None = None,
    record_meta: dict[str, Any] | None = None,
    lsl: bool = False,
    lsl_wait_s: float = 0.0,
    **link_options: Any,
) -> AsyncIterator[SupervisedRun]:
    """Open ``url`` and supervise it on ``zone`` (see the module docstring). ``vibrates``:
    the face may drive the motor, so ``screening`` must clear it (a real device needs a
    passed screening by a person); a face that only watches (``stream``) leaves vibration
    refused. ``lsl``: publish the force and every event on LSL outlets (docs/lsl.md),
    created before the device is opened; ``lsl_wait_s``: wait that long for a consumer
    (LabRecorder) first, so that it gets the session from its first sample."""
    zone = zone or get_zone(None)
    outlets = None
    if lsl:
        from device.recording.lsl import LslOutlets
        from device.timebase import TimeBase
        from device.urls import parse_url

        outlets = LslOutlets(
            # declared before the device answers: the asked rate, else the usual one (a slower
            # device's stream is still timestamped sample by sample)
            rate_hz=float(rate_hz or DEFAULT_RATE_HZ),
            source_id=f"massagectl:{url}",
            speed=TimeBase.for_url(parse_url(url), speed).speed,
        )
        if lsl_wait_s > 0:
            await asyncio.to_thread(outlets.wait_for_consumers, lsl_wait_s)
    session = open_device_session(
        url,
        rate_hz=rate_hz,
        samples_per_batch=samples_per_batch,
        speed=speed,
        reconnect_timeout_s=reconnect_timeout_s,
        **link_options,
    )
    async with session:
        if vibrates:
            session.clear_for_vibration(screening)
        pipeline = live_pipeline(session, zone)
        live = SupervisedSession(session, pipeline, motor_hz=motor_hz)
        run = SupervisedRun(session, pipeline, live, zone)
        if outlets is not None:
            live.add_batch_listener(outlets.on_batch)
            live.add_listener(outlets.on_event)
        try:
            if record_dir is not None:
                screening_record = screening.to_record() if screening is not None else None
                run.start_recording(record_dir, screening=screening_record, **(record_meta or {}))
            await session.set_limit(zone.ceiling_n)
            live.start()
            yield run
        finally:
            await live.close()
            run.finish(None)
            if outlets is not None:
                outlets.close()
