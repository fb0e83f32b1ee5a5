"""Streaming filters: chunking invariance, motor band-stops, frequency switches."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from dsp.filters import ForceFilters, motor_bandstop_sos
from tests.dsp.tracegen import Leakage, chunks, measured, smooth_step, times


@settings(max_examples=40)
@given(
    rate_hz=st.sampled_from([500.0, 1000.0]),
    motor_hz=st.sampled_from([None, 25.0, 47.0, 120.0, 200.0]),
    sizes=st.lists(st.integers(1, 257), min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
)
def test_any_chunking_equals_one_offline_pass(rate_hz, motor_hz, sizes, seed):
    t = times(rate_hz, 1.0)
    x = measured(t, smooth_step(t, 0.2, 0.3, 1.0, 8.0), Leakage(motor_hz or 60.0), seed=seed)
    whole = ForceFilters(rate_hz, motor_hz)
    fast_1, slow_1 = whole.process(x)
    streamed = ForceFilters(rate_hz, motor_hz)
    parts = [streamed.process(x[sl]) for sl in chunks(t.size, sizes)]
    np.testing.assert_allclose(np.concatenate([p[0] for p in parts]), fast_1, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.concatenate([p[1] for p in parts]), slow_1, rtol=0, atol=1e-9)
    # and the offline pass is plain scipy from the first sample's steady state
    sos = whole.fast_sos
    ref_fast, _ = signal.sosfilt(sos, x, zi=signal.sosfilt_zi(sos) * x[0])
    np.testing.assert_allclose(fast_1, ref_fast, rtol=0, atol=1e-9)


def test_bandstop_rejects_a_motor_up_to_15_percent_off():
    rate_hz = 1000.0
    for motor_hz in (25.0, 53.0, 120.0, 200.0):
        sos = motor_bandstop_sos(rate_hz, motor_hz)
        freqs = motor_hz * np.linspace(0.85, 1.15, 31)
        _, h = signal.sosfreqz(sos, worN=freqs, fs=rate_hz)
        assert np.abs(h).max() < 0.06, motor_hz  # 3 N -> under 0.18 N
        _, h_low = signal.sosfreqz(sos, worN=[0.5, 5.0], fs=rate_hz)
        assert np.abs(np.abs(h_low) - 1).max() < 0.01  # pressing force untouched
        _, h_10 = signal.sosfreqz(sos, worN=[10.0], fs=rate_hz)
        assert abs(abs(h_10[0]) - 1) < 0.05


def test_leakage_is_removed_from_both_outputs():
    rate_hz = 500.0
    t = times(rate_hz, 3.0)
    x = measured(t, np.full(t.size, 5.0), Leakage(30.0, 3.0, off=0.08, h2_n=1.0), noise_n=0.0)
    fast, slow = ForceFilters(rate_hz, 30.0).process(x)
    settled = t > 0.5
    assert np.abs(fast[settled] - 5.0).max() < 0.35
    assert np.abs(slow[settled] - 5.0).max() < 0.1


def test_without_notch_the_same_leakage_would_pass_the_fast_path():
    # the band-stop is what makes the fast path robust (a test that can fail)
    rate_hz = 500.0
    t = times(rate_hz, 2.0)
    x = measured(t, np.full(t.size, 5.0), Leakage(30.0, 3.0, off=0.08), noise_n=0.0)
    fast, _ = ForceFilters(rate_hz, None).process(x)
    assert np.abs(fast[t > 0.5] - 5.0).max() > 1.0


def test_motor_frequency_switch_mid_stream_moves_neither_output():
    rate_hz = 1000.0
    t = times(rate_hz, 4.0)
    f_true = np.where(t < 2.0, 40.0 * 1.06, 120.0 * 0.93)
    phase = 2 * np.pi * np.cumsum(f_true) / rate_hz
    x = 7.0 + 3.0 * np.sin(phase)
    filt = ForceFilters(rate_hz, 40.0)
    outs = []
    for sl in chunks(t.size, [10]):
        if t[sl][0] >= 2.0 and filt.motor_hz == 40.0:
            filt.set_motor_hz(120.0)
        outs.append(filt.process(x[sl]))
    fast = np.concatenate([o[0] for o in outs])
    slow = np.concatenate([o[1] for o in outs])
    after = t > 0.5
    # 7 N pressing, warning at 8 N for a 10 N limit: the switch must stay far from it
    assert np.abs(slow[after] - 7.0).max() < 0.2
    assert fast[after].max() < 7.6


def test_group_delays_are_reported_and_ordered():
    f = ForceFilters(1000.0, 25.0)
    assert 0 < f.fast_group_delay_s < f.filtered_group_delay_s < 0.05
    f.set_motor_hz(None)
    assert f.fast_group_delay_s < 0.01
