"""DSP figures for the README: detection delay, false stops, hold error, per-batch cost,
offline throughput. Prints figures; asserts nothing. Run: .venv/bin/python benchmarks/bench_dsp.py

Traces, one table per rate (10, 80, 500, 1000, 2000 Hz): true pressing force + 0.05 N noise
+ motor leakage 3 N peak (plus 1 N 2nd harmonic) at a motor commanded 25-200 Hz and running
up to 15 % off, read by the ADC a sensor at that rate has: integrating over its conversion
period at <= 80 Hz (an HX711: the leak comes through at its sinc response), sample-and-hold
above. Zone neck_back (10 N). Step onsets are 20 ms raised-cosine edges (pressing force is
band-limited); ramps rise at 20 N/s. Batches of at most max(1 sample, 20 ms). Delay = first
stop (any cause) minus the first sample whose TRUE force passes the limit (negative:
stopped before the limit, e.g. on rate of rise).
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

import numpy as np
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dsp.analysis import analyze_trace  # noqa: E402
from dsp.calibration import Calibration  # noqa: E402
from dsp.events import EventKind  # noqa: E402
from dsp.pipeline import ForcePipeline  # noqa: E402
from dsp.zones import get_zone  # noqa: E402
from tests.dsp.tracegen import (  # noqa: E402
    Leakage,
    adc_period_s,
    adc_read,
    chunks,
    delay_target_s,
    make_pipe,
    measured,
    ramp,
    run_trace,
    smooth_step,
    times,
)

MOTORS_HZ = (25.0, 40.0, 53.0, 80.0, 120.0, 160.0, 200.0)
OFFS = (-0.15, -0.08, 0.0, 0.08, 0.15)
RATES_HZ = (10.0, 80.0, 500.0, 1000.0, 2000.0)


def detection_delays(
    rate_hz: float, onset: str, motors=MOTORS_HZ, offs=OFFS, peaks=(1.05, 1.2, 1.5, 2.0)
) -> dict[float | None, tuple[list[float], int, int]]:
    """Per motor (None: no motor): delays (ms) of the first stop after 0.5 s, misses, and
    stops in the first 0.5 s (a startup transient: the stream starts mid-press at 5 N)."""
    zone = get_zone("neck_back")
    lim = zone.limit_n
    period = adc_period_s(rate_hz)
    out: dict[float | None, tuple[list[float], int, int]] = {}
    seed = 0
    for motor in (None, *motors):
        delays, missed, startup = [], 0, 0
        for off in offs if motor else (0.0,):
            for peak in peaks:
                for p in (0.0, 2.1, 4.2) if motor else (0.0, 1.0, 2.0):
                    seed += 1
                    t = times(rate_hz, 1.6)
                    t0 = 1.0 + p / 97.0  # onsets at every phase of the sample grid

                    def true_fn(tt, t0=t0, peak=peak):
                        if onset == "step":
                            return smooth_step(tt, t0, 0.02, 0.5 * lim, peak * lim)
                        return ramp(tt, t0, 20.0, 0.5 * lim, peak * lim)

                    true = true_fn(t)
                    leak = Leakage(motor, 3.0, off, p, h2_n=1.0) if motor else None
                    x = measured(t, adc_read(true_fn, t, period), leak, seed=seed, period_s=period)
                    pipe = make_pipe(rate_hz, zone, motor_hz=motor)
                    events = run_trace(pipe, t, x, batch=batch_size(rate_hz))
                    stops = [e for e in events if e.kind is EventKind.STOP]
                    startup += any(e.t_s < 0.5 for e in stops)
                    stops = [e for e in stops if e.t_s >= 0.5]
                    t_cross = t[np.argmax(true > lim)]
                    if stops:
                        delays.append((stops[0].t_s - t_cross) * 1e3)
                    else:
                        missed += 1
        out[motor] = (delays, missed, startup)
    return out


def batch_size(rate_hz: float) -> int:
    """Samples per batch the host asks for: at most max(1 sample, 20 ms), 10 at most."""
    return max(1, min(10, int(0.02 * rate_hz)))


def false_stops(
    rate_hz: float, motors=MOTORS_HZ, offs=OFFS, duration_s=10.0
) -> tuple[int, int, float]:
    """Traces with any stop or fault at 90 % of the limit, traces, and the smallest gap (N)
    between the limit and the fast force once the press has settled (the false-stop margin)."""
    zone = get_zone("neck_back")
    period = adc_period_s(rate_hz)
    runs = stops = 0
    margin_n = np.inf
    for motor in (None, *motors):
        for off in offs if motor else (0.0,):
            for p in (0.0, 2.1, 4.2):
                runs += 1
                t = times(rate_hz, duration_s)

                def true_fn(tt):
                    return smooth_step(tt, 0.5, 0.5, 0, 0.9 * zone.limit_n)

                leak = Leakage(motor, 3.0, off, p, h2_n=1.0) if motor else None
                x = measured(t, adc_read(true_fn, t, period), leak, seed=runs, period_s=period)
                pipe = make_pipe(rate_hz, zone, motor_hz=motor)
                events, fast = [], []
                for sl in chunks(t.size, [batch_size(rate_hz)]):
                    out = pipe.on_batch(t[sl], x[sl], float(t[sl][-1]))
                    events.extend(out.events)
                    fast.append(out.fast_n)
                stops += any(e.kind in (EventKind.STOP, EventKind.FAULT) for e in events)
                settled = np.concatenate(fast)[t > 1.2]
                margin_n = min(margin_n, zone.limit_n - float(settled.max()))
    return stops, runs, margin_n


def hold_errors(rate_hz: float, motors=(None, 25.0, 80.0, 200.0), holds_s=(2.0, 10.0, 30.0)):
    zone = get_zone("neck_back")
    period = adc_period_s(rate_hz)
    errs = []
    for motor in motors:
        for hold_s in holds_s:
            for level in (5.0, 6.5):
                t = times(rate_hz, hold_s + 5.0)

                def true_fn(tt, hold_s=hold_s, level=level):
                    return smooth_step(tt, 0.5, 0.5, 0, level) - smooth_step(
                        tt, 1.0 + hold_s, 2.0, 0, level
                    )

                pipe = make_pipe(rate_hz, zone, motor_hz=motor)
                pipe.set_zone(zone, band=(4.0, 7.5), hold=(None, None, None))
                leak = Leakage(motor, 3.0, 0.08) if motor else None
                x = measured(t, adc_read(true_fn, t, period), leak, period_s=period)
                events = run_trace(pipe, t, x, batch=batch_size(rate_hz))
                tf = times(20_000.0, t[-1])  # the truth between samples too
                truth = float(np.count_nonzero((true_fn(tf) >= 4.0) & (true_fn(tf) <= 7.5)))
                truth /= 20_000.0
                ended = [e for e in events if e.kind is EventKind.HOLD_ENDED]
                errs.append(abs(ended[0].duration_s - truth) if len(ended) == 1 else np.inf)
    return errs


def per_batch_cost(rate_hz: float, motor_hz: float | None) -> tuple[float, float, float]:
    """Microseconds per 10-sample batch: pipeline, sosfilt(zi), sosfilt (no zi)."""
    zone = get_zone("neck_back")
    pipe = ForcePipeline(rate_hz, Calibration(200.0, 1000.0), zone)
    pipe.set_zone(zone, band=(4.0, 7.5), hold=(10.0, 15.0, 2.0))
    if motor_hz:
        pipe.set_vibration(30.0, motor_hz)
    n_batches = 2000
    t = times(rate_hz, n_batches * 10 / rate_hz)
    raw = 1000 + 200 * measured(t, smooth_step(t, 0.1, 0.5, 0, 6.0), Leakage(motor_hz or 60, 3.0))
    raw = np.round(raw)
    tb = [t[i : i + 10] for i in range(0, t.size, 10)]
    rb = [raw[i : i + 10] for i in range(0, t.size, 10)]
    i = 0

    def one():
        nonlocal i
        k = i % n_batches
        pipe.on_batch(tb[k], rb[k], float(tb[k][-1]))
        i += 1

    for _ in range(n_batches):  # warm up through the press into the hold
        one()
    sos = signal.butter(2, 10.0, fs=rate_hz, output="sos")
    zi = signal.sosfilt_zi(sos)
    x = rb[5].astype(float)
    reps = 5000

    def best(f):
        return min(timeit.repeat(f, number=reps, repeat=5)) / reps * 1e6

    # re-feed the last (steady, in-hold) batches so time keeps increasing
    last_t, last_r = tb[-1], rb[-1]
    step = [0]

    def steady():
        step[0] += 1
        pipe.on_batch(last_t + step[0] * 0.01, last_r, 0.0)

    return (
        best(steady),
        best(lambda: signal.sosfilt(sos, x, zi=zi)),
        best(lambda: signal.sosfilt(sos, x)),
    )


def throughput(motor_hz: float | None) -> tuple[float, float]:
    """analyze_trace samples/s on 1 M samples at 1 kHz (parsing excluded), and one offline
    pass of the pipeline's own filter cascade (ForceFilters.process on the whole trace)."""
    from dsp.filters import ForceFilters

    rate_hz = 1000.0
    t = times(rate_hz, 1000.0)
    true = 4.0 + 3.0 * np.sin(2 * np.pi * 0.05 * t)
    f = measured(t, true, Leakage(motor_hz or 60.0, 3.0, 0.05))
    zone = get_zone("neck_back")
    a = min(
        timeit.repeat(
            lambda: analyze_trace(t, f, zone, band_n=(4.0, 7.5), hold_min_s=10, motor_hz=motor_hz),
            number=1,
            repeat=3,
        )
    )
    s = min(timeit.repeat(lambda: ForceFilters(rate_hz, motor_hz).process(f), number=1, repeat=3))
    return t.size / a, t.size / s


def _fmt(d: list[float]) -> str:
    return f"median {np.median(d):6.1f}  worst {max(d):6.1f}" if d else "(no stops)"


def main() -> None:
    print("== per rate: over-limit detection delay (ms from the first TRUE sample over the")
    print("   limit; neck_back 10 N; leakage 3 N + 1 N 2nd harmonic, motor -15..+15 % off;")
    print("   integrating ADC at <= 80 Hz, sample-and-hold above), false stops at 90 %,")
    print("   hold duration error; target delay max(15 ms, 2 sample periods)")
    for rate_hz in RATES_HZ:
        print(f"-- {rate_hz:g} Hz (target {delay_target_s(rate_hz) * 1e3:.0f} ms)")
        print("   motor Hz   step: median / worst ms   ramp 20 N/s: median / worst   missed")
        step = detection_delays(rate_hz, "step")
        rmp = detection_delays(rate_hz, "ramp")
        onsets = sum(len(d) + m for table in (step, rmp) for d, m, _ in table.values())
        missed = sum(m for table in (step, rmp) for _, m, _ in table.values())
        print(f"   {onsets} onsets, {missed} missed")
        for motor in step:
            ds, ms, ss = step[motor]
            dr, mr, sr = rmp[motor]
            print(
                f"   {str(motor):>8}   {_fmt(ds)}   {_fmt(dr)}   {ms + mr}"
                + (f"  (startup stops {ss + sr})" if ss + sr else "")
            )
        stops, runs, margin_n = false_stops(rate_hz)
        print(
            f"   false stops at 90 %: {stops} of {runs} traces (10 s each); the fast force"
            f" stayed at least {margin_n:.2f} N under the limit"
        )
        e = hold_errors(rate_hz)
        print(
            f"   hold duration error: median {np.median(e) * 1e3:5.1f} ms"
            f"  worst {max(e) * 1e3:5.1f} ms (n={len(e)})"
        )
    print("== per-batch pipeline cost, 10-sample batch (calibrate, filter, supervise, hold)")
    for rate_hz, motor in ((1000.0, None), (1000.0, 40.0), (500.0, 120.0)):
        p, szi, s = per_batch_cost(rate_hz, motor)
        print(
            f"   {rate_hz:6.0f} Hz motor {motor}: pipeline {p:6.1f} us; sosfilt(zi) {szi:5.1f} us "
            f"-> ratio {p / szi:4.2f}x; sosfilt (no zi) {s:5.1f} us -> {p / s:4.2f}x"
        )
    print("== analyze throughput on 1 M samples at 1 kHz, parsing excluded")
    for motor in (None, 40.0, 150.0):
        a, s = throughput(motor)
        print(
            f"   motor {motor}: analyze {a / 1e6:6.1f} M samples/s; one offline pass of the "
            f"filter cascade {s / 1e6:6.1f} M samples/s -> ratio {a / s:4.2f}x"
        )


if __name__ == "__main__":
    main()
