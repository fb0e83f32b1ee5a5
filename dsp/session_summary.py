"""The summary of a session, computed once from its typed events (``dsp.events``).

Every face renders this one summary: the terminal after a routine (also after Ctrl-C), the
live window when a routine ends, and ``massagectl report`` (text, ``--json``, ``--csv``) from
a recording's ``events.jsonl``. It needs nothing but the event list, in the order the events
happened:

- a step (one routine unit: step, side, position, repetition) opens at its ``step_started``
  and is named by the event's ``unit`` (the step id when there is none); a ``step_started``
  for the step that is open again (a restart after a stop, or the start over after a pause)
  continues it;
- it closes at a ``step_finished`` (``completed`` or not); a ``step_paused`` starts a pause
  that lasts until the step starts again (recordings made before ``step_paused`` existed
  wrote a pause as a paused ``step_finished``, read the same way);
- holds: ``hold_started`` .. ``hold_ended`` inside the open step (one still open when the step
  restarts, pauses or ends is cut there; holds under ``MIN_REPORTED_HOLD_S`` are passes through
  the band, not holds); stops and faults inside the open step belong to it, all of them to the
  session;
- time in band and peak force are the runner's running figures on the step's last
  ``step_finished`` (None when the producer did not measure them).

A step that never got its ``step_finished`` (a killed process) is ``completed`` None.

Pure: no I/O, and nothing of ours outside ``dsp``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from dsp.events import (
    Cause,
    Event,
    FastRelease,
    Fault,
    HoldEnded,
    HoldReachedMin,
    HoldStarted,
    LinkLost,
    StepFinished,
    StepPaused,
    StepStarted,
    Stop,
    describe_cause,
)

#: Shorter passes through the band (force on its way somewhere else) are not holds.
MIN_REPORTED_HOLD_S = 0.3


@dataclass(frozen=True)
class StopNote:
    """A stop or fault: its kind (``stop``, ``fault``, ``link_lost``), cause (None: the safety
    loop itself failed), device time and the step it happened in."""

    kind: str
    cause: Cause | None
    t_s: float
    unit: str | None

    @property
    def words(self) -> str:
        return describe_cause(self.cause) if self.cause is not None else "the safety loop failed"


@dataclass(frozen=True)
class Hold:
    start_s: float
    end_s: float
    duration_s: float
    reached_min: bool


@dataclass
class StepSummary:
    """One step (a routine unit) of the session."""

    unit: str
    step: str
    step_kind: str
    zone: str
    limit_n: float
    band_n: tuple[float, float] | None
    started_t_s: float
    ended_t_s: float | None = None
    #: True / False from its step_finished; None: it never finished (a killed process)
    completed: bool | None = None
    restarts: int = 0
    pauses: int = 0
    holds: list[Hold] = field(default_factory=list)
    time_in_band_s: float | None = None
    peak_n: float | None = None
    stops: list[StopNote] = field(default_factory=list)
    fast_releases: int = 0

    @property
    def holds_s(self) -> list[float]:
        return [h.duration_s for h in self.holds]

    @property
    def state(self) -> str:
        """``completed``, ``not completed`` or ``unfinished`` (no step_finished at all)."""
        if self.completed is None:
            return "unfinished"
        return "completed" if self.completed else "not completed"


@dataclass(frozen=True)
class Pause:
    """The person paused ``unit`` from ``start_s`` to ``end_s`` (None: never resumed)."""

    unit: str
    start_s: float
    end_s: float | None


@dataclass
class SessionSummary:
    steps: list[StepSummary] = field(default_factory=list)
    stops: list[StopNote] = field(default_factory=list)
    pauses: list[Pause] = field(default_factory=list)
    #: device time of the first and last event (0.0 for none)
    start_s: float = 0.0
    end_s: float = 0.0

    @property
    def steps_completed(self) -> int:
        return sum(1 for s in self.steps if s.completed)

    def csv_text(self) -> str:
        """One row per step (``CSV_COLUMNS``); lists joined with ``;``; empty: not measured."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for s in self.steps:
            writer.writerow(
                [
                    s.unit,
                    s.step,
                    s.step_kind,
                    s.zone,
                    f"{s.limit_n:g}",
                    "" if s.band_n is None else f"{s.band_n[0]:g}-{s.band_n[1]:g}",
                    f"{s.started_t_s:.3f}",
                    "" if s.ended_t_s is None else f"{s.ended_t_s:.3f}",
                    s.state,
                    s.restarts,
                    s.pauses,
                    len(s.holds),
                    ";".join(f"{h:.2f}" for h in s.holds_s),
                    "" if s.time_in_band_s is None else f"{s.time_in_band_s:.2f}",
                    "" if s.peak_n is None else f"{s.peak_n:.2f}",
                    len(s.stops),
                    ";".join(str(n.cause or n.kind) for n in s.stops),
                ]
            )
        return out.getvalue()


CSV_COLUMNS = (
    "unit",
    "step",
    "kind",
    "zone",
    "limit_n",
    "band_n",
    "started_t_s",
    "ended_t_s",
    "state",
    "restarts",
    "pauses",
    "holds",
    "holds_s",
    "time_in_band_s",
    "peak_n",
    "stops",
    "stop_causes",
)


def _close_hold(step: StepSummary, open_since: float | None, t_s: float, reached: bool) -> None:
    if open_since is not None:
        step.holds.append(Hold(open_since, t_s, t_s - open_since, reached))


def _end_pause(out: SessionSummary, unit: str, t_s: float) -> None:
    """The open pause of ``unit``, if any, ends at ``t_s``."""
    if out.pauses and out.pauses[-1].end_s is None and out.pauses[-1].unit == unit:
        out.pauses[-1] = Pause(unit, out.pauses[-1].start_s, t_s)


def summarize_session(events: Iterable[Event]) -> SessionSummary:
    """The summary of the session whose events are ``events`` (in order); see the module."""
    out = SessionSummary()
    current: StepSummary | None = None  # the open step
    paused: StepSummary | None = None  # a paused step waiting to start over
    hold_since: float | None = None
    reached = False
    first = True
    for e in events:
        if math.isfinite(e.t_s):
            if first:
                out.start_s, first = e.t_s, False
            out.end_s = max(out.end_s, e.t_s)
        if isinstance(e, StepStarted):
            name = e.unit or e.step
            again = current if current is not None and current.unit == name else None
            if again is None and paused is not None and paused.unit == name:
                again = paused
            if current is not None and current is not again:
                # a step that ended without its step_finished (an old producer)
                _close_hold(current, hold_since, e.t_s, reached)
            if again is not None:
                _close_hold(again, hold_since, e.t_s, reached)
                _end_pause(out, name, e.t_s)
                current, paused = again, None
            else:
                current = StepSummary(
                    unit=name,
                    step=e.step,
                    step_kind=e.step_kind,
                    zone=e.zone,
                    limit_n=e.limit_n,
                    band_n=e.band_n,
                    started_t_s=e.t_s,
                )
                out.steps.append(current)
                paused = None
            hold_since, reached = None, False
        elif isinstance(e, StepPaused):
            # the pause belongs to the open step (stops while paused are its stops); the
            # step starts over with its next step_started
            if current is None:
                continue
            _close_hold(current, hold_since, e.t_s, reached)
            hold_since, reached = None, False
            current.pauses += 1
            out.pauses.append(Pause(current.unit, e.t_s, None))
        elif isinstance(e, StepFinished):
            step = current if current is not None else paused
            if step is None:
                continue
            _end_pause(out, step.unit, e.t_s)
            _close_hold(step, hold_since, e.t_s, reached)
            hold_since, reached = None, False
            step.restarts = e.restarts
            if e.time_in_band_s is not None:
                step.time_in_band_s = e.time_in_band_s
            if e.peak_n is not None:
                step.peak_n = e.peak_n
            if e.paused:
                step.pauses += 1
                out.pauses.append(Pause(step.unit, e.t_s, None))
                paused, current = step, None
            else:
                step.completed = e.completed
                step.ended_t_s = e.t_s
                current = paused = None
        elif isinstance(e, Stop | Fault | LinkLost):
            note = StopNote(str(e.kind), e.cause, e.t_s, e.unit)
            out.stops.append(note)
            if current is not None:
                current.stops.append(note)
        elif current is None:
            continue
        elif isinstance(e, HoldStarted):
            _close_hold(current, hold_since, e.t_s, reached)
            hold_since, reached = e.t_s, False
        elif isinstance(e, HoldReachedMin):
            reached = True
        elif isinstance(e, HoldEnded):
            current.holds.append(Hold(e.start_s, e.end_s, e.duration_s, e.reached_min or reached))
            hold_since, reached = None, False
        elif isinstance(e, FastRelease):
            current.fast_releases += 1
    if current is not None:
        _close_hold(current, hold_since, out.end_s, reached)
    for s in out.steps:
        s.holds = [h for h in s.holds if h.duration_s >= MIN_REPORTED_HOLD_S]
    return out
