"""Events in words for people (the window's event list): what happened, never an id.

Causes go through ``dsp.events.describe_cause`` (the one place a cause is put into words);
steps are named by their title (``titles``: step id -> title, from the routine) and side, the
unit's position and repetition as the routine has them.
"""

from __future__ import annotations

from collections.abc import Mapping

from dsp.events import (
    CommandSent,
    Event,
    FastRelease,
    Fault,
    HoldEnded,
    HoldPassedMax,
    HoldReachedMin,
    HoldStarted,
    LinkLost,
    LinkRestored,
    Rearmed,
    Reduce,
    Screening,
    StepFinished,
    StepPaused,
    StepStarted,
    Stop,
    Warning,
    describe_cause,
    describe_outcome,
)


def _step_name(event: StepStarted | StepFinished | StepPaused, titles: Mapping[str, str]) -> str:
    title = titles.get(event.step)
    if title is None:
        return {"vibrate": "vibration", "stream": "streaming"}.get(event.step, "a step")
    unit = event.unit or ""
    rest = unit[len(event.step) :].strip() if unit.startswith(event.step) else ""
    return f"{title} ({rest})" if rest else title


def describe_event(event: Event, titles: Mapping[str, str] | None = None) -> str:
    """``event`` as a short sentence (no time; lower case start is kept for causes)."""
    titles = titles or {}
    match event:
        case StepStarted():
            return f"Started: {_step_name(event, titles)}"
        case StepPaused():
            return f"Paused: {_step_name(event, titles)}"
        case StepFinished():
            name = _step_name(event, titles)
            if event.paused:
                return f"Paused: {name}"
            if event.completed:
                return f"Done: {name}"
            why = describe_outcome(event.outcome)
            return f"NOT DONE: {name}" + (f" ({why})" if why else "")
        case HoldStarted():
            return "Hold started: force in the band"
        case HoldReachedMin():
            return f"Hold reached {event.hold_s:g} s: release slowly"
        case HoldPassedMax():
            return f"Held {event.hold_s:g} s: time to release"
        case HoldEnded():
            return f"Hold ended after {event.duration_s:.1f} s"
        case FastRelease():
            return (
                f"Released too fast ({event.release_s:.1f} s, at least {event.release_min_s:g} s)"
            )
        case Warning():
            return f"Close to the limit ({event.warning_n:g} of {event.limit_n:g} N)"
        case Reduce():
            return f"Vibration down to {event.intensity_pct:g} %"
        case Stop():
            return f"STOP: {describe_cause(event.cause)}"
        case Fault():
            what = describe_cause(event.cause) if event.cause else (event.error or "loop failed")
            return f"FAULT: {what}"
        case Rearmed():
            return "Going on: re-armed"
        case LinkLost():
            return f"Link lost{': reconnecting' if event.reconnecting else ''}"
        case LinkRestored():
            return f"Link back after {event.gap_s:.1f} s"
        case CommandSent():
            return f"Sent {event.command}"
        case Screening():
            return "Screening passed" if event.passed else "Screening refused"
    return str(event.kind).replace("_", " ")
