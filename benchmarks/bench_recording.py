"""Recording figures: what recording adds per batch to the live pipeline, the flush, the size
on disk, and reading and analysing a recording back. Prints figures; asserts nothing.
Run: .venv/bin/python benchmarks/bench_recording.py

A 1 kHz stream in 10-sample batches (the default session), 60 s of device time: 6,000
batches through ForcePipeline alone, then through ForcePipeline + Recorder.on_batch (which
includes the amortised whole-line flush every 0.5 s of host time), best of 3 runs each.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from device.recording.folder import Recorder, read_recording  # noqa: E402
from device.routine.timeline import analyze_recording  # noqa: E402
from dsp.calibration import Calibration  # noqa: E402
from dsp.pipeline import ForcePipeline  # noqa: E402
from dsp.zones import get_zone  # noqa: E402

RATE_HZ = 1000
BATCH = 10
SECONDS = 60.0


def _batches() -> list[SimpleNamespace]:
    rng = np.random.default_rng(1)
    n = int(SECONDS * RATE_HZ)
    t = np.arange(n) / RATE_HZ
    force = 4.0 + 2.0 * np.sin(2 * np.pi * 0.1 * t) + rng.normal(0, 0.05, n)
    raw = np.round(12000 + force * 1000).astype(np.int64)
    return [
        SimpleNamespace(
            seq=k & 0xFFFF,
            gap=0,
            t_s=t[a : a + BATCH],
            t_host_s=time.monotonic(),
            rate_hz=RATE_HZ,
            raw_counts=raw[a : a + BATCH],
        )
        for k, a in enumerate(range(0, n, BATCH))
    ]


def _run(batches, folder: Path | None) -> tuple[float, Recorder | None]:
    pipe = ForcePipeline(RATE_HZ, Calibration(1000.0, 12000.0), get_zone(None))
    rec = Recorder.create(folder, {"rate_hz": RATE_HZ}) if folder else None
    start = time.perf_counter()
    for b in batches:
        result = pipe.on_batch(b.t_s, b.raw_counts, b.t_host_s)
        if rec is not None:
            rec.on_batch(b, result)
    elapsed = time.perf_counter() - start
    if rec is not None:
        rec.finish(None)
    return elapsed, rec


def main() -> None:
    batches = _batches()
    n = len(batches)
    with tempfile.TemporaryDirectory() as tmp:
        alone = min(_run(batches, None)[0] for _ in range(3))
        recorded = []
        for i in range(3):
            elapsed, _ = _run(batches, Path(tmp) / f"r{i}")
            recorded.append(elapsed)
        with_rec = min(recorded)
        folder = Path(tmp) / "r0"
        size = sum(p.stat().st_size for p in folder.iterdir())
        t0 = time.perf_counter()
        rec = read_recording(folder)
        read_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        analyze_recording(rec)
        analyze_s = time.perf_counter() - t0
        # the flush itself: 0.5 s of a 1 kHz stream = 500 rows in one write
        r = Recorder.create(Path(tmp) / "flush", {})
        pipe = ForcePipeline(RATE_HZ, Calibration(1000.0, 12000.0), get_zone(None))
        for b in batches[:50]:
            r.on_batch(b, pipe.on_batch(b.t_s, b.raw_counts, b.t_host_s))
        t0 = time.perf_counter()
        r.flush()
        flush_s = time.perf_counter() - t0
        r.finish()
    print(f"== per batch ({BATCH} samples at {RATE_HZ} Hz), {n} batches, best of 3")
    print(f"   pipeline alone:            {alone / n * 1e6:7.1f} us")
    print(f"   pipeline + recorder:       {with_rec / n * 1e6:7.1f} us")
    print(f"   recording adds:            {(with_rec - alone) / n * 1e6:7.1f} us per batch "
          f"({(with_rec - alone) / alone * 100:.0f} % of the pipeline)")  # fmt: skip
    print(f"   one flush of 0.5 s (500 rows): {flush_s * 1e3:.2f} ms")
    print(f"== size: {size / SECONDS / 1e3:.1f} kB per second of 1 kHz stream "
          f"({size / SECONDS * 3600 / 1e6:.0f} MB per hour)")  # fmt: skip
    print(f"== reading {rec.t_s.size} samples back: {read_s * 1e3:.0f} ms; "
          f"analyze: {analyze_s * 1e3:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
