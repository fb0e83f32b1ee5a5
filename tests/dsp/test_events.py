"""The typed events (dsp/events.py): one type per kind, the dict form and back, causes in words."""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import fields

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.events import (
    EVENT_TYPES,
    Cause,
    Event,
    EventFormatError,
    EventKind,
    Fault,
    HoldEnded,
    LinkLost,
    StepStarted,
    Stop,
    describe_cause,
    event_from_dict,
)

_FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=64)
_JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**31), 2**31), st.text(max_size=8)
)


def _strategy(hint) -> st.SearchStrategy:
    """Values of a field's type (finite floats: JSON has no NaN)."""
    if hint is float:
        return _FLOATS
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*[_strategy(a) for a in args])
    if origin is tuple:
        return st.tuples(*[_strategy(a) for a in args])
    if origin is dict:
        return st.dictionaries(st.text(max_size=8), _JSON_VALUES, max_size=3)
    return st.from_type(hint)


def _events(cls: type[Event]) -> st.SearchStrategy:
    hints = typing.get_type_hints(cls)
    return st.fixed_dictionaries({f.name: _strategy(hints[f.name]) for f in fields(cls)}).map(
        lambda kw: cls(**kw)
    )


ANY_EVENT = st.one_of(*[_events(cls) for cls in EVENT_TYPES.values()])


def test_every_kind_has_its_type():
    assert set(EVENT_TYPES) == set(EventKind)
    for kind, cls in EVENT_TYPES.items():
        assert cls.kind is kind


@settings(max_examples=400)
@given(ANY_EVENT)
def test_every_kind_round_trips_through_its_dict_and_json(event):
    d = event.to_dict()
    assert d["kind"] == event.kind.value
    assert event_from_dict(d) == event
    assert event_from_dict(json.loads(json.dumps(d))) == event
    assert type(event).from_dict(d) == event


@given(ANY_EVENT)
def test_the_dict_shape_is_the_recording_format(event):
    d = event.to_dict()
    assert list(d)[:5] == ["kind", "cause", "t_s", "detection_delay_s", "force_n"]
    assert set(d) <= {"kind", "cause", "t_s", "detection_delay_s", "force_n", "detail"} | {
        "unit",
        "t_host_s",
    }
    assert d.get("detail", {}) != {} or "detail" not in d  # an empty detail is left out


def test_nan_force_round_trips_as_nan():
    e = Stop(cause=Cause.USER_STOP, t_s=1.0)
    back = event_from_dict(json.loads(json.dumps({**e.to_dict(), "force_n": None})))
    assert isinstance(back, Stop) and math.isnan(back.force_n) and back.cause is Cause.USER_STOP


def test_step_started_always_carries_its_whole_field_set():
    e = StepStarted(
        t_s=0.0,
        step="vibrate",
        step_kind="vibrate",
        zone="neck_back",
        limit_n=10.0,
        band_n=None,
        side="none",
        vibration_pct=30.0,
        pattern="wave",
        motor_hz=150,
        hold_min_s=None,
        hold_max_s=None,
        release_s=None,
    )
    detail = e.to_dict()["detail"]
    assert list(detail) == [
        "step",
        "kind",
        "zone",
        "limit_n",
        "band_n",
        "side",
        "vibration_pct",
        "pattern",
        "motor_hz",
        "hold_min_s",
        "hold_max_s",
        "release_s",
    ]
    assert detail["band_n"] == [] and detail["hold_min_s"] is None


def test_a_version_1_events_line_reads():
    # docs/recording.md's example line, and older step_started lines with fewer fields
    stop = event_from_dict(
        json.loads(
            '{"kind":"stop","cause":"over_limit","t_s":68.543056,"detection_delay_s":0.0056,'
            '"force_n":8.44,"detail":{"limit_n":10.0,"path":"fast","was_vibrating":true},'
            '"unit":"trapezius-squeeze left neck base 1/2","t_host_s":2.87}'
        )
    )
    assert stop == Stop(
        cause=Cause.OVER_LIMIT,
        t_s=68.543056,
        detection_delay_s=0.0056,
        force_n=8.44,
        limit_n=10.0,
        path="fast",
        was_vibrating=True,
        unit="trapezius-squeeze left neck base 1/2",
        t_host_s=2.87,
    )
    stream = event_from_dict(
        json.loads(
            '{"kind":"step_started","cause":null,"t_s":0.0,"detection_delay_s":0.0,'
            '"force_n":null,"detail":{"step":"stream","kind":"stream","zone":"neck_back",'
            '"limit_n":10.0,"band_n":[]},"unit":"stream","t_host_s":0.0}'
        )
    )
    assert isinstance(stream, StepStarted)
    assert (stream.step_kind, stream.band_n, stream.side, stream.vibration_pct) == (
        "stream",
        None,
        "none",
        0.0,
    )
    assert stream.hold_min_s is None and stream.motor_hz is None
    # a field this version does not know is ignored, at the top and in the detail
    ended = event_from_dict(
        {
            "kind": "hold_ended",
            "t_s": 3.0,
            "future": 1,
            "unknown": {"x": 2},
            "detail": {
                "start_s": 1.0,
                "end_s": 2.9,
                "duration_s": 1.9,
                "reached_min": True,
                "x": 2,
            },
        }
    )
    assert ended == HoldEnded(t_s=3.0, start_s=1.0, end_s=2.9, duration_s=1.9, reached_min=True)
    assert math.isnan(ended.force_n) and ended.detection_delay_s == 0.0


@pytest.mark.parametrize(
    "d, message",
    [
        ({"kind": "nope", "t_s": 0.0}, "unknown event kind"),
        ({"t_s": 0.0}, "unknown event kind"),
        ({"kind": "stop", "t_s": 0.0}, "needs a cause"),
        ({"kind": "stop", "cause": "too_hard", "t_s": 0.0}, "unknown cause"),
        ({"kind": "rearmed"}, "needs a number t_s"),
        ({"kind": "hold_started", "t_s": 1.0}, "needs detail.band_n"),
        ({"kind": "hold_started", "t_s": 1.0, "detail": {"band_n": "x"}}, "not two finite"),
        ({"kind": "hold_started", "t_s": 1.0, "detail": {"band_n": [3]}}, "not two finite"),
        ({"kind": "warning", "t_s": 1.0, "detail": []}, "needs detail.warning_n"),
        ({"kind": "warning", "t_s": 1.0, "detail": 3}, "not an object"),
        ({"kind": "warning", "t_s": 1.0, "detail": "limit"}, "not an object"),
        ({"kind": "warning", "t_s": 10**400}, "needs a number t_s"),
        (
            {"kind": "warning", "t_s": 1.0, "detail": {"warning_n": "3", "limit_n": 4}},
            "detail.warning_n must be a number",
        ),
        (
            {
                "kind": "step_started",
                "t_s": 1.0,
                "detail": {"step": "a", "kind": "cue", "zone": ["neck_back"], "limit_n": 8},
            },
            "detail.zone must be a string",
        ),  # fmt: skip
        ({"kind": "step_finished", "t_s": 1.0, "detail": {"step": "a", "completed": 1}}, "true"),
        (
            {
                "kind": "link_restored",
                "t_s": 1.0,
                "detail": {"count": 1.5, "gap_s": 1, "attempts": 1},
            },
            "an integer",
        ),  # fmt: skip
        ({"kind": "warning", "t_s": 1.0, "unit": ["a"]}, "unit must be a string"),
        ({"kind": "stop", "cause": ["over_limit"], "t_s": 0.0}, "unknown cause"),
    ],
)
def test_a_malformed_event_is_an_error_naming_what(d, message):
    with pytest.raises(EventFormatError, match=message):
        event_from_dict(d)


def test_causes_and_kinds_keep_their_place():
    assert Stop(cause=Cause.OVER_LIMIT, t_s=0.0).to_dict()["cause"] == "over_limit"
    assert Fault(t_s=0.0).to_dict()["cause"] is None
    assert LinkLost(t_s=0.0, error="gone").to_dict()["cause"] == "link_lost"
    assert "cause" not in {f.name for f in fields(StepStarted)}


# ---- causes in words ----------------------------------------------------------------------------


@pytest.mark.parametrize("cause", list(Cause))
def test_every_cause_has_words_of_its_own(cause):
    words = describe_cause(cause)
    assert words and words != cause.value.replace("_", " ")
    assert describe_cause(cause.value) == words  # the recorded string reads the same


def test_causes_read_differently():
    words = [describe_cause(c) for c in Cause]
    assert len(set(words)) == len(words)


def test_describe_cause_takes_other_alarm_texts():
    assert describe_cause(None) == "" and describe_cause("") == ""
    assert describe_cause("internal error") == "internal error"
    assert describe_cause("some_new_thing") == "some new thing"
