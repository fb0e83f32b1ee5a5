"""Simulated third-party force sensors, built from their public protocols only (docs/devices.md
names the source of every fact). Each speaks its device's real bytes; none imports host code.

- ``progressor``: Tindeq Progressor. Writes of one opcode byte to its control characteristic;
  notifications ``[kind u8][len u8][payload]`` on its data characteristic; weight samples
  are (f32 LE kilograms, u32 LE microseconds of device time), about 80 Hz.
- ``forceboard``: PitchSix Force Board. Device Mode writes (0x04 stream, 0x05 tare, 0x07
  idle), a Tare characteristic (0x01); force notifications: u16 big-endian sample count,
  then 3-byte samples in pounds read as ``b0 * 32768 + b1 * 256 + b2``; no timestamp.
- ``whc06``: WH-C06 crane scale. No connection: the weight is in its advertisement's
  manufacturer data (company 0x0100): bytes 10-11 the weight, u16 big-endian in 0.01
  units; byte 14: high nibble stable, low nibble the unit (1 kg).

The pressing force comes from the scenario (or a scripted user) through the same physics as
the ball's (noise, drift, an integrating ADC at these rates); the physics reads in
1e4 counts per newton, which each device turns into its own unit.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import replace

from simulators.physics import BallPhysics
from simulators.scenario import Scenario

G = 9.80665
LB_N = 4.4482216152605
#: the physics' resolution for these devices: counts per newton (0.1 mN)
_PHYS_SCALE = 10_000.0

PROGRESSOR_SERVICE = "7e4e1701-1ea6-40c9-9dcc-13d34ffead57"
PROGRESSOR_DATA = "7e4e1702-1ea6-40c9-9dcc-13d34ffead57"
PROGRESSOR_CONTROL = "7e4e1703-1ea6-40c9-9dcc-13d34ffead57"
FORCEBOARD_SERVICE = "9a88d67f-8df2-4afe-9e0d-c2bbbe773dd0"
FORCEBOARD_FORCE = "9a88d682-8df2-4afe-9e0d-c2bbbe773dd0"
FORCEBOARD_TARE = "9a88d683-8df2-4afe-9e0d-c2bbbe773dd0"
FORCEBOARD_WEIGHT_SERVICE = "467a8516-6e39-11eb-9439-0242ac130002"
FORCEBOARD_MODE = "467a8517-6e39-11eb-9439-0242ac130002"
WHC06_COMPANY_ID = 0x0100
ADVERTISEMENT = "advertisement"


class SensorSim:
    """A simulated sensor: ``write(char, data, t_s)`` takes a host write and returns the
    notifications it causes; ``advance(t_s)`` steps to ``t_s`` and returns the notifications
    (``(characteristic uuid, value)``; ``ADVERTISEMENT`` for advertising data) made since."""

    kind = "?"
    name = "?"
    rate_hz = 80

    def __init__(self, scenario: Scenario) -> None:
        sensor = replace(scenario.sensor, scale_counts_per_n=_PHYS_SCALE, offset_counts=0)
        self.scenario = replace(scenario, sensor=sensor)
        self.physics = BallPhysics(self.scenario)
        self.t_s = 0.0
        self.true_force_n = 0.0
        self.streaming = False
        self._next_s: float | None = None
        #: writes the device ignored (unknown opcodes, bad lengths)
        self.ignored_writes = 0

    def _measure(self, t_s: float) -> float:
        """The sensed force (N) at ``t_s``, integrated over one sample period."""
        self.true_force_n, raw = self.physics.step(t_s, 1.0 / self.rate_hz, integrating=True)
        return raw / _PHYS_SCALE

    def write(self, char: str, data: bytes, t_s: float) -> list[tuple[str, bytes]]:
        self.advance(t_s)
        return []

    def advance(self, t_s: float) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        period = 1.0 / self.rate_hz
        if self._next_s is None:
            self._next_s = t_s
        while self._next_s <= t_s:
            sensed = self._measure(self._next_s)
            if self.streaming:
                out += self._sample(self._next_s, sensed)
            self._next_s += period
        self.t_s = max(self.t_s, t_s)
        return out

    def _sample(self, t_s: float, sensed_n: float) -> list[tuple[str, bytes]]:
        return []

    @property
    def battery_pct(self) -> int:
        return max(0, min(100, round(self.physics.battery_pct)))


class ProgressorSim(SensorSim):
    kind = "progressor"
    name = "Progressor_7301"
    rate_hz = 80
    firmware = b"1.2.3"
    #: samples per weight notification
    per_notification = 1

    def __init__(self, scenario: Scenario) -> None:
        super().__init__(scenario)
        self.tare_kg = 0.0
        self._recent_kg: deque[float] = deque(maxlen=16)
        self._pending: list[tuple[float, int]] = []
        self._low_power_sent_s: float | None = None
        self.asleep = False

    def device_us(self, t_s: float) -> int:
        drift = 1.0 + self.scenario.clock.drift_ppm * 1e-6
        return (self.scenario.clock.start_us + round(t_s * drift * 1e6)) % 2**32

    def write(self, char: str, data: bytes, t_s: float) -> list[tuple[str, bytes]]:
        out = self.advance(t_s)
        if char != PROGRESSOR_CONTROL or len(data) < 1 or self.asleep:
            self.ignored_writes += 1
            return out
        op = data[0]
        if op == 0x64:  # tare: only while streaming
            if self.streaming and self._recent_kg:
                self.tare_kg = sum(self._recent_kg) / len(self._recent_kg)
        elif op == 0x65:
            self.streaming = True
        elif op == 0x66:
            self.streaming = False
            self._pending.clear()
        elif op == 0x6B:
            out.append((PROGRESSOR_DATA, bytes([0, len(self.firmware)]) + self.firmware))
        elif op == 0x6E:
            self.streaming = False
            self.asleep = True
        elif op == 0x6F:
            mv = round(3300 + 900 * self.battery_pct / 100)
            out.append((PROGRESSOR_DATA, bytes([0, 4]) + struct.pack("<I", mv)))
        else:
            self.ignored_writes += 1
        return out

    def _sample(self, t_s: float, sensed_n: float) -> list[tuple[str, bytes]]:
        kg = sensed_n / G
        self._recent_kg.append(kg)
        self._pending.append((kg - self.tare_kg, self.device_us(t_s)))
        out: list[tuple[str, bytes]] = []
        if len(self._pending) >= self.per_notification:
            payload = b"".join(struct.pack("<fI", w, us) for w, us in self._pending)
            self._pending = []
            out.append((PROGRESSOR_DATA, bytes([1, len(payload)]) + payload))
        if self.battery_pct < 10 and (
            self._low_power_sent_s is None or t_s - self._low_power_sent_s >= 10.0
        ):
            self._low_power_sent_s = t_s
            out.append((PROGRESSOR_DATA, bytes([4, 0])))
        return out


def encode_forceboard_sample(lbs: float) -> bytes:
    """Three bytes the way the Force Board's readers decode them: b0*32768 + b1*256 + b2."""
    v = min(max(round(lbs), 0), 255 * 32768 + 32767)
    return bytes([v // 32768, (v % 32768) // 256, v % 256])


class ForceBoardSim(SensorSim):
    kind = "forceboard"
    name = "Force Board"
    rate_hz = 80
    per_notification = 2

    def __init__(self, scenario: Scenario) -> None:
        super().__init__(scenario)
        self.zero_lbs = 0.0
        self._recent: deque[float] = deque(maxlen=16)
        self._pending: list[bytes] = []

    def _tare(self) -> None:
        if self._recent:
            self.zero_lbs = sum(self._recent) / len(self._recent)

    def write(self, char: str, data: bytes, t_s: float) -> list[tuple[str, bytes]]:
        out = self.advance(t_s)
        if len(data) != 1:
            self.ignored_writes += 1
        elif char == FORCEBOARD_MODE and data[0] in (0x04, 0x05, 0x07):
            if data[0] == 0x04:
                self.streaming = True
            elif data[0] == 0x05:
                self._tare()
            else:
                self.streaming = False
                self._pending.clear()
        elif char == FORCEBOARD_TARE and data[0] == 0x01:
            self._tare()
        else:
            self.ignored_writes += 1
        return out

    def advance(self, t_s: float) -> list[tuple[str, bytes]]:
        if not self.streaming:  # the board measures for its tare even when idle
            pass
        return super().advance(t_s)

    def _measure(self, t_s: float) -> float:
        sensed = super()._measure(t_s)
        self._recent.append(sensed / LB_N)
        return sensed

    def _sample(self, t_s: float, sensed_n: float) -> list[tuple[str, bytes]]:
        self._pending.append(encode_forceboard_sample(sensed_n / LB_N - self.zero_lbs))
        if len(self._pending) < self.per_notification:
            return []
        payload = struct.pack(">H", len(self._pending)) + b"".join(self._pending)
        self._pending = []
        return [(FORCEBOARD_FORCE, payload)]


def whc06_manufacturer_data(weight_units: int, *, stable: bool, unit: int = 1) -> bytes:
    """The WH-C06's manufacturer data after the company id: 16 bytes, weight (0.01 units,
    u16 big-endian) at 10-11, stable flag and unit at 14."""
    data = bytearray(16)
    data[10:12] = struct.pack(">H", min(max(weight_units, 0), 0xFFFF))
    data[14] = (0x1 if stable else 0x0) << 4 | (unit & 0x0F)
    return bytes(data)


class WhC06Sim(SensorSim):
    """Advertises the weight every ``ADV_INTERVAL_S`` (10 Hz): the scale's rate."""

    kind = "whc06"
    name = "IF_B7"
    rate_hz = 10
    ADV_INTERVAL_S = 0.1

    def __init__(self, scenario: Scenario) -> None:
        super().__init__(scenario)
        self.streaming = True  # it always advertises
        self._recent: deque[int] = deque(maxlen=10)
        self.manufacturer_data = whc06_manufacturer_data(0, stable=True)

    def _sample(self, t_s: float, sensed_n: float) -> list[tuple[str, bytes]]:
        units = round(sensed_n / G * 100)
        self._recent.append(units)
        stable = len(self._recent) == self._recent.maxlen and (
            max(self._recent) - min(self._recent) <= 5
        )
        self.manufacturer_data = whc06_manufacturer_data(units, stable=stable)
        return [(ADVERTISEMENT, self.manufacturer_data)]


SENSORS: dict[str, type[SensorSim]] = {
    "progressor": ProgressorSim,
    "forceboard": ForceBoardSim,
    "whc06": WhC06Sim,
}


def make_sensor(kind: str, scenario: Scenario) -> SensorSim:
    if kind not in SENSORS:
        raise ValueError(f"no simulated sensor {kind!r} (known: {', '.join(SENSORS)})")
    return SENSORS[kind](scenario)


__all__ = ["SENSORS", "SensorSim", "make_sensor"]
