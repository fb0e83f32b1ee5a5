"""Streaming filters for the pressing force, with state kept between batches.

Pressing force is the content below ~10 Hz; a running motor leaks vibration into the sensor
(up to 3 N peak at 25-200 Hz, its true speed up to 8 % off the command). Two outputs:

* ``fast_n``: motor band-stops (command and 2nd harmonic, aliased when above Nyquist) and a
  40 Hz low-pass. Little lag (~8 ms at DC): the supervisor's fast path for sharp over-limits.
* ``filtered_n``: ``fast_n`` through a further 10 Hz Butterworth low-pass: the pressing force
  shown, held and warned on.

Both are computed with one ``sosfilt`` call (the whole fast cascade) and one ``lfilter``
call (the 10 Hz biquad) per batch. Feeding an input in any chunking gives the output of one
offline pass: state is carried in ``zi`` and initialised from the first sample only.

A stream that *re*starts (after a lost link) may start mid-press with the motor still
leaking into the sensor: one sample can sit up to the leakage peak (3 N) off the pressing
force, and filters started there ring toward the truth, a transient that looks like a fast
rise. ``restart()`` therefore initialises from the mean of the first batch instead, which
averages most of the leakage out (the supervisor also holds its rate-of-rise rule off while
the filters settle: ``dsp.supervisor.SETTLE_S``).
"""

from __future__ import annotations

import numpy as np
from scipy import signal

#: Low-pass corner for the pressing force (Hz).
PRESSING_CUTOFF_HZ = 10.0
#: Low-pass corner of the fast path (Hz): above pressing force, below most motor leakage.
FAST_CUTOFF_HZ = 40.0
#: Half-width of each motor band-stop relative to its centre: covers a motor 8 % off.
NOTCH_HALF_WIDTH = 0.10
#: Stop-band attenuation of the motor band-stops (dB) across +/- NOTCH_HALF_WIDTH.
NOTCH_ATTENUATION_DB = 26.0
#: A band-stop whose lower edge would fall under this (Hz) is skipped: it would eat pressing
#: force. (Motors run at 20 Hz and up.)
NOTCH_MIN_EDGE_HZ = 15.0


def _alias_hz(f_hz: float, rate_hz: float) -> float:
    """Where a tone at ``f_hz`` appears after sampling at ``rate_hz`` (0..Nyquist)."""
    f = f_hz % rate_hz
    return rate_hz - f if f > rate_hz / 2 else f


def motor_bandstop_sos(rate_hz: float, motor_hz: float | None) -> np.ndarray:
    """Band-stop sections for a motor commanded at ``motor_hz`` (empty (0, 6) when off).

    One 4th-order Chebyshev II band-stop per harmonic (1st and 2nd), spanning
    ``motor_hz * h * (1 +/- NOTCH_HALF_WIDTH)`` with NOTCH_ATTENUATION_DB everywhere inside,
    so a motor running up to 8 % off its command is still rejected. A band whose image
    (after aliasing) reaches under NOTCH_MIN_EDGE_HZ is skipped.
    """
    if not motor_hz or motor_hz <= 0:
        return np.zeros((0, 6))
    nyq = rate_hz / 2
    sections = []
    for harmonic in (1, 2):
        lo_raw = harmonic * motor_hz * (1 - NOTCH_HALF_WIDTH)
        hi_raw = harmonic * motor_hz * (1 + NOTCH_HALF_WIDTH)
        if hi_raw >= rate_hz - NOTCH_MIN_EDGE_HZ and lo_raw <= rate_hz + NOTCH_MIN_EDGE_HZ:
            continue  # images near DC: cannot be removed without removing pressing force
        lo, hi = sorted((_alias_hz(lo_raw, rate_hz), _alias_hz(hi_raw, rate_hz)))
        if lo_raw < nyq < hi_raw:  # the band folds over Nyquist: stop up to near Nyquist
            lo = min(lo, hi)
            hi = nyq
        hi = min(hi, 0.97 * nyq)
        if lo < NOTCH_MIN_EDGE_HZ or hi <= lo * 1.01:
            continue
        sections.append(
            signal.cheby2(2, NOTCH_ATTENUATION_DB, [lo, hi], "bandstop", fs=rate_hz, output="sos")
        )
    return np.vstack(sections) if sections else np.zeros((0, 6))


def sos_group_delay_s(sos: np.ndarray, rate_hz: float, f_hz: float = 1.0) -> float:
    """Group delay (seconds) of an SOS cascade at ``f_hz`` (default 1 Hz, near DC)."""
    total = 0.0
    for sec in np.atleast_2d(sos):
        _, gd = signal.group_delay((sec[:3], sec[3:]), w=[f_hz], fs=rate_hz)
        total += float(gd[0])
    return total / rate_hz


class ForceFilters:
    """The streaming fast path and pressing-force low-pass for one sample rate.

    ``process(force_n) -> (fast_n, filtered_n)``. ``set_motor_hz`` swaps the band-stops
    between batches without a transient: the new band-stop sections start in the steady
    state of the current fast output level (the level is what the old and new filters agree
    on), and the low-pass sections keep their state, so a frequency change alone moves
    neither output.
    """

    def __init__(self, rate_hz: float, motor_hz: float | None = None) -> None:
        if not rate_hz > 4 * PRESSING_CUTOFF_HZ:
            raise ValueError(f"sample rate {rate_hz} Hz is too low for the force filters")
        self.rate_hz = float(rate_hz)
        self._lp_fast = signal.butter(2, FAST_CUTOFF_HZ, fs=self.rate_hz, output="sos")
        b, a = signal.butter(2, PRESSING_CUTOFF_HZ, fs=self.rate_hz)
        self._b, self._a = b, a
        self._zi_slow_unit = signal.lfilter_zi(b, a)
        self._zi_slow: np.ndarray | None = None
        self._zi_fast: np.ndarray | None = None
        self._init_from_mean = False
        self._last_fast_n = 0.0
        self.motor_hz: float | None = None
        self._notch = np.zeros((0, 6))
        self._sos = self._lp_fast
        self.set_motor_hz(motor_hz)

    @property
    def fast_sos(self) -> np.ndarray:
        """The whole fast cascade (band-stops then 40 Hz low-pass)."""
        return self._sos

    @property
    def fast_group_delay_s(self) -> float:
        """Delay (seconds, near DC) of ``fast_n`` behind the pressing force."""
        return sos_group_delay_s(self._sos, self.rate_hz)

    @property
    def filtered_group_delay_s(self) -> float:
        """Delay (seconds, near DC) of ``filtered_n`` behind the pressing force."""
        _, gd = signal.group_delay((self._b, self._a), w=[1.0], fs=self.rate_hz)
        return self.fast_group_delay_s + float(gd[0]) / self.rate_hz

    def set_motor_hz(self, motor_hz: float | None) -> None:
        """Notch the motor commanded at ``motor_hz`` (None or 0: motor off, no notch)."""
        motor_hz = float(motor_hz) if motor_hz and motor_hz > 0 else None
        if motor_hz == self.motor_hz:
            return
        self.motor_hz = motor_hz
        self._notch = motor_bandstop_sos(self.rate_hz, motor_hz)
        self._sos = np.vstack([self._notch, self._lp_fast])
        if self._zi_fast is None:
            return  # not started yet: initialised from the first sample
        n_new = self._notch.shape[0]
        zi_lp = self._zi_fast[-self._lp_fast.shape[0] :]
        zi = np.empty((self._sos.shape[0], 2))
        if n_new:
            zi[:n_new] = signal.sosfilt_zi(self._notch) * self._last_fast_n
        zi[n_new:] = zi_lp
        self._zi_fast = zi

    def reset(self) -> None:
        """Forget all state: the next sample restarts the filters in its steady state."""
        self._zi_fast = None
        self._zi_slow = None
        self._init_from_mean = False

    def restart(self) -> None:
        """Forget all state for a stream that starts again (e.g. after a reconnect): the
        next batch starts the filters in the steady state of its *mean*, so that leakage on
        a single sample does not become a start-up transient."""
        self.reset()
        self._init_from_mean = True

    def process(self, force_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Filter one batch (newtons); returns (fast_n, filtered_n), new arrays."""
        x = np.asarray(force_n, dtype=np.float64)
        if x.size == 0:
            return x.copy(), x.copy()
        if self._zi_fast is None:
            x0 = float(x.mean()) if self._init_from_mean else float(x[0])
            self._init_from_mean = False
            self._zi_fast = signal.sosfilt_zi(self._sos) * x0
            self._zi_slow = self._zi_slow_unit * x0
        fast, self._zi_fast = signal.sosfilt(self._sos, x, zi=self._zi_fast)
        slow, self._zi_slow = signal.lfilter(self._b, self._a, fast, zi=self._zi_slow)
        self._last_fast_n = float(fast[-1])
        return fast, slow
