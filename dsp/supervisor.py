"""The host safety supervisor: decides stops, faults, warnings and reductions per batch.

Rules (DESIGN.md "Safety model"), all judged in device time except the stale stream:

* over_limit: ``fast_n`` (motor band-stops + 40 or 80 Hz low-pass, ~4-10 ms lag at DC from
  500 Hz up; at low rates the stages that mean nothing there drop out:
  ``dsp.filters.FilterDesign``) or ``filtered_n`` (10 Hz) at or over the zone limit ->
  latched STOP. With vibration off it is still a STOP (the UI tells the user to ease off).
* rate_of_rise: in zones near the neck, ``fast_n`` over half the limit and rising faster than
  RATE_OF_RISE_LIMITS_PER_S limits per second over 20 ms -> STOP before the limit is reached.
  Held off for the first SETTLE_S of a stream (its start, or ``restart_stream()`` after a
  reconnect): the filters' start-up transient is not a jab. Over-limit is never held off.
* forbidden_zone_contact: in a forbidden zone, force over the limit for FORBIDDEN_CONTACT_S
  -> STOP with that cause (recorded even when an over_limit stop already latched).
* warning at 80 % of the limit on ``filtered_n`` (cleared under 70 %), with a REDUCE of the
  vibration when it runs; REDUCE also when the commanded intensity exceeds the zone's cap.
* faults: stale stream (tick: no batch for max(150 ms, 3 batch periods) of host time while
  vibrating; without vibration a silent stream, max(SILENT_S, that): a device that died
  while nothing vibrated must not leave a frozen reading on screen), sequence gaps (over
  GAP_BLIND_MAX_S of lost data at once, or GAP_COUNT_MAX gaps within 1 s), CRC bursts
  (CRC_BURST_COUNT errors within 1 s), flatline (raw counts identical for ``flatline_s``),
  saturation (a raw count at the ADC rails).
* max_vibration_time: vibration on for ``max_vibration_s`` in total -> STOP.

Windows are in seconds, not samples, so the rules work at every rate from 10 Hz; a rule whose
window holds fewer samples than it needs at this rate says so in ``notes()`` (a face shows
them once).

STOP and FAULT latch: ``rearm(t_s)`` succeeds only once ``filtered_n`` has stayed under 70 %
of the limit for 1 s (device time) and no fault condition persists. Each (kind, cause) is
reported once per latch. Work per batch is a handful of numpy reductions unless something is
near a threshold; episodes inside one long batch (offline analysis) are found in order.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from dsp.decisions import SafetyState
from dsp.events import (
    FAULT_CAUSES,
    Cause,
    Event,
    EventKind,
    Fault,
    Rearmed,
    Reduce,
    Stop,
    Warning,  # the event (shadows the builtin here)
)
from dsp.zones import FORBIDDEN_CONTACT_S, RESET_HOLD_S, Zone

#: Zones where a jab is stopped on its rate of rise, before it reaches the limit.
NEAR_NECK_ZONES = frozenset({"neck_front", "neck_side", "neck_back", "suboccipital"})
#: Rate-of-rise stop: faster than this many limits per second (10 N limit -> 100 N/s) ...
RATE_OF_RISE_LIMITS_PER_S = 10.0
#: ... while the fast force is over this fraction of the limit.
RATE_OF_RISE_MIN_FRACTION = 0.5
#: Window over which the rate of rise is measured (seconds).
RATE_WINDOW_S = 0.02
#: The rate-of-rise rule waits this long (device seconds) after a stream (re)starts, while
#: the filters settle from their initial state (the 40 Hz fast path settles in ~25 ms).
SETTLE_S = 0.05
#: Stale stream: no batch for max(STALE_MIN_S, STALE_BATCH_PERIODS * batch period).
STALE_MIN_S = 0.15
STALE_BATCH_PERIODS = 3
#: Without vibration, a stream silent this long (host seconds) is a stale-stream fault too.
SILENT_S = 1.0
#: A single sequence gap losing more than this much data (seconds) is a fault.
GAP_BLIND_MAX_S = 0.05
#: This many separate gaps within FAULT_WINDOW_S is a fault.
GAP_COUNT_MAX = 3
#: This many CRC errors within FAULT_WINDOW_S is a fault.
CRC_BURST_COUNT = 3
FAULT_WINDOW_S = 1.0
#: Default maximum vibration time per session (seconds): 15 min.
MAX_VIBRATION_S = 15 * 60.0
#: Default flatline time (seconds): identical raw counts this long mean a stuck sensor.
FLATLINE_S = 1.0
#: Above this resolution (newtons per count) identical readings are what a steady force
#: gives (a scale showing 0.01 kg steps, a plate in whole pounds): the flatline rule is off.
FLATLINE_MAX_RESOLUTION_N = 0.05
#: Default ADC rails (24-bit signed: HX711, ADS1220).
RAW_LIMITS_COUNTS = (-(2**23), 2**23 - 1)

_LATCHED = (SafetyState.STOPPED, SafetyState.FAULT)


def _first(mask: np.ndarray, start: int) -> int:
    """Index of the first True in ``mask[start:]`` (absolute), or -1."""
    if start >= mask.size:
        return -1
    sub = mask[start:]
    i = int(sub.argmax())
    return start + i if sub[i] else -1


class Supervisor:
    """Per-batch safety rules for one device stream (see the module docstring).

    ``rate_hz``: sample rate; ``fast_delay_s`` / ``filtered_delay_s``: the group delays of the
    two force estimates (reported as detection delays); ``auto_rearm``: re-arm as soon as it
    is allowed (an unattended policy, and offline analysis).
    """

    def __init__(
        self,
        zone: Zone,
        rate_hz: float,
        *,
        fast_delay_s: float = 0.0,
        filtered_delay_s: float = 0.0,
        auto_rearm: bool = False,
        max_vibration_s: float = MAX_VIBRATION_S,
        flatline_s: float | None = FLATLINE_S,
        raw_limits_counts: tuple[float, float] | None = RAW_LIMITS_COUNTS,
        resolution_n: float = 0.0,
    ) -> None:
        self.rate_hz = float(rate_hz)
        #: newtons per count of the sensor: one step of it is never a "rise" (a coarse sensor
        #: steps by a whole count within one sample), and above FLATLINE_MAX_RESOLUTION_N
        #: identical readings are no sign of a stuck sensor
        self.resolution_n = float(resolution_n)
        if self.resolution_n > FLATLINE_MAX_RESOLUTION_N:
            flatline_s = None
        self.fast_delay_s = fast_delay_s
        self.filtered_delay_s = filtered_delay_s
        self.auto_rearm = auto_rearm
        self.max_vibration_s = max_vibration_s
        self.flatline_s = flatline_s
        self.raw_limits_counts = raw_limits_counts
        #: A lower bound for the stale timer, in the same (host) seconds as ``tick``. A host that
        #: runs a simulation K times faster feeds K-scaled host time and sets this to K times
        #: its real scheduling jitter bound, which does not shrink with the simulation speed.
        self.stale_floor_s = 0.0
        self.state = SafetyState.ARMED
        self.intensity_pct = 0.0
        self.motor_hz: float | None = None
        self.vibration_s = 0.0
        self._rate_k = max(1, round(RATE_WINDOW_S * self.rate_hz))
        self._tail: np.ndarray | None = None  # last _rate_k fast samples
        self._rise = np.zeros(0)  # fast rise over the rate window, per sample of the batch
        self._pending: list[Event] = []
        self._reported: set[tuple[EventKind, Cause | None]] = set()
        self._warned = False
        self._below_reset_since_s: float | None = None
        self._over_since_s: float | None = None  # forbidden-zone contact run
        self._last_t_s: float | None = None
        self._last_f_n = 0.0
        self._last_host_s: float | None = None
        self._batch_period_s = 0.0
        self._stale = False
        self._gaps: deque[float] = deque()
        self._crcs: deque[tuple[float, int]] = deque()
        self._flat_value: float | None = None
        self._flat_since_s = 0.0
        self._sensor_fault = False
        #: device time until which the rate-of-rise rule is held off (set on a stream's
        #: first batch)
        self._settle_until_s: float | None = None
        self.set_zone(zone)

    def notes(self) -> list[str]:
        """Rules whose window holds fewer samples than they need at this rate, in words
        (empty at full rate): a face shows them once."""
        out = []
        period_s = 1.0 / self.rate_hz
        if RATE_WINDOW_S * self.rate_hz < 1.0:
            out.append(
                f"rate of rise measured over one sample ({period_s * 1e3:.0f} ms), "
                f"not {RATE_WINDOW_S * 1e3:.0f} ms"
            )
        if period_s > GAP_BLIND_MAX_S:
            out.append(
                f"one lost sample is {period_s * 1e3:.0f} ms blind: any sequence gap is a fault"
            )
        if period_s > FORBIDDEN_CONTACT_S / 2:
            out.append(
                f"forbidden-zone contact judged on {max(1, round(FORBIDDEN_CONTACT_S / period_s))}"
                " sample(s)"
            )
        if self.resolution_n > FLATLINE_MAX_RESOLUTION_N:
            out.append(
                f"coarse sensor ({self.resolution_n:.2g} N a step): no stuck-sensor check, and "
                "a rise counts only beyond one step"
            )
        return out

    # -- configuration ---------------------------------------------------------------
    def set_zone(self, zone: Zone) -> None:
        """Judge force against ``zone`` from now on (limits in newtons)."""
        self.zone = zone
        self._limit_n = float(zone.limit_n)
        self._warn_n = float(zone.warning_n)
        self._reset_n = float(zone.reset_n)
        self._rate_on = zone.name in NEAR_NECK_ZONES
        self._rate_min_n = RATE_OF_RISE_MIN_FRACTION * self._limit_n
        self._rate_max = (
            RATE_OF_RISE_LIMITS_PER_S * self._limit_n * self._rate_k / self.rate_hz
            + self.resolution_n
        )
        self._over_since_s = None
        self._check_cap()

    def set_vibration(self, intensity_pct: float, motor_hz: float | None = None) -> None:
        """The vibration now commanded (percent, 0 = off) and the motor frequency (Hz)."""
        if not 0 <= intensity_pct <= 100:
            raise ValueError(f"intensity must be 0-100 %, got {intensity_pct}")
        self.intensity_pct = float(intensity_pct)
        self.motor_hz = motor_hz if intensity_pct > 0 else None
        self._check_cap()

    @property
    def vibrating(self) -> bool:
        return self.intensity_pct > 0

    @property
    def latched(self) -> bool:
        return self.state in _LATCHED

    def allowed_intensity_pct(self, requested_pct: float) -> float:
        """The vibration that may run now: 0 while latched, else capped by the zone."""
        if self.latched:
            return 0.0
        return min(float(requested_pct), self.zone.vibration_cap_pct)

    def _check_cap(self) -> None:
        cap = self.zone.vibration_cap_pct
        if self.intensity_pct > cap:
            t = self._last_t_s if self._last_t_s is not None else 0.0
            self._pending.append(
                Reduce(
                    t_s=t,
                    force_n=self._last_f_n,
                    intensity_pct=cap,
                    reason="zone_cap",
                    zone=self.zone.name,
                )
            )

    # -- latching --------------------------------------------------------------------
    def _latch(self, out: list[Event], d: Stop | Fault) -> None:
        key = (d.kind, d.cause)
        if key in self._reported:
            return
        self._reported.add(key)
        out.append(d)
        if d.kind is EventKind.FAULT or d.cause in FAULT_CAUSES:
            self.state = SafetyState.FAULT
        elif self.state is not SafetyState.FAULT:
            self.state = SafetyState.STOPPED
        self._below_reset_since_s = None

    def latch(self, d: Stop | Fault) -> bool:
        """Latch a stop or fault that the host learned of outside the force stream (the
        firmware's own limit or deadman, a lost link): re-arming then follows the same rules
        as for any stop. Returns False when this (kind, cause) was already latched."""
        out: list[Event] = []
        self._latch(out, d)
        return bool(out)

    def can_rearm(self, t_s: float) -> bool:
        """True when a latched stop may be re-armed at device time ``t_s``."""
        if not self.latched:
            return True
        if self._stale or self._sensor_fault:
            return False
        since = self._below_reset_since_s
        return since is not None and t_s - since >= RESET_HOLD_S - 1e-9

    def rearm(self, t_s: float) -> bool:
        """Re-arm after a latched stop (user or policy); False when not yet allowed."""
        if not self.latched:
            return True
        if not self.can_rearm(t_s):
            return False
        self._pending.append(Rearmed(t_s=float(t_s), force_n=self._last_f_n))
        self.state = SafetyState.ARMED
        self._reported.clear()
        self._warned = False
        self._over_since_s = None
        self._gaps.clear()
        self._crcs.clear()
        return True

    @property
    def last_filtered_n(self) -> float:
        """The filtered force (N) at the end of the last batch judged."""
        return self._last_f_n

    def restart_stream(self) -> None:
        """The stream starts again (a reconnect): forget what belonged to the old one (the
        rate window, the batch period and host time, sequence-gap and CRC windows, the
        flatline run) and hold the rate-of-rise rule off while the filters settle. Latches,
        warnings and vibration time are kept: a stop before the loss is still a stop."""
        self._tail = None
        self._rise = np.zeros(0)
        self._last_t_s = None
        self._last_host_s = None
        self._batch_period_s = 0.0
        self._stale = False
        self._gaps.clear()
        self._crcs.clear()
        self._flat_value = None
        self._flat_since_s = 0.0
        self._over_since_s = None
        self._settle_until_s = None

    # -- host-time rules -------------------------------------------------------------
    def stale_after_s(self) -> float:
        """Host seconds without a batch after which the stream is stale."""
        return max(STALE_MIN_S, STALE_BATCH_PERIODS * self._batch_period_s, self.stale_floor_s)

    def tick(self, t_host_s: float) -> list[Event]:
        """Host-time check (call at least every 50 ms): stale stream while vibrating, or a
        silent stream (SILENT_S) while not."""
        out, self._pending = self._pending, []
        if self._last_host_s is None:
            return out
        waited_s = t_host_s - self._last_host_s
        allowed_s = self.stale_after_s()
        if not self.vibrating:
            if self.latched:
                return out
            allowed_s = max(SILENT_S, allowed_s)
        if waited_s > allowed_s:
            self._stale = True
            t = self._last_t_s if self._last_t_s is not None else 0.0
            self._latch(
                out,
                Fault(
                    cause=Cause.STALE_STREAM,
                    t_s=t,
                    detection_delay_s=waited_s,
                    force_n=self._last_f_n,
                    waited_s=waited_s,
                    stale_after_s=allowed_s,
                ),
            )
        return out

    # -- per batch -------------------------------------------------------------------
    def on_batch(
        self,
        t_s: np.ndarray,
        raw_counts: np.ndarray,
        fast_n: np.ndarray,
        filtered_n: np.ndarray,
        t_host_s: float,
        seq_gap: int = 0,
        crc_errors: int = 0,
    ) -> list[Event]:
        """Judge one batch (device times ``t_s`` in s, forces in N); returns decisions."""
        out, self._pending = self._pending, []
        n = t_s.size
        if n == 0:
            return out
        t0 = float(t_s[0])
        t_end = float(t_s[-1])
        prev_end = self._last_t_s
        if self._settle_until_s is None:
            self._settle_until_s = t0 + SETTLE_S
        dt = 1.0 / self.rate_hz
        # the time since the last batch ended spans this batch and the ``seq_gap`` lost ones
        span = (t_end - prev_end) / (seq_gap + 1) if prev_end is not None else t_end - t0 + dt
        if span > 0:
            self._batch_period_s = span
        self._last_host_s = t_host_s
        self._stale = False
        self._link_rules(out, t0, seq_gap, crc_errors, dt)
        self._sensor_rules(out, t_s, raw_counts, filtered_n)
        if self.vibrating:
            self._vibration_time(out, t_s, filtered_n, prev_end if prev_end is not None else t0)
        self._force_rules(out, t_s, fast_n, filtered_n)
        self._last_t_s = t_end
        self._last_f_n = float(filtered_n[-1])
        return out

    def _link_rules(self, out: list[Event], t0: float, gap: int, crc: int, dt: float) -> None:
        if gap > 0:
            blind_s = gap * self._batch_period_s
            self._gaps.append(t0)
            while self._gaps and self._gaps[0] < t0 - FAULT_WINDOW_S:
                self._gaps.popleft()
            if blind_s > GAP_BLIND_MAX_S or len(self._gaps) >= GAP_COUNT_MAX:
                self._latch(
                    out,
                    Fault(
                        cause=Cause.SEQ_GAP,
                        t_s=t0,
                        force_n=self._last_f_n,
                        missing_batches=gap,
                        blind_s=blind_s,
                        gaps_1s=len(self._gaps),
                    ),
                )
        if crc > 0:
            self._crcs.append((t0, crc))
            while self._crcs and self._crcs[0][0] < t0 - FAULT_WINDOW_S:
                self._crcs.popleft()
            count = sum(c for _, c in self._crcs)
            if count >= CRC_BURST_COUNT:
                self._latch(
                    out,
                    Fault(
                        cause=Cause.CRC_BURST, t_s=t0, force_n=self._last_f_n, crc_errors_1s=count
                    ),
                )

    def _sensor_rules(
        self, out: list[Event], t_s: np.ndarray, raw: np.ndarray, filt: np.ndarray
    ) -> None:
        if self.flatline_s is None and self.raw_limits_counts is None:
            return
        hi = raw.max()
        lo = raw.min()
        saturated = False
        if self.raw_limits_counts is not None:
            rail_lo, rail_hi = self.raw_limits_counts
            if hi >= rail_hi or lo <= rail_lo:
                saturated = True
                i = int(np.argmax((raw >= rail_hi) | (raw <= rail_lo)))
                self._latch(
                    out,
                    Fault(
                        cause=Cause.SATURATION,
                        t_s=float(t_s[i]),
                        force_n=float(filt[i]),
                        raw_counts=float(raw[i]),
                    ),
                )
        flat = False
        if self.flatline_s is not None:
            last = float(raw[-1])
            if hi == lo:
                if self._flat_value != last:
                    self._flat_value, self._flat_since_s = last, float(t_s[0])
            else:
                j = int(np.flatnonzero(raw != raw[-1])[-1]) + 1
                self._flat_value, self._flat_since_s = last, float(t_s[j])
            if float(t_s[-1]) - self._flat_since_s >= self.flatline_s:
                flat = True
                i = int(np.searchsorted(t_s, self._flat_since_s + self.flatline_s - 1e-9))
                i = min(i, t_s.size - 1)
                self._latch(
                    out,
                    Fault(
                        cause=Cause.FLATLINE,
                        t_s=float(t_s[i]),
                        detection_delay_s=self.flatline_s,
                        force_n=float(filt[i]),
                        raw_counts=last,
                    ),
                )
        self._sensor_fault = saturated or flat

    def _vibration_time(
        self, out: list[Event], t_s: np.ndarray, filt: np.ndarray, prev_end: float
    ) -> None:
        before = self.vibration_s
        self.vibration_s += max(0.0, float(t_s[-1]) - prev_end)
        if self.vibration_s >= self.max_vibration_s:
            t_cross = prev_end + (self.max_vibration_s - before)
            i = min(int(np.searchsorted(t_s, t_cross - 1e-9)), t_s.size - 1)
            self._latch(
                out,
                Stop(
                    cause=Cause.MAX_VIBRATION_TIME,
                    t_s=float(t_s[i]),
                    force_n=float(filt[i]),
                    vibration_s=self.vibration_s,
                    max_vibration_s=self.max_vibration_s,
                ),
            )

    def _rate_mask(self, tail: np.ndarray, fast: np.ndarray) -> np.ndarray | None:
        """Samples over the rule's minimum force that rose faster than its limit over the
        window; None when none did (one reduction decides the usual case: nothing rises
        that fast, and the batch may then be quiet)."""
        k = self._rate_k
        if fast.size > k:  # fast[i] - fast[i - k], the first k against the last batch's tail
            rise = np.empty_like(fast)
            np.subtract(fast[:k], tail, out=rise[:k])
            np.subtract(fast[k:], fast[:-k], out=rise[k:])
        else:
            ext = np.concatenate((tail, fast))
            rise = ext[k:] - ext[:-k]
        self._rise = rise
        if not float(self._rise.max()) >= self._rate_max:
            return None
        mask = (self._rise >= self._rate_max) & (fast >= self._rate_min_n)
        return mask if mask.any() else None

    def _force_rules(
        self, out: list[Event], t_s: np.ndarray, fast: np.ndarray, filt: np.ndarray
    ) -> None:
        n = t_s.size
        fmax = float(fast.max())
        smax = float(filt.max())
        rate_mask = None
        tail = self._tail
        if tail is None:
            tail = self._tail = np.full(self._rate_k, fast[0])
        if self._rate_on:
            rate_mask = self._rate_mask(tail, fast) if fmax >= self._rate_min_n else None
            if rate_mask is not None and t_s[0] < self._settle_until_s:
                rate_mask &= t_s >= self._settle_until_s
                if not rate_mask.any():
                    rate_mask = None
        # the rise window is kept in every zone: a switch into a zone near the neck must
        # compare with the last samples, not with whatever preceded the last such zone
        k = self._rate_k
        self._tail = fast[-k:].copy() if n >= k else np.concatenate((tail, fast))[-k:]
        quiet = (
            not self.latched
            and not self._warned
            and fmax < self._limit_n
            and smax < self._warn_n
            and rate_mask is None
        )
        if quiet:
            self._over_since_s = None
            return
        over = (fast >= self._limit_n) | (filt >= self._limit_n)
        below_reset = (filt < self._reset_n) & (fast < self._reset_n)
        pos = 0
        while pos < n:
            if not self.latched:
                pos = self._armed_step(out, t_s, fast, filt, over, below_reset, rate_mask, pos)
            else:
                pos = self._latched_step(out, t_s, fast, filt, over, below_reset, pos)
        # forbidden-zone contact run bookkeeping for the next batch
        if self.zone.forbidden:
            if over[-1]:
                if self._over_since_s is None:
                    run_start = n - 1 - int(np.argmax(~over[::-1])) if not over.all() else 0
                    self._over_since_s = float(t_s[run_start])
            else:
                self._over_since_s = None

    def _armed_step(self, out, t_s, fast, filt, over, below_reset, rate_mask, pos) -> int:
        """Find the next warning or stop from ``pos`` while armed; returns the new position."""
        n = t_s.size
        i_over = _first(over, pos)
        i_rate = _first(rate_mask, pos) if rate_mask is not None else -1
        if self._warned:
            i_clear = _first(below_reset, pos)
            i_warn = -1
        else:
            i_clear = -1
            i_warn = _first(filt >= self._warn_n, pos)
        cands = [i for i in (i_over, i_rate, i_warn, i_clear) if i >= 0]
        if not cands:
            return n
        i = min(cands)
        t = float(t_s[i])
        if i in (i_over, i_rate):
            path: str | None = None
            fast_n: float | None = None
            rate_n_per_s: float | None = None
            if i == i_over:
                by_fast = fast[i] >= self._limit_n
                cause = Cause.OVER_LIMIT
                delay = self.fast_delay_s if by_fast else self.filtered_delay_s
                path, fast_n = ("fast" if by_fast else "filtered"), float(fast[i])
            else:
                cause = Cause.RATE_OF_RISE
                delay = self.fast_delay_s
                rate_n_per_s = float(self._rise[i]) * self.rate_hz / self._rate_k
            stop = Stop(
                cause=cause,
                t_s=t,
                detection_delay_s=delay,
                force_n=float(filt[i]),
                limit_n=self._limit_n,
                path=path,
                fast_n=fast_n,
                rate_n_per_s=rate_n_per_s,
                vibrating=self.vibrating,
                advice=None if self.vibrating else "ease_off",
            )
            self._latch(out, stop)
            if self.zone.forbidden and over[i]:
                self._over_since_s = t
            return i + 1
        if i == i_warn:
            self._warned = True
            self.state = SafetyState.WARNING
            out.append(
                Warning(
                    t_s=t,
                    detection_delay_s=self.filtered_delay_s,
                    force_n=float(filt[i]),
                    warning_n=self._warn_n,
                    limit_n=self._limit_n,
                )
            )
            if self.vibrating:
                out.append(
                    Reduce(
                        t_s=t,
                        detection_delay_s=self.filtered_delay_s,
                        force_n=float(filt[i]),
                        intensity_pct=self.intensity_pct / 2,
                        reason="warning",
                    )
                )
            return i + 1
        # warning cleared
        self._warned = False
        self.state = SafetyState.ARMED
        return i + 1

    def _latched_step(self, out, t_s, fast, filt, over, below_reset, pos) -> int:
        """While latched from ``pos``: forbidden contact, an over-limit not yet reported in
        this latch (e.g. after a rate-of-rise stop), reset timing and auto re-arm."""
        n = t_s.size
        if self.zone.forbidden and (EventKind.STOP, Cause.FORBIDDEN_ZONE_CONTACT) not in (
            self._reported
        ):
            self._forbidden_contact(out, t_s, filt, over, pos)
        while pos < n:
            if self._below_reset_since_s is None:
                k = _first(below_reset, pos)
                self._late_over(out, t_s, fast, filt, over, pos, n if k < 0 else k)
                if k < 0:
                    return n
                self._below_reset_since_s = float(t_s[k])
                pos = k
            m = _first(~below_reset, pos)
            run_end = n if m < 0 else m
            if self.auto_rearm and not self._stale and not self._sensor_fault:
                j = int(np.searchsorted(t_s, self._below_reset_since_s + RESET_HOLD_S - 1e-9))
                j = max(j, pos)
                if j < run_end and self.rearm(float(t_s[j])):
                    out.extend(self._pending)
                    self._pending = []
                    return j
            if m < 0:
                return n
            self._below_reset_since_s = None
            pos = m
        return n

    def _late_over(self, out, t_s, fast, filt, over, a, b) -> None:
        if (EventKind.STOP, Cause.OVER_LIMIT) in self._reported or a >= b:
            return
        i = _first(over[:b], a)
        if i >= 0:
            by_fast = fast[i] >= self._limit_n
            self._latch(
                out,
                Stop(
                    cause=Cause.OVER_LIMIT,
                    t_s=float(t_s[i]),
                    detection_delay_s=self.fast_delay_s if by_fast else self.filtered_delay_s,
                    force_n=float(filt[i]),
                    limit_n=self._limit_n,
                    path="fast" if by_fast else "filtered",
                    fast_n=float(fast[i]),
                    vibrating=self.vibrating,
                    already_latched=True,
                ),
            )

    def _forbidden_contact(self, out, t_s, filt, over, pos) -> None:
        n = t_s.size
        p = pos
        while p < n:
            if self._over_since_s is None:
                k = _first(over, p)
                if k < 0:
                    return
                self._over_since_s = float(t_s[k])
                p = k
            m = _first(~over, p)
            end = n if m < 0 else m
            j = int(np.searchsorted(t_s, self._over_since_s + FORBIDDEN_CONTACT_S - 1e-9))
            if max(j, p) < end:
                j = max(j, p)
                self._latch(
                    out,
                    Stop(
                        cause=Cause.FORBIDDEN_ZONE_CONTACT,
                        t_s=float(t_s[j]),
                        detection_delay_s=FORBIDDEN_CONTACT_S + self.filtered_delay_s,
                        force_n=float(filt[j]),
                        limit_n=self._limit_n,
                        zone=self.zone.name,
                    ),
                )
                return
            if m < 0:
                return
            self._over_since_s = None
            p = m
