"""PitchSix Force Board: docs/devices.md.

Device Mode (write): 0x04 stream, 0x05 tare, 0x07 idle; Tare (write 0x01). Force (notify):
u16 big-endian sample count, then 3 bytes per sample, in pounds, no time stamp (the host's
receive time, spread over the batch).

The 3-byte scaling: both open readers we could check (hangtime-grip-connect's
forceboard.model.ts and grip-gains-companion's PitchSixService.kt) read a sample as
``b0 * 32768 + b1 * 256 + b2`` pounds, where a plain big-endian 24-bit number would be
``b0 * 65536 + ...``. We follow the two readers (``WEIGHTS``): they are tested against the
real board by their users; docs/devices.md says so.
"""

from __future__ import annotations

from device.links.drivers.base import LB_KG, G, Reply, Samples, SensorDriver

SERVICE = "9a88d67f-8df2-4afe-9e0d-c2bbbe773dd0"
FORCE = "9a88d682-8df2-4afe-9e0d-c2bbbe773dd0"
TARE_CHAR = "9a88d683-8df2-4afe-9e0d-c2bbbe773dd0"
WEIGHT_SERVICE = "467a8516-6e39-11eb-9439-0242ac130002"
MODE = "467a8517-6e39-11eb-9439-0242ac130002"
MODE_STREAM, MODE_TARE, MODE_IDLE = 0x04, 0x05, 0x07
WEIGHTS = (32768, 256, 1)


def sample_value(b: bytes) -> int:
    return b[0] * WEIGHTS[0] + b[1] * WEIGHTS[1] + b[2] * WEIGHTS[2]


class ForceBoardDriver(SensorDriver):
    kind = "forceboard"
    model = "Force Board"
    rate_hz = 80
    #: one count is one pound-force
    scale_counts_per_n = 1.0 / (LB_KG * G)
    offset_counts = 0
    raw_unit = "lb (1 count = 1 lbf, 4.45 N)"
    time_source = "host"
    device_tare = True
    notify_uuids = (FORCE,)
    service_uuid = SERVICE

    def start_writes(self) -> list[tuple[str, bytes]]:
        return [(MODE, bytes([MODE_STREAM]))]

    def stop_writes(self) -> list[tuple[str, bytes]]:
        return [(MODE, bytes([MODE_IDLE]))]

    def tare_writes(self) -> list[tuple[str, bytes]]:
        return [(TARE_CHAR, bytes([0x01]))]

    def decode(self, char: str, data: bytes) -> list[Samples | Reply]:
        st = self.stats
        st.notifications += 1
        if len(data) < 2:
            st.bad_lengths += 1
            st.error(f"a value of {len(data)} bytes: shorter than its count")
            return []
        count = int.from_bytes(data[:2], "big")
        body = data[2:]
        if len(body) != 3 * count:
            st.bad_lengths += 1
            st.error(f"count says {count} samples, {len(body)} bytes follow")
            return []
        raw = tuple(sample_value(body[i : i + 3]) for i in range(0, len(body), 3))
        return [Samples(raw)] if raw else []
