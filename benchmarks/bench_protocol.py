"""Wire protocol figures: decode throughput against plain ``struct.unpack``, and the host's
handling time per batch from bytes to newtons. Prints figures; asserts nothing.

    .venv/bin/python -m benchmarks.bench_protocol
"""

from __future__ import annotations

import statistics
import struct
import time

from device.links import open_link
from device.session.device_session import DeviceSession
from dsp.calibration import Calibration
from firmware_bridge.framing import FrameDecoder, encode_frame
from firmware_bridge.messages import ForceBatch, encode_message

N_FRAMES = 20_000
SAMPLES = 10


def _batches(n: int) -> list[ForceBatch]:
    return [
        ForceBatch(
            i & 0xFFFF, (i * 10_000) & 0xFFFFFFFF, 1000, tuple(range(12000, 12000 + SAMPLES))
        )
        for i in range(n)
    ]


def _best_of(fn, repeats: int = 5) -> float:
    return min(_timed(fn) for _ in range(repeats))


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    msgs = _batches(N_FRAMES)
    stream = b"".join(encode_frame(m) for m in msgs)
    payloads = [encode_message(m) for m in msgs]
    layout = struct.Struct(f"<BBHIHB{SAMPLES}i")

    def baseline() -> None:
        unpack = layout.unpack
        for p in payloads:
            unpack(p)

    def ours() -> None:
        decoder = FrameDecoder()
        out = decoder.feed(stream)
        assert len(out) == N_FRAMES

    t_base = _best_of(baseline)
    t_ours = _best_of(ours)
    print(
        f"frames: {N_FRAMES} ForceBatch of {SAMPLES} samples ({len(stream) / N_FRAMES:.0f} B each)"
    )
    print(f"struct.unpack of the payloads (baseline): {N_FRAMES / t_base:12,.0f} frames/s")
    print(f"FrameDecoder.feed (COBS+CRC+decode):      {N_FRAMES / t_ours:12,.0f} frames/s")
    print(
        f"ratio ours/baseline throughput: {t_base / t_ours:.3f}x "
        f"(decoding costs {t_ours / t_base:.1f}x a bare unpack)"
    )

    # Host handling per batch: frame bytes -> message -> unwrap time -> SampleBatch (raw
    # counts; the force pipeline converts them, see bench_dsp).
    # a session on an unopened link: only its batch handling runs here
    session = DeviceSession(open_link("sim://ball"), calibration=Calibration(1000.0, 12000.0))
    frames = [encode_frame(m) for m in msgs[:5000]]
    decoder = FrameDecoder()
    per_batch_us = []
    for _ in range(5):
        t0 = time.perf_counter()
        for f in frames:
            for m in decoder.feed(f):
                session._on_batch(m)
        per_batch_us.append((time.perf_counter() - t0) / len(frames) * 1e6)
        while not session._batches.empty():
            session._batches.get_nowait()
    print(
        f"host handling per batch, bytes -> SampleBatch ({SAMPLES} samples): "
        f"median {statistics.median(per_batch_us):.1f} us, best {min(per_batch_us):.1f} us "
        f"(at 1 kHz / {SAMPLES} per batch that is "
        f"{statistics.median(per_batch_us) * 100 / 1e4:.2f} % of one core)"
    )


if __name__ == "__main__":
    main()
