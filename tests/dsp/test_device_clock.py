"""dsp.clock.DeviceClock: unwrapping, and jumps against the batch sequence."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.clock import WRAP_US, DeviceClock

PERIOD_US = 10_000  # 10 samples at 1 kHz


def _feed(clock, stamps_us, *, gaps=None, host_s=None):
    out = []
    for k, t_us in enumerate(stamps_us):
        out.append(
            clock.batch_times_s(
                t_us % WRAP_US,
                1000,
                10,
                batches_since_last=1 + (gaps[k] if gaps else 0),
                t_host_s=host_s[k] if host_s else None,
            )
        )
    return np.concatenate(out)


def test_a_step_back_is_a_jump_and_time_runs_on():
    clock = DeviceClock()
    stamps = [k * PERIOD_US for k in range(100)] + [
        k * PERIOD_US - 1_000_000 for k in range(100, 200)
    ]
    t = _feed(clock, stamps)
    assert np.all(np.diff(t) > 0)
    assert t[-1] == pytest.approx(1.999)
    (jump,) = clock.jumps
    assert jump.jump_s == pytest.approx(-1.0) and jump.t_s == pytest.approx(1.0)


def test_a_step_back_across_zero_is_no_wrap():
    clock = DeviceClock()
    t = _feed(clock, [500_000 + k * PERIOD_US for k in range(10)] + [-400_000 + 10 * PERIOD_US])
    assert clock.jumps[0].jump_s == pytest.approx(-0.9)
    assert t[-1] == pytest.approx(0.109)


def test_a_wrap_is_no_jump():
    clock = DeviceClock()
    t = _feed(clock, [WRAP_US - 50_000 + k * PERIOD_US for k in range(20)])
    assert clock.jumps == [] and np.all(np.diff(t) > 0)


def test_lost_batches_move_the_expected_start_and_are_no_jump():
    clock = DeviceClock()
    stamps = [0, PERIOD_US, 2 * PERIOD_US, 9 * PERIOD_US]
    t = _feed(clock, stamps, gaps=[0, 0, 0, 6])
    assert clock.jumps == [] and t[-1] == pytest.approx(0.099)
    # the same step forward with no batch lost is a jump
    clock = DeviceClock()
    _feed(clock, stamps)
    assert clock.jumps[0].jump_s == pytest.approx(0.06)


def test_a_step_forward_the_host_clock_saw_pass_is_a_real_pause():
    """A reconnect: the sequence starts afresh, device time ran on through the outage."""
    clock = DeviceClock()
    stamps = [0, PERIOD_US, 5_000_000 + 2 * PERIOD_US]
    _feed(clock, stamps, host_s=[0.0, 0.01, 5.02])
    assert clock.jumps == []
    clock = DeviceClock()  # the host saw 20 ms go by: the device clock jumped 5 s
    _feed(clock, stamps, host_s=[0.0, 0.01, 0.03])
    assert clock.jumps[0].jump_s == pytest.approx(5.0)
