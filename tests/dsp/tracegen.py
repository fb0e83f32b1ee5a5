"""Realistic force traces for tests and benchmarks: a true pressing-force profile plus
sensor noise and motor leakage (a sinusoid at the motor's true frequency, which may be up
to 8 % off the commanded one, and optionally its 2nd harmonic), read by a sample-and-hold
ADC (the value at each sample time) or by an integrating one (the mean over the conversion
period ending at each sample time, as an HX711 converts: the leakage comes through at its
sinc response, ``integrating_gain``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def smooth_step(t_s: np.ndarray, t0_s: float, rise_s: float, a_n: float, b_n: float) -> np.ndarray:
    """Raised-cosine move from ``a_n`` to ``b_n`` starting at ``t0_s`` over ``rise_s``."""
    u = np.clip((t_s - t0_s) / max(rise_s, 1e-9), 0.0, 1.0)
    return a_n + (b_n - a_n) * (0.5 - 0.5 * np.cos(np.pi * u))


def ramp(t_s: np.ndarray, t0_s: float, slope_n_per_s: float, a_n: float, b_n: float) -> np.ndarray:
    """Linear ramp from ``a_n`` at ``t0_s`` toward ``b_n`` at ``slope_n_per_s``."""
    return np.where(t_s < t0_s, a_n, np.minimum(b_n, a_n + (t_s - t0_s) * slope_n_per_s))


@dataclass
class Leakage:
    """Motor leakage: ``amp_n`` peak at ``motor_hz * (1 + off)``; ``h2_n`` at twice that."""

    motor_hz: float
    amp_n: float = 3.0
    off: float = 0.0
    phase: float = 0.0
    h2_n: float = 0.0

    def at(self, t_s: np.ndarray, period_s: float = 0.0) -> np.ndarray:
        """The leakage at ``t_s``; with ``period_s`` > 0, its mean over the ``period_s``
        before each time (an integrating ADC): each tone scaled by its sinc and delayed by
        half the period."""
        f = self.motor_hz * (1 + self.off)
        tc = t_s - period_s / 2
        w = 2 * np.pi * f * tc + self.phase
        g1 = integrating_gain(f, period_s)
        g2 = integrating_gain(2 * f, period_s)
        return g1 * self.amp_n * np.sin(w) + g2 * self.h2_n * np.sin(2 * w + 0.7)


def integrating_gain(f_hz: float, period_s: float) -> float:
    """Gain of a mean over ``period_s`` for a tone at ``f_hz``: sinc(f T) (1 when T = 0)."""
    return float(np.sinc(f_hz * period_s)) if period_s > 0 else 1.0


def adc_read(true_fn, t_s: np.ndarray, period_s: float = 0.0, n_sub: int = 32) -> np.ndarray:
    """The true force ``true_fn(t)`` as an ADC reads it at ``t_s``: the value there
    (``period_s`` 0: sample-and-hold) or the mean over the ``period_s`` before (integrating)."""
    if period_s <= 0:
        return true_fn(t_s)
    offs = (np.arange(n_sub) + 0.5) / n_sub * period_s
    return np.mean([true_fn(t_s - o) for o in offs], axis=0)


def measured(
    t_s: np.ndarray,
    true_n: np.ndarray,
    leakage: Leakage | None = None,
    noise_n: float = 0.05,
    seed: int = 0,
    period_s: float = 0.0,
) -> np.ndarray:
    """What the sensor reports: true force (as the ADC read it: ``adc_read``) + leakage
    (through an integrating ADC when ``period_s`` > 0) + white noise (std ``noise_n``)."""
    rng = np.random.default_rng(seed)
    x = true_n + rng.normal(0.0, noise_n, t_s.size)
    if leakage is not None:
        x = x + leakage.at(t_s, period_s)
    return x


def times(rate_hz: float, duration_s: float, t0_s: float = 0.0) -> np.ndarray:
    return t0_s + np.arange(int(round(duration_s * rate_hz))) / rate_hz


def chunks(n: int, sizes: list[int]) -> list[slice]:
    """Cut range(n) into consecutive slices of the given sizes (cycled)."""
    out, a, i = [], 0, 0
    while a < n:
        b = min(n, a + max(1, sizes[i % len(sizes)]))
        out.append(slice(a, b))
        a, i = b, i + 1
    return out


def make_pipe(rate_hz, zone, *, motor_hz=None, intensity_pct=None, **kw):
    """A pipeline on newtons (identity calibration), vibrating when ``motor_hz`` is given."""
    from dsp.calibration import Calibration
    from dsp.pipeline import ForcePipeline

    kw.setdefault("flatline_s", None)
    pipe = ForcePipeline(rate_hz, Calibration.identity(), zone, **kw)
    if motor_hz:
        pct = intensity_pct if intensity_pct is not None else max(zone.vibration_cap_pct, 1.0)
        pipe.set_vibration(pct, motor_hz)
    return pipe


def run_trace(pipe, t_s: np.ndarray, force_n: np.ndarray, batch: int = 10) -> list:
    """Feed ``force_n`` (newtons) in batches; host time = last device time. All events."""
    events = []
    for sl in chunks(t_s.size, [batch]):
        events.extend(pipe.on_batch(t_s[sl], force_n[sl], float(t_s[sl][-1])).events)
    return events


def adc_period_s(rate_hz: float) -> float:
    """The ADC a sensor at ``rate_hz`` has (for ``adc_read``/``measured``): integrating over
    its conversion period at <= 80 Hz (an HX711), sample-and-hold (period 0) above."""
    return 1.0 / rate_hz if rate_hz <= 80.0 else 0.0


def delay_target_s(rate_hz: float) -> float:
    """Issue 13's over-limit detection delay target: max(15 ms, 2 sample periods)."""
    return max(0.015, 2.0 / rate_hz)
