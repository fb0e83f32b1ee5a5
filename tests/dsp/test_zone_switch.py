"""Switching zones mid-stream: into a zone near the neck, the rate-of-rise rule must compare
with the last samples, not with history from before it was last on."""

from __future__ import annotations

import numpy as np

from dsp.events import Cause, EventKind
from dsp.zones import get_zone
from tests.dsp.tracegen import chunks, make_pipe, measured, times

RATE = 1000.0


def _feed(pipe, t, x, batch=10):
    events = []
    for sl in chunks(t.size, [batch]):
        events.extend(pipe.on_batch(t[sl], x[sl], float(t[sl][-1])).events)
    return events


def _stops(events):
    return [e.cause for e in events if e.kind in (EventKind.STOP, EventKind.FAULT)]


def _after_a_press_then_a_heavy_zone():
    """0-2 s in neck_back unloaded (rate rule on), then 30 s in suboccipital_lying (rule
    off) rising to 16 N, then releasing: returns the pipe and the release's start time."""
    pipe = make_pipe(RATE, get_zone("neck_back"))
    t = times(RATE, 2.0)
    assert _feed(pipe, t, measured(t, np.zeros(t.size), seed=1)) == []
    pipe.set_zone(get_zone("suboccipital_lying"))
    t = times(RATE, 30.0, 2.0)
    true = np.minimum(16.0, (t - 2.0) * 8.0)
    assert _stops(_feed(pipe, t, measured(t, true, seed=2))) == []
    return pipe, 32.0


def test_switching_near_the_neck_while_releasing_is_no_stop():
    pipe, t0 = _after_a_press_then_a_heavy_zone()
    t = times(RATE, 1.2, t0)
    true = np.maximum(0.0, 16.0 - (t - t0) * 8.0)  # letting go at 8 N/s
    # switch once the force is under neck_back's reset level (7 N), as the runner does
    i = int(np.argmax(true < 6.9))
    assert _stops(_feed(pipe, t[:i], measured(t[:i], true[:i], seed=3))) == []
    pipe.set_zone(get_zone("neck_back"))
    assert _stops(_feed(pipe, t[i:], measured(t[i:], true[i:], seed=4))) == []


def test_a_jab_right_after_the_switch_still_stops_on_rate_of_rise():
    pipe, t0 = _after_a_press_then_a_heavy_zone()
    t = times(RATE, 1.0, t0)
    true = np.maximum(0.0, 16.0 - (t - t0) * 40.0)  # quick release to 0
    assert _stops(_feed(pipe, t, measured(t, true, seed=5))) == []
    pipe.set_zone(get_zone("neck_back"))
    t = times(RATE, 0.5, t0 + 1.0)
    true = np.minimum(9.5, (t - t[0]) * 300.0)  # a 300 N/s jab toward the limit
    assert Cause.RATE_OF_RISE in _stops(_feed(pipe, t, measured(t, true, seed=6)))
