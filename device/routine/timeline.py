"""A recording's zone / band / vibration timeline, from its events, and its re-analysis.

A live session changes the pipeline's setup between batches; the events say when:

- ``step_started`` (``StepStarted``: zone, limit_n, band_n, step_kind, step): zone,
  limit and band from here on; hold timing (min, max, slowest release) of a
  ``press_and_hold`` step is taken from the event when it carries ``hold_min_s`` or
  ``hold_max_s``, else (older recordings) from the recorded routine's step of that id;
- ``step_finished``: the band ends (rests have no band), the zone stays;
- ``step_paused``: the band ends, the zone stays, and the time stays the step's (its label):
  a paused step is not finished, it starts over with its next ``step_started`` (older
  recordings wrote a pause as a ``step_finished`` with ``paused``);
- ``command_sent`` (``vibrate`` with ``intensity_pct``, ``frequency_hz``; ``stop``): vibration
  (other commands, such as ``auto_zero``, do not change the setup: force_n is recorded after
  calibration, so a re-zeroing is already in it);
- ``stop`` / ``fault`` with a cause force cannot show (keepalive_lost, firmware_limit,
  stale_stream, user_stop...): the supervisor is latched there as it was live, so re-arming,
  restarts and later over-limits line up with the live run. Force-rule stops (over_limit,
  rate_of_rise, forbidden_zone_contact, max_vibration_time) are found again from the forces.

``analyze_recording`` runs the recorded forces through the same pipeline as ``analyze`` does
for a CSV, switching setup where the timeline says (dsp.analysis.analyze_segments).
Before the first zone event the zone is neck_back (DESIGN.md: without a zone, tools assume it).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from device.errors import InputFileError, RoutineError
from device.recording.folder import Recording
from dsp.analysis import DEFAULT_RELEASE_MIN_S, Segment, analyze_segments
from dsp.events import (
    Cause,
    CommandSent,
    Event,
    Fault,
    StepFinished,
    StepPaused,
    StepStarted,
    Stop,
)
from dsp.zones import UnknownZoneError, Zone, get_zone, with_limit

if TYPE_CHECKING:
    from device.routine.routines import Routine

#: Stop causes the analysis finds again from the recorded force (and the vibration timeline);
#: stops and faults with any other cause are taken from the events as they happened.
DERIVED_CAUSES = frozenset(
    {Cause.OVER_LIMIT, Cause.RATE_OF_RISE, Cause.FORBIDDEN_ZONE_CONTACT, Cause.MAX_VIBRATION_TIME}
)


#: Commands that set the vibration (a stop sets it to 0).
VIBRATION_COMMANDS = ("vibrate", "play_pattern", "stop")


def _zone(name: str | None, limit_n: Any, where: str) -> Zone:
    try:
        zone = get_zone(name)
    except UnknownZoneError as exc:
        raise InputFileError(f"{where}: {exc.args[0]}") from None
    if isinstance(limit_n, int | float) and math.isfinite(limit_n) and limit_n > 0:
        zone, _ = with_limit(zone, float(limit_n))
    return zone


class _StepTimes:
    """Hold timing per step id from the recorded routine (loaded once, when needed)."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.routine_meta = meta.get("routine") or {}
        self._routine: Routine | None = None
        self._tried = False

    def hold_times(self, step_id: str | None) -> tuple[float | None, float | None, float | None]:
        routine = self._load()
        if routine is None or step_id is None:
            return None, None, DEFAULT_RELEASE_MIN_S
        try:
            step = routine.step(step_id)
        except KeyError:
            return None, None, DEFAULT_RELEASE_MIN_S
        return step.hold_min_s, step.hold_max_s, step.release_s

    def _load(self) -> Routine | None:
        if self._tried:
            return self._routine
        self._tried = True
        from device.routine.routines import load_routine

        origin = str(self.routine_meta.get("origin") or "")
        name = self.routine_meta.get("name")
        source = origin if origin and not origin.startswith("builtin:") else name
        if source:
            try:
                self._routine = load_routine(source)
            except (RoutineError, OSError):
                # The routine file moved or changed: holds are still timed, without the
                # step's minimum and maximum (reached_min is then never reported).
                self._routine = None
        return self._routine


def timeline_segments(events: list[Event], meta: dict[str, Any]) -> list[Segment]:
    """The setup segments of a recording, in time order (the first starts before any sample)."""
    times = _StepTimes(meta)
    current = Segment(start_s=-math.inf, zone=get_zone(None))
    segments = [current]
    for n, event in enumerate(events, start=1):
        t = event.t_s
        if not math.isfinite(t):
            continue
        where = f"events.jsonl line {n}"
        if isinstance(event, StepStarted):
            band_n = event.band_n
            hold: tuple[float | None, float | None, float | None] = (None, None, None)
            if band_n is not None and event.step_kind == "press_and_hold":
                if event.hold_min_s is not None or event.hold_max_s is not None:
                    hold = (event.hold_min_s, event.hold_max_s, event.release_s)
                else:
                    hold = times.hold_times(event.step)
            new = replace(
                current,
                start_s=t,
                zone=_zone(event.zone, event.limit_n, where),
                band_n=band_n,
                hold_min_s=hold[0],
                hold_max_s=hold[1],
                release_min_s=hold[2],
                label=event.unit or event.step,
                new_step=True,
            )
        elif isinstance(event, StepFinished | StepPaused):
            # no band from here; a paused step keeps its label (it goes on after resume)
            new = replace(
                current,
                start_s=t,
                band_n=None,
                hold_min_s=None,
                hold_max_s=None,
                release_min_s=None,
                label=current.label if isinstance(event, StepPaused) else None,
                new_step=False,
            )
        elif isinstance(event, CommandSent) and event.command in VIBRATION_COMMANDS:
            # a pattern the device plays itself (version 3) counts at its maximum for its
            # whole life, as the motor band-stop follows a pattern's life, not its pulses
            pct = float(event.intensity_pct or 0.0) if event.command != "stop" else 0.0
            hz = event.frequency_hz or None
            new = replace(
                current,
                start_s=t,
                vibration_pct=pct,
                motor_hz=float(hz) if pct > 0 and hz else None,
                new_step=False,
            )
        elif isinstance(event, Stop | Fault) and event.cause not in DERIVED_CAUSES:
            new = replace(current, start_s=t, new_step=False, latch=event)
        else:
            continue
        if not isinstance(event, Stop | Fault):
            new = replace(new, latch=None)
        current = new
        if segments[-1].start_s == new.start_s and len(segments) > 1:
            # several changes between the same two batches: the last setup wins
            segments[-1] = replace(
                new,
                new_step=new.new_step or segments[-1].new_step,
                latch=new.latch or segments[-1].latch,
            )
        else:
            segments.append(new)
    return segments


def analyze_recording(rec: Recording) -> dict[str, Any]:
    """``analyze``'s report for a recording: ``{"events", "summary", "steps",
    "recording"}``. Raises InputFileError when the recording has too few samples."""
    if rec.t_s.size < 2:
        raise InputFileError(
            f"{rec.folder}: the recording has {rec.t_s.size} samples; need at least 2"
        )
    segments = timeline_segments(rec.events, rec.meta)
    try:
        report = analyze_segments(rec.t_s, rec.force_n, segments, rate_hz=rec.rate_hz)
    except ValueError as exc:
        raise InputFileError(f"{rec.folder}: {exc}") from exc
    routine = rec.meta.get("routine") or {}
    report["recording"] = {
        "folder": str(rec.folder),
        "started_at": rec.meta.get("started_at"),
        "complete": rec.complete,
        "routine": routine.get("name"),
        "device": (rec.meta.get("device") or {}).get("model"),
        "warnings": list(rec.warnings),
    }
    return report
