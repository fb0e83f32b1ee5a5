"""Physics of a simulated device: the motor's spin-up and braking, its vibration leaking into
the force sensor at its true (detuned) frequency, sensor noise and drift, the battery, and the
ADC: sample-and-hold (the force at the sample instant) or integrating (the mean over the
conversion period, as the HX711 converts: a motor tone at f comes through at |sinc(f T)|
instead of aliasing at full strength)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from simulators.scenario import Scenario

#: An integrating ADC's period is simulated in sub-steps of at most this (seconds).
INTEGRATION_STEP_S = 0.001


@dataclass
class MotorState:
    """An ERM-like motor: its level (0-1) follows the drive with first-order time constants
    (spin-up when rising, brake when falling)."""

    level: float = 0.0
    drive: float = 0.0
    commanded_hz: float = 0.0
    phase_rad: float = 0.0

    def step(self, dt_s: float, spinup_s: float, brake_s: float) -> None:
        tau = spinup_s if self.drive > self.level else brake_s
        if tau <= 0:
            self.level = self.drive
        else:
            self.level += (self.drive - self.level) * (1.0 - math.exp(-dt_s / tau))
        if self.drive == 0.0 and self.level < 1e-3:
            self.level = 0.0


#: The raw reading's range: a ForceBatch carries i32 counts.
RAW_MIN, RAW_MAX = -(2**31), 2**31 - 1


class BallPhysics:
    """Raw sensor counts for a scenario, sample by sample."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        #: Where the true pressing force comes from: the scenario's press script, or a
        #: scripted user that reacts to the routine (``simulators.scripted_user``).
        self.force_source: Callable[[float], float] = scenario.force_at
        self.motor = MotorState()
        self._rng = random.Random(scenario.seed)
        self.battery_pct = scenario.battery.start_pct
        #: The motor's braking time constant at a time (a fault may slow it down).
        self.brake_s: Callable[[float], float] = lambda _t_s: scenario.motor.brake_s

    def true_hz(self, commanded_hz: float, load_n: float = 0.0) -> float:
        """The motor's real speed: the command, off by the scenario's detuning, slower
        under a pressing load of ``load_n`` newtons."""
        m = self.scenario.motor
        slowdown = max(0.0, 1.0 - m.load_slowdown_pct_per_n * max(0.0, load_n) / 100.0)
        return commanded_hz * (1.0 + m.detune_pct / 100.0) * slowdown

    def step(self, t_s: float, dt_s: float, integrating: bool = False) -> tuple[float, int]:
        """Advance by ``dt_s`` to scenario time ``t_s``; returns (true pressing force in N,
        raw counts the ADC reads). ``integrating``: the reading is the mean over ``dt_s``
        (sub-steps of at most INTEGRATION_STEP_S; the motor tone's mean over each is exact)."""
        sc = self.scenario
        m = self.motor
        n_sub = max(1, math.ceil(dt_s / INTEGRATION_STEP_S - 1e-9)) if integrating else 1
        h = dt_s / n_sub
        total_n = 0.0
        pressing_n = 0.0
        for j in range(n_sub):
            ts = t_s - dt_s + (j + 1) * h
            m.step(h, sc.motor.spinup_s, self.brake_s(ts))
            pressing_n = self.force_source(ts)
            leak_n = 0.0
            if m.level > 0.0:
                hz = self.true_hz(m.commanded_hz, pressing_n)
                dphi = 2 * math.pi * hz * h
                phi0 = m.phase_rad
                m.phase_rad = (phi0 + dphi) % (2 * math.pi)
                if integrating and dphi > 0:  # the tone's mean over the sub-step
                    mean = (math.cos(phi0) - math.cos(phi0 + dphi)) / dphi
                else:
                    mean = math.sin(m.phase_rad)
                leak_n = sc.motor.leak_peak_n * m.level * mean
            if integrating and n_sub > 1:  # the pressing force at the sub-step's middle
                total_n += self.force_source(ts - h / 2) + leak_n
            else:
                total_n += pressing_n + leak_n
        drift_n = sc.sensor.drift_n_per_min * t_s / 60.0
        noise_n = self._rng.gauss(0.0, sc.sensor.noise_n) if sc.sensor.noise_n > 0 else 0.0
        sensed_n = min(total_n / n_sub + drift_n + noise_n, sc.sensor.saturation_n)
        raw = round(sensed_n * sc.sensor.scale_counts_per_n + sc.sensor.offset_counts)
        raw = min(max(raw, RAW_MIN), RAW_MAX)  # the ADC's reading has a range (i32 on the wire)
        drain = sc.battery.idle_drain_pct_per_h + sc.battery.motor_drain_pct_per_h * m.level
        self.battery_pct = max(0.0, self.battery_pct - drain * dt_s / 3600.0)
        return pressing_n, raw
