"""Tindeq Progressor (and the open clones that speak its API): docs/devices.md.

Control (write, one opcode byte): 0x64 tare (while streaming), 0x65 start weight, 0x66 stop,
0x6B firmware version, 0x6E sleep, 0x6F battery voltage. Data (notify):
``[kind u8][len u8][payload of len bytes]``: kind 0 a command's response, 1 weight samples
(len / 8 of them, each f32 LE kilograms + u32 LE µs of device time), 4 a low-power warning.

Raw value: the kilograms to the nearest milligram (i32 counts of 1e-6 kg), so a sample is an
integer like every other device's; the calibration turns it into newtons.
"""

from __future__ import annotations

import math
import struct

from device.links.drivers.base import G, Reply, Samples, SensorDriver

SERVICE = "7e4e1701-1ea6-40c9-9dcc-13d34ffead57"
DATA = "7e4e1702-1ea6-40c9-9dcc-13d34ffead57"
CONTROL = "7e4e1703-1ea6-40c9-9dcc-13d34ffead57"

TARE, START, STOP, FIRMWARE, SLEEP, BATTERY = 0x64, 0x65, 0x66, 0x6B, 0x6E, 0x6F
KIND_RESPONSE, KIND_WEIGHT, KIND_LOW_POWER = 0, 1, 4
COUNTS_PER_KG = 1_000_000
_SAMPLE = struct.Struct("<fI")
#: battery voltage (mV) read as empty and full, for a percentage (one Li-ion cell)
BATTERY_EMPTY_MV, BATTERY_FULL_MV = 3300, 4200


class ProgressorDriver(SensorDriver):
    kind = "progressor"
    model = "Progressor"
    rate_hz = 80
    scale_counts_per_n = COUNTS_PER_KG / G
    offset_counts = 0
    raw_unit = "mg (kg x 1e6)"
    time_source = "device"
    device_tare = True
    notify_uuids = (DATA,)
    service_uuid = SERVICE

    def __init__(self) -> None:
        super().__init__()
        #: which question the next command response answers (responses do not say)
        self._asked: list[int] = []

    def start_writes(self) -> list[tuple[str, bytes]]:
        return [(CONTROL, bytes([START]))]

    def stop_writes(self) -> list[tuple[str, bytes]]:
        return [(CONTROL, bytes([STOP]))]

    def tare_writes(self) -> list[tuple[str, bytes]]:
        return [(CONTROL, bytes([TARE]))]

    def info_writes(self) -> list[tuple[str, bytes]]:
        self._asked += [FIRMWARE, BATTERY]
        return [(CONTROL, bytes([FIRMWARE])), (CONTROL, bytes([BATTERY]))]

    def decode(self, char: str, data: bytes) -> list[Samples | Reply]:
        st = self.stats
        st.notifications += 1
        if len(data) < 2:
            st.bad_lengths += 1
            st.error(f"a value of {len(data)} bytes: shorter than its header")
            return []
        kind, length = data[0], data[1]
        payload = data[2:]
        if length != len(payload):
            st.bad_lengths += 1
            st.error(f"kind {kind}: len says {length}, {len(payload)} bytes follow")
            return []
        if kind == KIND_WEIGHT:
            if length % _SAMPLE.size:
                st.bad_lengths += 1
                st.error(f"weight: {length} bytes is not a whole number of 8-byte samples")
                return []
            raw: list[int] = []
            times: list[int] = []
            for kg, t_us in _SAMPLE.iter_unpack(payload):
                if not math.isfinite(kg) or abs(kg) > 2000:
                    st.bad_values += 1
                    continue
                raw.append(round(kg * COUNTS_PER_KG))
                times.append(t_us)
            return [Samples(tuple(raw), tuple(times))] if raw else []
        if kind == KIND_RESPONSE:
            asked = self._asked.pop(0) if self._asked else None
            if asked == BATTERY and length == 4:
                mv = struct.unpack("<I", payload)[0]
                pct = (mv - BATTERY_EMPTY_MV) * 100 / (BATTERY_FULL_MV - BATTERY_EMPTY_MV)
                self.battery_pct = max(0, min(100, round(pct)))
                return [Reply("battery_pct", self.battery_pct)]
            if asked == FIRMWARE:
                self.firmware = payload.decode("ascii", errors="replace").strip("\x00")
                return [Reply("firmware", self.firmware)]
            return [Reply("response", bytes(payload))]
        if kind == KIND_LOW_POWER:
            st.low_power_warnings += 1
            return [Reply("low_power", True)]
        st.unknown_kinds += 1
        st.error(f"unknown kind {kind}")
        return []
