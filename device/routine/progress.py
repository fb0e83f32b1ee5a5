"""How far a routine has got and about how long it has left, for the faces.

Read from the runner's events and its live state, never by changing how it runs: the
units' planned times (the same as ``massagectl routines show``: a cue's or aftercare's
duration; a timed step's or stretch's nominal hold; a press-and-hold's nominal hold plus its
slowest release; the rest after each unit but the last) give the plan; ``step_started`` /
``step_finished`` say which unit is running or resting; the state says how far into it.

Time left = what is left of the unit running now (its deadline when it has one, else its
nominal hold less the hold so far, plus the release) + its rest + the later units' plans. A
stop, a restart or a pause puts time back (the unit starts over); "about" in every face.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from device.control.supervised import LiveState
from device.routine.routines import StepKind, StepUnit
from dsp.events import Event, StepFinished, StepStarted


def unit_work_s(unit: StepUnit) -> float:
    """The planned time of ``unit`` itself, without the rest after it."""
    step = unit.step
    if step.kind in (StepKind.CUE, StepKind.AFTERCARE):
        return float(step.duration_s or 0.0)
    if step.kind is StepKind.PRESS_AND_HOLD:
        return step.nominal_hold_s + float(step.release_s or 0.0)
    return step.nominal_hold_s or float(step.duration_s or 0.0)


@dataclass(frozen=True)
class Progress:
    """``done`` units finished of ``count``; ``elapsed_s`` since the first unit started and
    about ``left_s`` to go (device seconds); ``fraction`` of the whole, 0..1."""

    done: int
    count: int
    elapsed_s: float
    left_s: float

    @property
    def fraction(self) -> float:
        total = self.elapsed_s + self.left_s
        return 1.0 if total <= 0 else min(1.0, max(0.0, self.elapsed_s / total))


def format_duration(seconds: float) -> str:
    """``1 min 05 s``, ``42 s``: for people."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    return f"{s // 60} min {s % 60:02d} s"


class RoutineProgress:
    """Follows one routine run: feed it the runner's events (``on_event``, a listener) and
    ask ``at(state)``."""

    def __init__(self, units: Sequence[StepUnit]) -> None:
        self.units = list(units)
        self._work_s = [unit_work_s(u) for u in self.units]
        self._rest_s = [
            float(u.step.rest_s or 0.0) if i < len(self.units) - 1 else 0.0
            for i, u in enumerate(self.units)
        ]
        self._index: int | None = None  # the unit started last
        self._resting = False  # it finished (not paused): its rest, or the end
        self._first_t_s: float | None = None
        self.done = 0

    @property
    def planned_s(self) -> float:
        return sum(self._work_s) + sum(self._rest_s)

    def _find(self, label: str | None, start: int) -> int | None:
        for i in range(start, len(self.units)):
            if self.units[i].label == label:
                return i
        return None

    def on_event(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            if self._first_t_s is None:
                self._first_t_s = event.t_s
            found = self._find(event.unit, self._index or 0)
            if found is not None:
                self._index = found
            self._resting = False
        elif isinstance(event, StepFinished) and not event.paused and not self._resting:
            self._resting = True
            self.done += 1

    def at(self, state: LiveState) -> Progress:
        """Progress at ``state`` (the runner's live state)."""
        count = len(self.units)
        if self._index is None or self._first_t_s is None:
            return Progress(0, count, 0.0, self.planned_s)
        i = self._index
        later = sum(self._work_s[i + 1 :]) + sum(self._rest_s[i + 1 :])
        deadline = state.unit_deadline_t_s
        if self._resting:
            rest_left = max(0.0, deadline - state.t_s) if deadline is not None else 0.0
            left = rest_left + later
        else:
            if deadline is not None:
                here = max(0.0, deadline - state.t_s)
            else:
                unit = self.units[i]
                hold = unit.step.nominal_hold_s
                here = max(0.0, hold - state.hold_s) + float(unit.step.release_s or 0.0)
            left = here + self._rest_s[i] + later
        elapsed = max(0.0, state.t_s - self._first_t_s)
        if state.finished:
            left = 0.0
        return Progress(self.done, count, elapsed, left)
