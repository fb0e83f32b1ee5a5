"""analyze's trace figures computed the fast way (dsp/analysis.py, issue 13) against the
plain computation: the rate from the median sample interval, and the summary's peak, time
in band and time over the limit gathered batch by batch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.analysis import _MEDIAN_BY_COUNT_MIN, _Figures, _median


@st.composite
def samples(draw):
    """Arrays like a trace's sample intervals (a regular clock, with jitter or rounding,
    gaps, repeated times) and unlike them (spread out, few values, two halves, NaN)."""
    n = draw(st.sampled_from([1, 2, 3, 100, _MEDIAN_BY_COUNT_MIN - 1, _MEDIAN_BY_COUNT_MIN]))
    n = n + draw(st.integers(0, 3)) if n > 3 else n
    if draw(st.booleans()):
        n = draw(st.integers(_MEDIAN_BY_COUNT_MIN, 40_000))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(
        st.sampled_from(["clock", "jitter", "us", "gaps", "normal", "few", "halves", "nan"])
    )
    rate_hz = draw(st.sampled_from([10.0, 80.0, 1000.0, 2000.0]))
    if kind == "clock":
        return np.diff(np.arange(n + 1) / rate_hz + draw(st.floats(0.0, 1e5)))
    if kind == "jitter":
        return np.diff(np.arange(n + 1) / rate_hz + rng.normal(0.0, 1e-5, n + 1))
    if kind == "us":  # a device clock in microseconds
        return np.diff(np.round((np.arange(n + 1) / rate_hz) * 1e6) / 1e6)
    if kind == "gaps":
        x = np.full(n, 1.0 / rate_hz)
        x[rng.integers(0, n, max(1, n // 3))] *= rng.integers(0, 4, max(1, n // 3))
        return x
    if kind == "normal":
        return rng.normal(size=n)
    if kind == "few":
        return rng.integers(0, 3, n).astype(float)
    if kind == "halves":  # the two middle values differ: the median is between them
        return rng.permutation(np.repeat([1.0 / rate_hz, 2.0 / rate_hz], (n + 1) // 2))
    x = rng.normal(size=n)
    x[rng.integers(0, n)] = np.nan
    return x


@settings(max_examples=60)
@given(x=samples())
def test_the_median_is_numpys(x):
    got, want = _median(x, x), np.median(x)
    assert (math.isnan(got) and math.isnan(want)) or got == want
    assert type(got) is type(want)


@pytest.mark.parametrize("n", [_MEDIAN_BY_COUNT_MIN, _MEDIAN_BY_COUNT_MIN + 1, 10_000])
@pytest.mark.parametrize("more_low", [-1, 0, 1])
def test_the_median_of_two_values_near_half_and_half(n, more_low):
    """The middle values differ, or one of them is the edge of its value's run."""
    for seed in range(6):
        low = n // 2 + more_low
        x = np.random.default_rng(seed).permutation(np.where(np.arange(n) < low, 1e-3, 2e-3))
        assert _median(x, x) == np.median(x)


def test_the_median_counts_when_the_middle_repeats_and_sorts_otherwise():
    """Both ways are taken (the test above would pass with np.median alone)."""
    clock = np.diff(np.arange(20_001) / 1000.0)
    spread = np.random.default_rng(1).normal(size=20_000)
    with pytest.MonkeyPatch.context() as mp:
        calls = []
        real = np.median
        mp.setattr(np, "median", lambda x: calls.append(x.size) or real(x))
        assert _median(clock, clock) == real(clock)
        assert calls == []
        assert _median(spread, spread) == real(spread)
        assert calls == [20_000]


@settings(max_examples=60)
@given(
    n=st.integers(1, 3000),
    seed=st.integers(0, 2**32 - 1),
    values=st.sampled_from(["smooth", "ties", "nan"]),
    sizes=st.lists(st.integers(1, 700), min_size=1, max_size=5),
)
def test_the_summary_figures_gathered_by_batch_are_the_whole_traces(n, seed, values, sizes):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(0.0005, 0.0015, n))
    dt = np.append(np.diff(t), 0.001)
    if values == "smooth":
        f = 6.0 + 5.0 * np.sin(t * rng.uniform(1, 20)) + rng.normal(0, 0.1, n)
    else:
        f = rng.integers(0, 12, n).astype(float)  # the peak repeats
        if values == "nan":
            f[rng.integers(0, n, 2)] = np.nan
    band, limit = (4.0, 7.5), 10.0
    figures = _Figures(band, limit)
    a, i = 0, 0
    while a < n:
        b = min(n, a + sizes[i % len(sizes)])
        figures.add(a, dt[a:b], f[a:b])
        a, i = b, i + 1
    k = int(np.argmax(f))  # the first of the largest (of the NaN, when there is one)
    assert figures.peak_i == k
    assert figures.peak_n == f[k] or (math.isnan(figures.peak_n) and math.isnan(f[k]))
    in_band = dt[(f >= band[0]) & (f <= band[1])].sum()
    assert figures.in_band_s == pytest.approx(in_band, abs=1e-9)
    assert figures.over_limit_s == pytest.approx(dt[f >= limit].sum(), abs=1e-9)
