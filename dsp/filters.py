"""Streaming filters for the pressing force, with state kept between batches, designed
against the stream's Nyquist frequency (sensor rates 10-2000 Hz).

Pressing force is the content below ~10 Hz; a running motor leaks vibration into the sensor
(up to 3 N peak at 25-200 Hz, its true speed up to 15 % off the command). Two outputs:

* ``fast_n``: motor band-stops (command and 2nd harmonic, placed on their alias when above
  Nyquist) and a 40 Hz low-pass (80 Hz while band-stops take the motor off: see below).
  Little lag (~6 ms at DC with no motor): the supervisor's fast path for sharp over-limits.

Each band-stop is as shallow as its harmonic allows, because a band-stop near the pressing
band delays the fast path (group delay) and so the over-limit stop: it brings the leak it
covers (that harmonic's peak, through the ADC) down to LEAK_RESIDUAL_N for a 10 N limit, no
further; the budget scales with the limit in force (a 5 N limit gets deeper band-stops: the
margin a false stop has to cross, 10 % of the limit, is half as wide). And while
a band-stop takes the motor off the fast path, the fast low-pass moves from 40 Hz up to
MOTOR_FAST_CUTOFF_HZ: a 40 Hz corner is there to keep motor leakage out, which the band-stops
now do, and it alone costs 5.6 ms at DC. Measured (benchmarks/bench_dsp.py): at 1 kHz this
took the worst delay of a 53 Hz motor from 16 to 7 ms, of a 40 Hz motor from 19 to 5 ms,
with the worst fast force at 90 % of a 10 N limit still 0.5 N under the limit.
* ``filtered_n``: ``fast_n`` through a further 10 Hz Butterworth low-pass: the pressing force
  shown, held and warned on.

At low rates each stage is kept only where it means something (``FilterDesign``):

* the 40 Hz low-pass only when 40 Hz is under MAX_CUTOFF_FRACTION of Nyquist (from 100 Hz):
  below that the stream itself carries nothing above ~40 Hz, and a slow ADC that integrates
  over its conversion period (the HX711) is its own anti-alias filter;
* the 10 Hz low-pass only when 10 Hz is under MAX_CUTOFF_FRACTION of Nyquist (from 25 Hz): at
  10 Hz the whole stream (0-5 Hz) is pressing force, and ``filtered_n`` is ``fast_n``;
* a motor band-stop only where its alias (the band folded into 0..Nyquist) stays above
  NOTCH_MIN_EDGE_HZ: an alias in the pressing band cannot be removed without removing
  pressing force, and is left to the ADC's own attenuation.

Every design is checked once, at construction, with a message that says what the rate
cannot do (never scipy's). Both outputs are computed with one ``sosfilt`` call (the whole
fast cascade) and one ``lfilter`` call (the 10 Hz biquad, when there is one) per batch.
Feeding an input in any chunking gives the output of one offline pass: state is carried in
``zi`` and initialised from the first sample only.

A stream that *re*starts (after a lost link) may start mid-press with the motor still
leaking into the sensor: one sample can sit up to the leakage peak (3 N) off the pressing
force, and filters started there ring toward the truth, a transient that looks like a fast
rise. ``restart()`` therefore initialises from the mean of the first batch instead, which
averages most of the leakage out (the supervisor also holds its rate-of-rise rule off while
the filters settle: ``dsp.supervisor.SETTLE_S``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal

#: Low-pass corner for the pressing force (Hz).
PRESSING_CUTOFF_HZ = 10.0
#: Low-pass corner of the fast path (Hz): above pressing force, below most motor leakage.
FAST_CUTOFF_HZ = 40.0
#: A low-pass is designed only when its corner is under this fraction of Nyquist.
MAX_CUTOFF_FRACTION = 0.8
#: Half-width of each motor band-stop relative to its centre: covers a motor 15 % off.
NOTCH_HALF_WIDTH = 0.17
#: The limit (N) the leak budgets below are stated for (neck_back's); they scale with the
#: limit in force, as the margin between 90 % of it and it does.
REFERENCE_LIMIT_N = 10.0
#: Each motor band-stop brings its harmonic's leak (peak, through the ADC) down to this (N,
#: at REFERENCE_LIMIT_N): no deeper, as depth near the pressing band costs delay. Its stop-band
#: attenuation across +/- NOTCH_HALF_WIDTH is what that takes, within NOTCH_ATTENUATION_DB.
LEAK_RESIDUAL_N = 0.4
NOTCH_ATTENUATION_DB = (6.0, 30.0)
#: The fast low-pass corner (Hz) while motor band-stops take the leak off the fast path.
MOTOR_FAST_CUTOFF_HZ = 80.0
#: A motor turned off brakes (an ERM in ~40 ms, a faulty one slower), leaking as it slows:
#: its band-stops stay this long (s) after the command. Without them a 25 Hz motor braking
#: under a steady press put 2.1 N on the fast path, enough for a false stop at 90 % of a limit.
MOTOR_RUNDOWN_S = 0.3
#: A band-stop whose (aliased) lower edge would fall under this (Hz) is skipped: it would
#: eat pressing force. (Motors run at 20 Hz and up.)
NOTCH_MIN_EDGE_HZ = 15.0
#: A band-stop's upper edge stays under this fraction of Nyquist.
NOTCH_MAX_EDGE_FRACTION = 0.97
#: At or under this rate the sensor's ADC is taken to integrate over its conversion period
#: (the HX711 and every slow sigma-delta load-cell ADC do): a tone at f comes through at
#: |sinc(f / rate)|.
INTEGRATING_MAX_HZ = 80.0
#: Leakage peak assumed per motor harmonic (N, 1st and 2nd) ...
LEAK_PEAK_N = (3.0, 1.0)
#: ... and a band-stop is built only where that much leakage, through the ADC, would reach
#: the fast path with more than this (N peak, at REFERENCE_LIMIT_N): a slow integrating ADC
#: already removes most of a fast motor, and each band-stop near the pressing band costs
#: delay.
NOTCH_NEEDED_N = 0.5
#: Sensor rates the filters are designed for (Hz): the protocol's DeviceInfo allows 10-2000;
#: a trace's estimated rate may be a little under 10.
MIN_RATE_HZ = 5.0
MAX_RATE_HZ = 20_000.0


class FilterDesignError(ValueError):
    """A filter that cannot be built at this sample rate; the message says why."""


def _alias_hz(f_hz: float, rate_hz: float) -> float:
    """Where a tone at ``f_hz`` appears after sampling at ``rate_hz`` (0..Nyquist)."""
    f = f_hz % rate_hz
    return rate_hz - f if f > rate_hz / 2 else f


def aliased_band_hz(lo_hz: float, hi_hz: float, rate_hz: float) -> tuple[float, float]:
    """The image (lo, hi) in 0..Nyquist of the band [lo_hz, hi_hz] sampled at ``rate_hz``.
    A band that contains a multiple of the rate folds onto DC (lo = 0); one that contains an
    odd multiple of Nyquist folds onto Nyquist (hi = Nyquist)."""
    nyq = rate_hz / 2
    if hi_hz - lo_hz >= nyq:
        return 0.0, nyq
    a, b = _alias_hz(lo_hz, rate_hz), _alias_hz(hi_hz, rate_hz)
    lo, hi = min(a, b), max(a, b)
    k_lo, k_hi = math.floor(lo_hz / nyq), math.floor(hi_hz / nyq)
    if k_hi > k_lo:  # the band crosses k_hi * Nyquist
        if k_hi % 2 == 0:  # a multiple of the rate: folds at DC
            lo = 0.0
        else:
            hi = nyq
    return lo, hi


def _checked_cutoff(kind: str, cutoff_hz: float, rate_hz: float) -> None:
    nyq = rate_hz / 2
    if not 0 < cutoff_hz < nyq:
        raise FilterDesignError(
            f"{kind} at {cutoff_hz:g} Hz cannot be built at {rate_hz:g} Hz "
            f"(it must lie between 0 and Nyquist, {nyq:g} Hz)"
        )


def adc_gain(lo_hz: float, hi_hz: float, rate_hz: float, integrating: bool) -> float:
    """The largest gain of the ADC over [lo_hz, hi_hz]: 1 for sample-and-hold, the peak of
    |sinc(f / rate)| for one that integrates over its conversion period."""
    if not integrating:
        return 1.0
    f = np.linspace(lo_hz, hi_hz, 64) / rate_hz
    return float(np.abs(np.sinc(f)).max())


def notch_attenuation_db(leak_n: float, residual_n: float = LEAK_RESIDUAL_N) -> float:
    """Stop-band attenuation (dB) that brings a leak of ``leak_n`` (peak, N) down to
    ``residual_n``, within NOTCH_ATTENUATION_DB."""
    lo_db, hi_db = NOTCH_ATTENUATION_DB
    return min(hi_db, max(lo_db, 20.0 * math.log10(leak_n / residual_n)))


def _budget_scale(limit_n: float) -> float:
    if not (math.isfinite(limit_n) and limit_n > 0):
        raise FilterDesignError(f"a limit of {limit_n} N: the motor band-stops need one above 0")
    return limit_n / REFERENCE_LIMIT_N


def motor_bandstop_sos(
    rate_hz: float,
    motor_hz: float | None,
    integrating_adc: bool | None = None,
    limit_n: float = REFERENCE_LIMIT_N,
) -> np.ndarray:
    """Band-stop sections for a motor commanded at ``motor_hz`` (empty (0, 6) when off).

    One 4th-order Chebyshev II band-stop per harmonic (1st and 2nd), spanning the alias of
    ``motor_hz * h * (1 +/- NOTCH_HALF_WIDTH)`` with the attenuation everywhere inside that
    brings the harmonic's leak through the ADC down to LEAK_RESIDUAL_N scaled to ``limit_n``
    (``notch_attenuation_db``), so a motor running up to 15 % off its command is still
    rejected. A band whose image
    (after aliasing) reaches under NOTCH_MIN_EDGE_HZ, into the pressing band, is skipped, and
    so is one the ADC already brings under NOTCH_NEEDED_N, also scaled (``integrating_adc``:
    None means integrating at or under INTEGRATING_MAX_HZ).
    """
    if not motor_hz or motor_hz <= 0:
        return np.zeros((0, 6))
    scale = _budget_scale(limit_n)
    if integrating_adc is None:
        integrating_adc = rate_hz <= INTEGRATING_MAX_HZ
    nyq = rate_hz / 2
    sections = []
    for harmonic, peak_n in zip((1, 2), LEAK_PEAK_N, strict=True):
        lo_raw = harmonic * motor_hz * (1 - NOTCH_HALF_WIDTH)
        hi_raw = harmonic * motor_hz * (1 + NOTCH_HALF_WIDTH)
        leak_n = peak_n * adc_gain(lo_raw, hi_raw, rate_hz, integrating_adc)
        if leak_n <= NOTCH_NEEDED_N * scale:
            continue
        att_db = notch_attenuation_db(leak_n, LEAK_RESIDUAL_N * scale)
        lo, hi = aliased_band_hz(lo_raw, hi_raw, rate_hz)
        if lo < NOTCH_MIN_EDGE_HZ:
            continue  # images in the pressing band: cannot be removed without removing force
        _checked_cutoff("a motor band-stop edge", lo, rate_hz)
        if hi >= NOTCH_MAX_EDGE_FRACTION * nyq:
            # the image reaches Nyquist (a tone there alternates sample by sample): stop
            # everything from lo up, a Chebyshev II low-pass whose stop band starts at lo
            sections.append(signal.cheby2(4, att_db, lo, "lowpass", fs=rate_hz, output="sos"))
            continue
        if hi <= lo * 1.01:
            continue
        _checked_cutoff("a motor band-stop edge", hi, rate_hz)
        sections.append(signal.cheby2(2, att_db, [lo, hi], "bandstop", fs=rate_hz, output="sos"))
    return np.vstack(sections) if sections else np.zeros((0, 6))


@dataclass(frozen=True)
class FilterDesign:
    """Which low-passes a sample rate keeps (None: the stage drops out) and why."""

    rate_hz: float
    fast_cutoff_hz: float | None
    pressing_cutoff_hz: float | None

    @classmethod
    def for_rate(cls, rate_hz: float) -> FilterDesign:
        rate = float(rate_hz)
        if not math.isfinite(rate) or not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
            raise FilterDesignError(
                f"a sample rate of {rate_hz} Hz: the force filters work from "
                f"{MIN_RATE_HZ:g} to {MAX_RATE_HZ:g} Hz"
            )
        limit = MAX_CUTOFF_FRACTION * rate / 2
        fast = FAST_CUTOFF_HZ if limit >= FAST_CUTOFF_HZ else None
        pressing = PRESSING_CUTOFF_HZ if limit >= PRESSING_CUTOFF_HZ else None
        for kind, hz in (("the fast low-pass", fast), ("the pressing low-pass", pressing)):
            if hz is not None:
                _checked_cutoff(kind, hz, rate)
        return cls(rate, fast, pressing)

    @property
    def motor_fast_cutoff_hz(self) -> float | None:
        """The fast low-pass corner while motor band-stops run: MOTOR_FAST_CUTOFF_HZ where
        the rate allows it, else the usual one."""
        if MAX_CUTOFF_FRACTION * self.rate_hz / 2 >= MOTOR_FAST_CUTOFF_HZ:
            return MOTOR_FAST_CUTOFF_HZ
        return self.fast_cutoff_hz

    def notes(self) -> list[str]:
        """What the rate means for the filters, in words (empty at full rate)."""
        out = []
        if self.fast_cutoff_hz is None:
            out.append(
                f"at {self.rate_hz:g} Hz the fast path has no {FAST_CUTOFF_HZ:g} Hz low-pass "
                "(the stream carries nothing above Nyquist)"
            )
        if self.pressing_cutoff_hz is None:
            out.append(
                f"at {self.rate_hz:g} Hz the whole stream is pressing force: no "
                f"{PRESSING_CUTOFF_HZ:g} Hz low-pass"
            )
        return out


def sos_group_delay_s(sos: np.ndarray, rate_hz: float, f_hz: float = 1.0) -> float:
    """Group delay (seconds) of an SOS cascade at ``f_hz`` (default 1 Hz, near DC)."""
    f_hz = min(f_hz, rate_hz / 8)
    total = 0.0
    for sec in np.atleast_2d(sos):
        if sec.size == 0:
            continue
        _, gd = signal.group_delay((sec[:3], sec[3:]), w=[f_hz], fs=rate_hz)
        total += float(gd[0])
    return total / rate_hz


class ForceFilters:
    """The streaming fast path and pressing-force low-pass for one sample rate.

    ``process(force_n) -> (fast_n, filtered_n)``. ``set_motor_hz`` swaps the band-stops
    between batches without a transient: the new band-stop sections start in the steady
    state of the current fast output level (the level is what the old and new filters agree
    on), and the low-pass sections keep their state, so a frequency change alone moves
    neither output. When the fast low-pass changes too (the motor starts or stops being
    band-stopped), the whole fast cascade starts in that steady state: ``fast_n`` goes on
    from the level it had, without its lag behind a moving force.
    """

    def __init__(
        self, rate_hz: float, motor_hz: float | None = None, limit_n: float = REFERENCE_LIMIT_N
    ) -> None:
        self.design = FilterDesign.for_rate(rate_hz)
        _budget_scale(limit_n)  # checked here, once
        self.limit_n = float(limit_n)  # the limit the band-stops' depth is for
        self.rate_hz = self.design.rate_hz
        self._lp_fast = self._lowpass(self.design.fast_cutoff_hz)
        self._lp_fast_motor = self._lowpass(self.design.motor_fast_cutoff_hz)
        self._lp = self._lp_fast  # the fast low-pass in use
        pc = self.design.pressing_cutoff_hz
        self._has_slow = pc is not None
        if pc is not None:
            b, a = signal.butter(2, pc, fs=self.rate_hz)
        else:
            b, a = np.array([1.0]), np.array([1.0])
        self._b, self._a = b, a
        self._zi_slow_unit = signal.lfilter_zi(b, a) if self._has_slow else np.zeros(0)
        self._zi_slow: np.ndarray | None = None
        self._zi_fast: np.ndarray | None = None
        self._init_from_mean = False
        self._last_fast_n = 0.0
        self.motor_hz: float | None = None  # the motor as commanded
        self._notch_for_key: tuple[float | None, float] = (None, REFERENCE_LIMIT_N)  # motor, limit
        self._rundown_left = 0  # samples a stopped motor's band-stops still stay
        self._notch = np.zeros((0, 6))
        self._sos = self._lp
        self.set_motor_hz(motor_hz)

    def _lowpass(self, cutoff_hz: float | None) -> np.ndarray:
        if cutoff_hz is None:
            return np.zeros((0, 6))
        return signal.butter(2, cutoff_hz, fs=self.rate_hz, output="sos")

    @property
    def fast_sos(self) -> np.ndarray:
        """The whole fast cascade (band-stops then the fast low-pass; maybe no section)."""
        return self._sos

    @property
    def fast_group_delay_s(self) -> float:
        """Delay (seconds, near DC) of ``fast_n`` behind the pressing force."""
        return sos_group_delay_s(self._sos, self.rate_hz)

    @property
    def filtered_group_delay_s(self) -> float:
        """Delay (seconds, near DC) of ``filtered_n`` behind the pressing force."""
        if not self._has_slow:
            return self.fast_group_delay_s
        _, gd = signal.group_delay((self._b, self._a), w=[1.0], fs=self.rate_hz)
        return self.fast_group_delay_s + float(gd[0]) / self.rate_hz

    def set_motor_hz(self, motor_hz: float | None) -> None:
        """Notch the motor commanded at ``motor_hz`` (None or 0: motor off). A motor turned
        off brakes for a while, leaking as it slows: its band-stops stay for the next
        MOTOR_RUNDOWN_S of samples (``process`` drops them at a batch's end)."""
        motor_hz = float(motor_hz) if motor_hz and motor_hz > 0 else None
        if motor_hz == self.motor_hz:
            return
        self.motor_hz = motor_hz
        if motor_hz is None and self._notch.shape[0] and self._zi_fast is not None:
            self._rundown_left = max(1, round(MOTOR_RUNDOWN_S * self.rate_hz))
            return
        self._rundown_left = 0
        self._notch_for(motor_hz)

    def set_limit_n(self, limit_n: float) -> None:
        """The limit in force (N): the band-stops keep the leak to a share of it (a new
        zone's limit re-designs them at once, as a motor frequency change does)."""
        _budget_scale(limit_n)
        self.limit_n = float(limit_n)
        if not self._rundown_left:
            self._notch_for(self.motor_hz)

    def _notch_for(self, motor_hz: float | None) -> None:
        key = (motor_hz, self.limit_n if motor_hz else REFERENCE_LIMIT_N)
        if key == self._notch_for_key:
            return
        self._notch_for_key = key
        self._notch = motor_bandstop_sos(self.rate_hz, motor_hz, limit_n=self.limit_n)
        lp = self._lp_fast_motor if self._notch.shape[0] else self._lp_fast
        lp_kept = lp is self._lp
        self._lp = lp
        self._sos = np.vstack([self._notch, lp])
        if self._zi_fast is None:
            return  # not started yet: initialised from the first sample
        if not lp_kept:  # the whole cascade starts in the steady state of the fast level
            self._zi_fast = signal.sosfilt_zi(self._sos) * self._last_fast_n
            return
        n_new = self._notch.shape[0]
        n_lp = lp.shape[0]
        zi_lp = self._zi_fast[self._zi_fast.shape[0] - n_lp :]
        zi = np.empty((self._sos.shape[0], 2))
        if n_new:
            zi[:n_new] = signal.sosfilt_zi(self._notch) * self._last_fast_n
        zi[n_new:] = zi_lp
        self._zi_fast = zi

    def reset(self) -> None:
        """Forget all state: the next sample restarts the filters in its steady state."""
        self._zi_fast = None
        if self._rundown_left:
            self._rundown_left = 0
            self._notch_for(self.motor_hz)
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
            self._zi_fast = (
                signal.sosfilt_zi(self._sos) * x0 if self._sos.shape[0] else np.zeros((0, 2))
            )
            self._zi_slow = self._zi_slow_unit * x0
        if self._sos.shape[0]:
            fast, self._zi_fast = signal.sosfilt(self._sos, x, zi=self._zi_fast)
        else:
            fast = x.copy()
        if self._has_slow:
            slow, self._zi_slow = signal.lfilter(self._b, self._a, fast, zi=self._zi_slow)
        else:
            slow = fast.copy()
        self._last_fast_n = float(fast[-1])
        if self._rundown_left:
            self._rundown_left = max(0, self._rundown_left - x.size)
            if not self._rundown_left:
                self._notch_for(self.motor_hz)
        return fast, slow
