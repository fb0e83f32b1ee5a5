"""The per-batch force pipeline: calibrate -> filter -> supervise -> hold timing.

The pipeline is the one place raw counts become newtons, and the one owner of the
calibration in use: an immutable ``Calibration`` it replaces (never mutates) on a device tare
(``apply_device_tare``), the host's auto-zero after a rest (``auto_zero``) and, when
``track_drift`` is on, slow re-zeroing while unloaded. Nobody else holds the current one.

One object per device stream, used the same way live (batches of ~10 samples as they
arrive) and offline (``analyze``: a whole trace in a few large batches). Callers see::

    pipe = ForcePipeline(rate_hz=1000, calibration=Calibration(...), zone=get_zone("neck_back"))
    pipe.set_zone(zone, band=(lo_n, hi_n), hold=(min_s, max_s, release_min_s))
    pipe.set_vibration(intensity_pct, motor_hz)        # 0 = off
    out = pipe.on_batch(t_s, raw_counts, t_host_s, seq_gap=0, crc_errors=0)
    out.force_n, out.filtered_n, out.fast_n, out.events
    pipe.tick(t_host_s); pipe.rearm(t_s); pipe.state
    pipe.restart_stream()          # the stream starts again (after a reconnect)
    pipe.apply_device_tare(offset_counts)  # the firmware's Tare reported its new zero
    pipe.auto_zero(raw_counts, filtered_n) # the host's zero on a quiet, unloaded window
    pipe.calibration               # the calibration in use (a value; read-only)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from dsp.calibration import (
    AUTO_ZERO_MAX_N,
    TARE_QUIET_STD_N,
    Calibration,
    CalibrationError,
)
from dsp.decisions import SafetyState
from dsp.events import Event, HoldEnded
from dsp.filters import ForceFilters
from dsp.hold import HoldTracker
from dsp.supervisor import FLATLINE_S, MAX_VIBRATION_S, RAW_LIMITS_COUNTS, Supervisor
from dsp.zones import Zone


@functools.lru_cache(maxsize=64)
def detection_delay_bound_s(rate_hz: float, motor_hz: float | None = None) -> float:
    """The expected worst over-limit detection delay (s) at ``rate_hz`` with the motor at
    ``motor_hz`` (None: off): the fast path's delay near DC plus two sample periods (one for
    where the crossing falls between samples, one for an integrating ADC's mean lagging half
    a period and the step's edge). An estimate for the faces; the measured figures per rate
    and motor band are benchmarks/bench_dsp.py's (README, safety timing)."""
    filt = ForceFilters(rate_hz, motor_hz)
    return filt.fast_group_delay_s + 2.0 / filt.rate_hz


#: Under this rate a sensor is called slow in the faces' rate line.
SLOW_RATE_HZ = 200.0


def describe_rate(rate_hz: float, motor_hz: float | None = None, *, short: bool = False) -> str:
    """One line for every face: the sensor rate and the expected worst over-limit detection
    delay at it, and what a slow sensor means for safety (``short``: for a status line)."""
    delay_ms = detection_delay_bound_s(float(rate_hz), motor_hz) * 1e3
    if short:
        slow = ", slow sensor" if rate_hz < SLOW_RATE_HZ else ""
        return f"sensor {rate_hz:g} Hz: over-limit seen within ~{delay_ms:.0f} ms{slow}"
    text = f"sensor {rate_hz:g} Hz: over-limit detected within ~{delay_ms:.0f} ms"
    if rate_hz < SLOW_RATE_HZ:
        text += (
            f" (slow sensor: one sample every {1e3 / rate_hz:.0f} ms; a sharper press"
            " than that can pass the limit before it is seen)"
        )
    return text


@dataclass(frozen=True)
class BatchResult:
    """One batch through the pipeline: forces in newtons per sample, and the decisions."""

    force_n: np.ndarray
    filtered_n: np.ndarray
    fast_n: np.ndarray
    events: list[Event]


class ForcePipeline:
    """Calibration, streaming filters, supervisor and hold tracker for one stream.

    ``rate_hz``: the nominal sample rate (filters are designed for it). ``auto_rearm``:
    re-arm latched stops as soon as allowed (offline analysis, unattended policies).
    ``calibration``: the calibration to start from (the session's initial one).
    ``track_drift``: slowly re-zero the calibration while unloaded (live use).
    ``flatline_s`` / ``raw_limits_counts``: sensor-fault rules (None disables one).
    """

    def __init__(
        self,
        rate_hz: float,
        calibration: Calibration,
        zone: Zone,
        *,
        auto_rearm: bool = False,
        track_drift: bool = False,
        max_vibration_s: float = MAX_VIBRATION_S,
        flatline_s: float | None = FLATLINE_S,
        raw_limits_counts: tuple[float, float] | None = RAW_LIMITS_COUNTS,
    ) -> None:
        self.rate_hz = float(rate_hz)
        self._calibration = calibration
        self.track_drift = track_drift
        self.filters = ForceFilters(self.rate_hz, limit_n=zone.limit_n)
        self.supervisor = Supervisor(
            zone,
            self.rate_hz,
            fast_delay_s=self.filters.fast_group_delay_s,
            filtered_delay_s=self.filters.filtered_group_delay_s,
            auto_rearm=auto_rearm,
            max_vibration_s=max_vibration_s,
            flatline_s=flatline_s,
            raw_limits_counts=raw_limits_counts,
            resolution_n=calibration.resolution_n,
        )
        self.hold: HoldTracker | None = None

    def notes(self) -> list[str]:
        """What this sample rate means for the filters and the rules, in words (empty at
        full rate): stages that drop out, rules whose window holds too few samples."""
        return self.filters.design.notes() + self.supervisor.notes()

    @property
    def detection_delay_bound_s(self) -> float:
        """The expected worst over-limit detection delay (s) with the motor as now."""
        return self.filters.fast_group_delay_s + 2.0 / self.rate_hz

    @property
    def calibration(self) -> Calibration:
        """The calibration in use (an immutable value; changed only by this pipeline)."""
        return self._calibration

    def apply_device_tare(self, offset_counts: float) -> Calibration:
        """The device zeroed itself (the firmware's ``Tare``) and reported ``offset_counts``:
        force is measured from that zero from the next batch on (same scale). Returns the
        new calibration."""
        self._calibration = self._calibration.with_offset(offset_counts)
        return self._calibration

    def auto_zero(
        self,
        raw_counts: np.ndarray,
        filtered_n: np.ndarray,
        *,
        max_n: float = AUTO_ZERO_MAX_N,
        max_std_n: float = TARE_QUIET_STD_N,
    ) -> float | None:
        """The host's own zero (e.g. at the end of a rest): when every filtered sample of the
        window (``filtered_n``, newtons) is within ``max_n`` of zero and its raw counts are
        quiet (spread under ``max_std_n`` newtons), the zero moves to their mean. Returns the
        new offset (counts), or None when the window was loaded, moving or empty (the zero
        stays)."""
        f = np.asarray(filtered_n)
        if f.size == 0 or float(np.abs(f).max()) >= max_n:
            return None
        try:
            self._calibration = self._calibration.tared(raw_counts, max_std_n)
        except CalibrationError:
            return None
        return self._calibration.offset_counts

    @property
    def zone(self) -> Zone:
        return self.supervisor.zone

    @property
    def state(self) -> SafetyState:
        return self.supervisor.state

    def set_zone(
        self,
        zone: Zone,
        band: tuple[float, float] | None = None,
        hold: tuple[float | None, float | None, float | None] | None = None,
    ) -> None:
        """Switch zone; ``band`` (lo, hi) N and ``hold`` (min_s, max_s, release_min_s)
        configure hold timing for the step (None: no hold tracking)."""
        self.supervisor.set_zone(zone)
        if zone.limit_n != self.filters.limit_n:  # the band-stops' depth follows the limit
            self.filters.set_limit_n(zone.limit_n)
            self._filter_delays_to_supervisor()
        if band is None:
            self.hold = None
        else:
            min_s, max_s, release_min_s = hold if hold is not None else (None, None, None)
            self.hold = HoldTracker(band, min_s, max_s, release_min_s)

    def set_vibration(self, intensity_pct: float, motor_hz: float | None = None) -> None:
        """The commanded vibration (percent, 0 = off) and motor frequency (Hz): moves the
        motor band-stops and drives the stale-stream and vibration-time rules."""
        self.supervisor.set_vibration(intensity_pct, motor_hz)
        self.set_motor_hz(motor_hz if intensity_pct > 0 else None)

    def set_motor_hz(self, motor_hz: float | None) -> None:
        """Move the motor band-stops alone (None: motor off), e.g. for a pattern whose
        pulses should not each re-tune the filters."""
        self.filters.set_motor_hz(motor_hz)
        self._filter_delays_to_supervisor()

    def _filter_delays_to_supervisor(self) -> None:
        # the delays a stop reports are those of the filters now in use
        self.supervisor.fast_delay_s = self.filters.fast_group_delay_s
        self.supervisor.filtered_delay_s = self.filters.filtered_group_delay_s

    def on_batch(
        self,
        t_s: np.ndarray,
        raw_counts: np.ndarray,
        t_host_s: float,
        seq_gap: int = 0,
        crc_errors: int = 0,
    ) -> BatchResult:
        """Process one batch: device times ``t_s`` (s, unwrapped), raw counts, the host
        receive time (s), batches lost before this one and CRC errors since the last."""
        t = np.asarray(t_s, dtype=np.float64)
        raw = np.asarray(raw_counts)
        if t.shape != raw.shape or t.ndim != 1:
            raise ValueError(f"t_s and raw_counts must be 1-D, one length: {t.shape} {raw.shape}")
        force = self._calibration.to_newtons(raw)
        fast, filtered = self.filters.process(force)
        events = self.supervisor.on_batch(t, raw, fast, filtered, t_host_s, seq_gap, crc_errors)
        if self.hold is not None:
            hold_events = self.hold.update(t, filtered)
            if hold_events:
                events.extend(hold_events)
                if len(events) > len(hold_events):
                    events.sort(key=lambda d: d.t_s)
        if self.track_drift and t.size:
            self._calibration = self._calibration.drift_tracked(
                raw, filtered, float(t[-1] - t[0]) + 1 / self.rate_hz
            )
        return BatchResult(force, filtered, fast, events)

    def restart_stream(self) -> list[Event]:
        """The device stream starts again after a gap (a reconnect), maybe mid-press and
        with the motor still leaking: filters restart from the first batch's mean, the
        supervisor forgets the old stream's timing and holds the rate-of-rise rule off while
        the filters settle (latched stops stay latched), and a hold that was open ends where
        its data ended (the gap is never counted as holding). Returns the decisions that
        causes (a HOLD_ENDED with ``interrupted``)."""
        self.filters.restart()
        self.supervisor.restart_stream()
        out: list[Event] = []
        h = self.hold
        if h is not None:
            if h.in_hold:
                end_s = h.start_s + h.elapsed_s
                out.append(
                    HoldEnded(
                        t_s=end_s,
                        force_n=self.supervisor.last_filtered_n,
                        start_s=h.start_s,
                        end_s=end_s,
                        duration_s=h.elapsed_s,
                        reached_min=h.progress >= 1.0 if h.min_s else False,
                        interrupted="stream_restart",
                    )
                )
            self.hold = HoldTracker(
                (h.lo_n, h.hi_n), h.min_s, h.max_s, h.release_min_s, h.dip_tolerance_s
            )
        return out

    def tick(self, t_host_s: float) -> list[Event]:
        """Host-time checks (at least every 50 ms): the stale-stream rule."""
        return self.supervisor.tick(t_host_s)

    def rearm(self, t_s: float) -> bool:
        """Re-arm a latched stop; False while force has not stayed under 70 % for 1 s."""
        return self.supervisor.rearm(t_s)
