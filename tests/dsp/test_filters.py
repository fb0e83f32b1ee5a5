"""Streaming filters: chunking invariance, motor band-stops, frequency switches."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from dsp.filters import LEAK_PEAK_N, LEAK_RESIDUAL_N, ForceFilters, motor_bandstop_sos
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
        # the whole fast path: the band-stops and the fast low-pass
        sos = ForceFilters(rate_hz, motor_hz).fast_sos
        for harmonic, peak_n in zip((1, 2), LEAK_PEAK_N, strict=True):
            freqs = harmonic * motor_hz * np.linspace(0.85, 1.15, 31)
            _, h = signal.sosfreqz(sos, worN=freqs, fs=rate_hz)
            # 3 N (1 N at the 2nd harmonic) -> at most the residual the design allows
            assert peak_n * np.abs(h).max() <= LEAK_RESIDUAL_N + 1e-6, (motor_hz, harmonic)
        _, h_low = signal.sosfreqz(sos, worN=[0.5, 5.0], fs=rate_hz)
        assert np.abs(np.abs(h_low) - 1).max() < 0.01  # pressing force untouched
        _, h_10 = signal.sosfreqz(sos, worN=[10.0], fs=rate_hz)
        assert abs(abs(h_10[0]) - 1) < 0.05


def test_each_band_stop_is_only_as_deep_as_its_leak_needs():
    # a deeper band-stop near the pressing band delays the over-limit stop: the 2nd
    # harmonic (1 N) gets a shallower one than the fundamental (3 N), and while the
    # band-stops run the fast low-pass moves up from 40 to 80 Hz
    rate_hz = 1000.0
    fundamental = motor_bandstop_sos(rate_hz, 53.0)[:2]
    second = motor_bandstop_sos(rate_hz, 53.0)[2:]
    _, h1 = signal.sosfreqz(fundamental, worN=[53.0], fs=rate_hz)
    _, h2 = signal.sosfreqz(second, worN=[106.0], fs=rate_hz)
    assert abs(h2[0]) > 2 * abs(h1[0])
    off, on = ForceFilters(rate_hz, None), ForceFilters(rate_hz, 53.0)
    assert off.design.fast_cutoff_hz == 40.0 and on.design.motor_fast_cutoff_hz == 80.0
    _, h_off = signal.sosfreqz(off.fast_sos, worN=[60.0], fs=rate_hz)
    _, h_lp = signal.sosfreqz(on.fast_sos[-1:], worN=[60.0], fs=rate_hz)
    assert abs(h_lp[0]) > abs(h_off[0]) + 0.2  # the 80 Hz corner passes 60 Hz, 40 Hz does not
    assert on.fast_group_delay_s < 0.008


def test_a_motor_starting_and_stopping_mid_press_moves_neither_output():
    # the fast low-pass changes with the band-stops: the cascade restarts at its level
    rate_hz = 1000.0
    t = times(rate_hz, 3.0)
    # the motor spins up and brakes with a 60 ms time constant, as an ERM does
    level = np.where(t >= 1.0, 1.0 - np.exp(-(t - 1.0) / 0.06), 0.0)
    level = np.where(t >= 2.0, level * np.exp(-(t - 2.0) / 0.06), level)
    x = 7.0 + level * 3.0 * np.sin(2 * np.pi * 53.0 * t)
    filt = ForceFilters(rate_hz, None)
    outs = []
    for sl in chunks(t.size, [10]):
        if 1.0 <= t[sl][0] < 2.0 and filt.motor_hz is None:
            filt.set_motor_hz(53.0)
        elif t[sl][0] >= 2.0 and filt.motor_hz is not None:
            filt.set_motor_hz(None)
        outs.append(filt.process(x[sl]))
    fast = np.concatenate([o[0] for o in outs])
    slow = np.concatenate([o[1] for o in outs])
    after = t > 0.5
    assert np.abs(slow[after] - 7.0).max() < 0.3
    assert fast[after].max() < 7.0 + LEAK_RESIDUAL_N + 0.1


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
    # 7 N pressing, warning at 8 N for a 10 N limit: the switch must stay far from it (a
    # tone meeting a fresh band-stop rings for a few periods: at most twice the residual)
    assert np.abs(slow[after] - 7.0).max() < 0.2
    assert fast[after].max() < 7.0 + 2 * LEAK_RESIDUAL_N


def test_group_delays_are_reported_and_ordered():
    f = ForceFilters(1000.0, 25.0)
    assert 0 < f.fast_group_delay_s < f.filtered_group_delay_s < 0.05
    f.set_motor_hz(None)
    assert f.fast_group_delay_s < 0.01
