"""Scale: N simulated balls in one host process, each with the whole pipeline (a device
session over the serial codec, calibration, filters, supervisor, hold timing, the supervised
loop with its tick and keepalive), all on one event loop in real time (speed 1).

For each N the balls stream for ``--duration`` s after a warm-up. Measured per batch, the
**reaction**: from the batch's arrival at the host (the device session decoding it off the
link) to the pipeline having run on it (calibrated, filtered, supervised: a stop would have
been decided), so the queue behind N-1 other balls counts. Also shown: **due -> done**, from
when the batch's last sample was due on the simulator's clock to the same point, which adds
the in-process simulators' 2 ms stepping and the loop's timer jitter. **Gaps**: batches
lost (sequence gaps), stale-stream faults, and device time left behind real time (the
in-process simulator slows down rather than drop data when the loop cannot keep up: more
than one batch period behind counts as a gap). The figure: the largest N with zero gaps and
p99 reaction <= 5 ms, at 1 kHz and at 500 Hz (batches of 10). Each N runs ``--repeat``
times and the run with the lowest p99 counts (best of 3: on a shared machine, another
process taking the CPU for a few ms shows in a p99; the figure is what the host can do).

    .venv/bin/python -m benchmarks.bench_scale [--rates 1000,500] [--duration 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import time
from dataclasses import dataclass, replace

import numpy as np

from device.control.run import supervised_run
from dsp.events import Fault
from dsp.zones import get_zone
from simulators.scenario import ClockConfig, PressPoint, Scenario

WARMUP_S = 1.0
TARGET_P99_S = 0.005
SCENARIO = Scenario(
    name="scale",
    press=(PressPoint(0.5, 12.0, ramp_s=0.5),),
    clock=ClockConfig(drift_ppm=0.0),
)


@dataclass
class Figures:
    n: int
    rate_hz: int
    batches: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    gaps: int
    behind_ms: float
    cpu_pct: float
    due_p99_ms: float

    @property
    def ok(self) -> bool:
        return self.gaps == 0 and self.p99_ms <= TARGET_P99_S * 1000


async def _ball(i: int, rate_hz: int, start: asyncio.Event, stop: asyncio.Event, out: dict):
    reactions: list[float] = []
    due: list[float] = []
    faults = [0]
    async with supervised_run(
        "sim://ball",
        zone=get_zone("upper_back"),
        vibrates=False,
        rate_hz=rate_hz,
        samples_per_batch=10,
        scenario=replace(SCENARIO, seed=i + 1),
    ) as run:
        loop = asyncio.get_running_loop()
        tb = run.session.timebase
        t0 = [0.0]
        measuring = [False]

        def on_batch(batch, _result) -> None:
            if measuring[0]:
                reactions.append(time.monotonic() - batch.t_host_s)
                due.append(loop.time() - t0[0] - float(batch.t_s[-1]))

        def on_event(event) -> None:
            if measuring[0] and isinstance(event, Fault):
                faults[0] += 1

        run.live.add_batch_listener(on_batch)
        run.live.add_listener(on_event)
        await start.wait()
        missed0 = run.session.counters.missed_batches
        # the loop time at which this ball's device time was 0: device time follows the loop
        t0[0] = loop.time() - tb.now_s()
        measuring[0] = True
        await stop.wait()
        measuring[0] = False
        behind_s = (loop.time() - t0[0]) - tb.now_s()
        gaps = faults[0] + run.session.counters.missed_batches - missed0
        out[i] = (reactions, gaps, behind_s, due)


async def _run(n: int, rate_hz: int, duration_s: float) -> Figures:
    start, stop = asyncio.Event(), asyncio.Event()
    out: dict = {}
    tasks = [asyncio.create_task(_ball(i, rate_hz, start, stop, out)) for i in range(n)]
    await asyncio.sleep(WARMUP_S)
    start.set()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(duration_s)
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    stop.set()
    await asyncio.gather(*tasks)
    reactions = np.concatenate([np.asarray(r) for r, _g, _b, _d in out.values()])
    due = np.concatenate([np.asarray(d) for _r, _g, _b, d in out.values()])
    batch_s = 10 / rate_hz
    gaps = sum(g + (b > batch_s) for _r, g, b, _d in out.values())
    behind = max(b for _r, _g, b, _d in out.values())
    q = np.percentile(reactions, [50, 99]) * 1000 if reactions.size else [np.inf, np.inf]
    return Figures(
        n,
        rate_hz,
        int(reactions.size),
        float(q[0]),
        float(q[1]),
        float(reactions.max() * 1000) if reactions.size else np.inf,
        int(gaps),
        float(behind * 1000),
        cpu * 100,
        float(np.percentile(due, 99) * 1000) if due.size else np.inf,
    )


def measure(n: int, rate_hz: int, duration_s: float) -> Figures:
    gc.collect()
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_run(n, rate_hz, duration_s))
    raise SystemExit(130)


def best_of(n: int, rate_hz: int, duration_s: float, repeat: int) -> Figures:
    runs = [measure(n, rate_hz, duration_s) for _ in range(repeat)]
    return min(runs, key=lambda f: (not f.ok, f.p99_ms))


def largest(
    rate_hz: int, duration_s: float, start_n: int = 8, repeat: int = 3
) -> tuple[int, list[Figures]]:
    """Double N until a run fails, then bisect to within 1/8 of it. One run per N: machine
    load shows as noise at the boundary (re-run to see it)."""
    seen: list[Figures] = []

    def run(n: int) -> bool:
        f = best_of(n, rate_hz, duration_s, repeat)
        seen.append(f)
        print(_row(f), flush=True)
        return f.ok

    lo, hi = 0, start_n
    while run(hi):
        lo, hi = hi, hi * 2
    while hi - lo > max(1, hi // 8):
        mid = (lo + hi) // 2
        if run(mid):
            lo = mid
        else:
            hi = mid
    return lo, seen


def _row(f: Figures) -> str:
    return (
        f"| {f.n} | {f.rate_hz} Hz | {f.batches} | {f.p50_ms:.2f} | {f.p99_ms:.2f} | "
        f"{f.max_ms:.1f} | {f.due_p99_ms:.2f} | {f.gaps} | {f.behind_ms:.1f} | "
        f"{f.cpu_pct:.0f} % | "
        f"{'yes' if f.ok else 'no'} |"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rates", default="1000,500", help="stream rates to try (Hz)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds measured per N")
    p.add_argument("--start", type=int, default=8, help="the first N tried (then doubled)")
    p.add_argument("--repeat", type=int, default=3, help="runs per N (the best counts)")
    args = p.parse_args()
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, load {load:.2f}; reaction target p99 <= 5 ms")
    print(
        "| balls | rate | batches | reaction p50 ms | p99 ms | max ms | due->done p99 ms | "
        "gaps | behind ms | CPU (one core) | ok |\n|---|---|---|---|---|---|---|---|---|---|---|"
    )
    results = {}
    for rate in (int(r) for r in args.rates.split(",")):
        results[rate], _seen = largest(rate, args.duration, args.start, args.repeat)
    for rate, n in results.items():
        print(f"largest N with zero gaps and p99 reaction <= 5 ms at {rate} Hz: {n}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
