"""Ring buffers and peak decimation for the live plot (pure numpy, no Qt)."""

from __future__ import annotations

import numpy as np
import pytest

from ui.plot_buffers import ForceRing, decimate_peak


def _feed(ring: ForceRing, n: int, batch: int = 10, start: int = 0) -> None:
    for i in range(start, start + n, batch):
        idx = np.arange(i, min(i + batch, start + n), dtype=float)
        ring.append(idx / 1000.0, idx, -idx)


def test_ring_keeps_the_newest_samples_contiguous_across_wraps():
    ring = ForceRing(1000)
    _feed(ring, 2345, batch=7)
    assert len(ring) == 1000 and ring.total == 2345
    t, f, ff, first = ring.latest(1000)
    assert first == 1345
    np.testing.assert_array_equal(f, np.arange(1345, 2345))
    np.testing.assert_array_equal(ff, -np.arange(1345, 2345))
    np.testing.assert_allclose(t, np.arange(1345, 2345) / 1000.0)
    assert not f.flags.writeable


def test_ring_since_selects_by_device_time_and_takes_oversized_batches():
    ring = ForceRing(100)
    idx = np.arange(250, dtype=float)
    ring.append(idx / 1000.0, idx, idx)
    assert ring.total == 250 and len(ring) == 100
    t, f, _, first = ring.since(0.2)
    assert first == 200 and f[0] == 200 and f[-1] == 249
    assert ring.since(1.0)[0].size == 0


def test_decimation_keeps_the_envelope_and_stays_put_as_data_scroll():
    rng = np.random.default_rng(1)
    y = rng.normal(size=30_000)
    y[12_345] = 50.0  # a one-sample spike must survive
    x = np.arange(y.size) / 1000.0
    xd, (yd,) = decimate_peak(x, (y,), 0, 1000)
    assert len(xd) <= 2 * 1000 + 2 * 30
    assert yd.max() == 50.0 and yd.min() == y.min()
    # scrolled by 7 samples: bins that hold the same samples give the same values
    xd2, (yd2,) = decimate_peak(x[7:], (y[7:],), 7, 1000)
    common = np.intersect1d(xd[0::2], xd2)
    assert common.size > 900
    a = yd[np.searchsorted(xd, common)]
    b = yd2[np.searchsorted(xd2, common)]
    np.testing.assert_array_equal(a, b)


def test_decimation_returns_small_data_unchanged():
    x = np.arange(10.0)
    xd, (yd,) = decimate_peak(x, (x * 2,), 0, 100)
    assert xd is x and np.array_equal(yd, x * 2)
    with pytest.raises(ValueError):
        decimate_peak(x, (x,), 0, 0)
