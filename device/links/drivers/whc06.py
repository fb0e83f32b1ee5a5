"""WH-C06 crane scale ("muscle meter"): docs/devices.md.

No connection: the weight is in the advertisement's manufacturer data (company id 0x0100;
offsets below count from the first byte after the company id, as bleak and Web Bluetooth
give it): bytes 10-11 the weight, u16 big-endian in 0.01 units; byte 14: high nibble the
stable flag, low nibble the unit (1 kg, 2 lb, 3 st, 4 jin). Tare is the host's; the rate is
the advertising interval; 10 s without an advertisement is a lost link.

Raw value: the weight in 0.01 units as sent; the calibration for the unit the scale shows
(kg unless the first advertisement says otherwise).
"""

from __future__ import annotations

from device.links.drivers.base import LB_KG, G, Reply, Samples, SensorDriver

COMPANY_ID = 0x0100
WEIGHT_OFFSET = 10
FLAGS_OFFSET = 14
MIN_LENGTH = FLAGS_OFFSET + 1
#: kilograms per unit, by the unit nibble (jin: the market catty, 0.5 kg)
UNIT_KG = {1: 1.0, 2: LB_KG, 3: 6.35029318, 4: 0.5}
UNIT_NAMES = {1: "kg", 2: "lb", 3: "st", 4: "jin"}
#: seconds without an advertisement that count as a lost link
LOST_AFTER_S = 10.0


class WhC06Driver(SensorDriver):
    kind = "whc06"
    model = "WH-C06"
    rate_hz = 10
    scale_counts_per_n = 100.0 / G
    offset_counts = 0
    raw_unit = "0.01 kg"
    time_source = "host"
    device_tare = False
    lost_after_s = LOST_AFTER_S

    def __init__(self) -> None:
        super().__init__()
        self.unit = 1
        self.stable: bool | None = None
        self.unit_changes = 0

    def set_unit(self, unit: int) -> None:
        self.unit = unit
        self.scale_counts_per_n = 100.0 / (UNIT_KG[unit] * G)
        self.raw_unit = f"0.01 {UNIT_NAMES[unit]}"

    def decode(self, char: str, data: bytes) -> list[Samples | Reply]:
        st = self.stats
        st.notifications += 1
        if len(data) < MIN_LENGTH:
            st.bad_lengths += 1
            st.error(f"manufacturer data of {len(data)} bytes (needs {MIN_LENGTH})")
            return []
        flags = data[FLAGS_OFFSET]
        unit = flags & 0x0F
        if unit not in UNIT_KG:
            st.unknown_kinds += 1
            st.error(f"unknown unit {unit}")
            return []
        if unit != self.unit:
            # a scale switched to another unit mid-stream would change the calibration
            # under the pipeline: counted and dropped (the unit is fixed when the link opens)
            self.unit_changes += 1
            st.bad_values += 1
            return []
        self.stable = bool(flags >> 4)
        weight = int.from_bytes(data[WEIGHT_OFFSET : WEIGHT_OFFSET + 2], "big")
        return [Samples((weight,))]
