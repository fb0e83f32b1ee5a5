"""End-to-end stop latency: from the sample where the TRUE pressing force passes the zone's
limit to the simulated firmware receiving Stop, in simulator time, at real speed.

The simulated person presses 14 N on neck_back (limit 10 N) with a 20 ms edge every 3 s while
the motor runs at 20 %; the host supervises, stops, waits for the force to reset, re-arms and
vibrates again. Measured through ``sim://`` (in process, the serial codec on the path) and
through ``massagectl sim serial`` on a real pseudo-terminal (a separate process).
Baseline in the same run: the pure detection delay (the DSP's share) of the same stops.

    .venv/bin/python -m benchmarks.bench_stop_latency [CYCLES]
    .venv/bin/python -m benchmarks.bench_stop_latency [CYCLES] ble   # software radio, v2 vs v3
"""

from __future__ import annotations

import asyncio
import re
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from device.control.supervised import SupervisedSession
from device.control.vibration import get_pattern
from device.links import open_link
from device.screening.gate import evaluate, simulated_user_answers
from device.session.device_session import DeviceSession
from dsp.events import Event, Rearmed, Stop
from dsp.pipeline import ForcePipeline
from dsp.zones import get_zone
from simulators.scenario import load_scenario

PERIOD_S = 3.0
SCENARIO = f"""
name = "press-past-the-neck-limit"
repeat_s = {PERIOD_S}
press = [
  {{ t_s = 1.0, force_n = 0.0 }},
  {{ t_s = 1.0, force_n = 14.0, ramp_s = 0.02 }},
  {{ t_s = 1.5, force_n = 0.0, ramp_s = 0.2 }},
]
"""
LIMIT_N = 10.0


def _crossings(scenario_path: Path, until_s: float) -> np.ndarray:
    """Simulator times where the true force passes the limit upwards (0.1 ms resolution)."""
    sc = load_scenario(scenario_path)
    t = np.arange(0.0, until_s, 1e-4)
    f = np.array([sc.force_at(x) for x in t])
    up = np.flatnonzero((f[1:] > LIMIT_N) & (f[:-1] <= LIMIT_N)) + 1
    return t[up]


async def _host(link, cycles: int, pattern: str = "constant") -> list[float]:
    """Vibrate, get stopped, re-arm, vibrate again; returns the detection delays (s)."""
    delays: list[float] = []
    latched = {"now": False}

    def on_event(e: Event) -> None:
        # one latch can carry several causes (over_limit, rate_of_rise): the first one is
        # the one that sent Stop
        if isinstance(e, Stop) and not latched["now"]:
            latched["now"] = True
            delays.append(e.detection_delay_s)
        elif isinstance(e, Rearmed):
            latched["now"] = False

    async with DeviceSession(link) as session:
        # serial:// is a real device to the session: the benchmark answers the screening
        session.clear_for_vibration(evaluate(simulated_user_answers(), source="benchmark"))
        zone = get_zone("neck_back")
        await session.set_limit(zone.ceiling_n)  # as every face does (protocol 2 needs one)
        pipeline = ForcePipeline(session.rate_hz, session.calibration, zone)
        live = SupervisedSession(session, pipeline)
        live.add_listener(on_event)
        live.start()
        live.play(get_pattern(pattern), 20.0)
        try:
            while len(delays) < cycles:
                live.changed.clear()
                await live.changed.wait()
                if live.link_error is not None:
                    raise live.link_error
                if live.failure is not None:
                    raise live.failure
                if pipeline.supervisor.latched and pipeline.supervisor.can_rearm(live.state.t_s):
                    live.rearm()
        finally:
            await live.close()
    return delays


def _latencies(crossings: np.ndarray, stops: list[float]) -> list[float]:
    out = []
    for c in crossings:
        after = [s for s in stops if s >= c]
        if after and after[0] - c < PERIOD_S / 2:
            out.append(after[0] - c)
    return out


def _summary(name: str, values_s: list[float]) -> str:
    ms = np.array(values_s) * 1000
    return (
        f"{name:34s} n={len(ms):3d}  median {statistics.median(ms):6.1f} ms  "
        f"p99 {np.percentile(ms, 99):6.1f} ms  max {ms.max():6.1f} ms"
    )


def bench_sim(scenario: Path, cycles: int) -> tuple[list[float], list[float]]:
    link = open_link(f"sim://ball?scenario={scenario}")
    delays = asyncio.run(_host(link, cycles))
    fw = link.firmware
    stops = [e.t_s for e in fw.events if e.name == "stop_received"]
    return _latencies(_crossings(scenario, fw.t_s), stops), delays


def bench_serial(scenario: Path, cycles: int) -> tuple[list[float], list[float]]:
    exe = str(Path(sys.executable).with_name("massagectl"))
    proc = subprocess.Popen(
        [exe, "sim", "serial", "--scenario", str(scenario)],
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    lines: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("READY"):
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        if not ready.wait(15):
            raise RuntimeError("simulator did not start")
        url = lines[0].split()[1]
        delays = asyncio.run(_host(open_link(url), cycles))
    finally:
        proc.terminate()
        proc.wait(5)
    stops, last = [], 0.0
    for line in lines:
        if m := re.match(r"EVENT t_s=(\S+) (\S+)", line):
            last = float(m.group(1))
            if m.group(2) == "stop_received":
                stops.append(last)
    return _latencies(_crossings(scenario, last), stops), delays


def bench_ble(
    scenario: Path, cycles: int, protocol: int, pattern: str
) -> tuple[list[float], list[float]]:
    """The ball on Bumble's software radio (real time), the host through bleak's Bumble
    backend: ``protocol`` 2 streams the pattern's levels, 3 has the firmware play it."""
    from firmware_bridge import gatt
    from simulators.ble_radio import SoftwareRadio
    from simulators.devices import make_firmware

    fw = make_firmware("ball", load_scenario(scenario), protocol_version=protocol)

    async def run() -> list[float]:
        radio = SoftwareRadio(fw, log=lambda _t: None)
        await radio.start()
        try:
            link = open_link(f"ble://{gatt.SIM_BALL_ADDRESS}", hci=radio.transport_spec)
            return await _host(link, cycles, pattern)
        finally:
            await radio.stop()

    delays = asyncio.run(run())
    stops = [e.t_s for e in fw.events if e.name == "stop_received"]
    return _latencies(_crossings(scenario, fw.t_s), stops), delays


def main() -> None:
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    if len(sys.argv) > 2 and sys.argv[2] == "ble":
        # BLE only: the wave (a level every 50-100 ms when streamed), version 2 against 3,
        # alternating over several connections. A Stop waits for the next connection event:
        # presses exactly 3 s apart keep one phase to those events for a whole connection
        # (the median of one run is that phase's luck), so the presses come 3.0037 s apart
        # (the phase moves 3.7 ms a press) and each version gets three connections.
        with tempfile.TemporaryDirectory() as tmp:
            scenario = Path(tmp) / "press.toml"
            scenario.write_text(SCENARIO.replace(f"repeat_s = {PERIOD_S}", "repeat_s = 3.0037"))
            print(
                f"BLE software radio, wave at 20 %, 3 connections x {cycles} stops per "
                "version, real time"
            )
            pooled: dict[int, tuple[list[float], list[float]]] = {2: ([], []), 3: ([], [])}
            for protocol in (2, 3, 2, 3, 2, 3):
                latencies, delays = bench_ble(scenario, cycles, protocol, "wave")
                pooled[protocol][0].extend(latencies)
                pooled[protocol][1].extend(delays)
            for protocol, (latencies, delays) in pooled.items():
                name = f"ble v{protocol} ({'streamed' if protocol == 2 else 'firmware'})"
                print(_summary(f"{name}: end to end", latencies))
                print(_summary(f"{name}: detection delay (dsp)", delays))
        return
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "press.toml"
        scenario.write_text(SCENARIO)
        print(
            f"over-limit (true force past 10 N, 20 ms edge) -> Stop received by the "
            f"firmware; motor at 20 %; {cycles} stops per transport, real time"
        )
        for name, fn in (
            ("sim:// (in process, codec)", bench_sim),
            ("serial pty (two processes)", bench_serial),
        ):
            latencies, delays = fn(scenario, cycles)
            print(_summary(f"{name}: end to end", latencies))
            print(_summary(f"{name}: detection delay (dsp)", delays))


if __name__ == "__main__":
    main()
