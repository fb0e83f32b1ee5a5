"""Real processes on a real pseudo-terminal: ``massagectl sim serial`` and a host.

Back to back: the simulator runs the Python firmware, then the reference C core
(``--firmware c``), with the same expectations."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import MASSAGECTL, LineReader, spawn, stop

SCENARIO = """
press = [
  { t_s = 0.0, force_n = 0.0 },
  { t_s = 1.0, force_n = 12.0, ramp_s = 0.5 },
]
[sensor]
noise_n = 0.05
"""


@pytest.fixture(params=["python", "c"])
def simulator(tmp_path, request):
    """A ``massagectl sim serial`` process on each firmware; yields (url, reader)."""
    scenario = tmp_path / "press.toml"
    scenario.write_text(SCENARIO)
    proc = spawn(
        MASSAGECTL, "sim", "serial", "--scenario", str(scenario), "--firmware", request.param
    )
    reader = LineReader(proc)
    try:
        url = reader.wait_for(r"^READY (serial://\S+)$").group(1)
        yield url, reader
    finally:
        stop(proc)


def test_stream_json_follows_the_scenario(simulator):
    url, sim = simulator
    # The simulator's scenario clock started before we connect: ask it how far it is.
    result = subprocess.run(
        [MASSAGECTL, "stream", url, "--json", "--duration", "2"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) >= 190  # 2 s at 1 kHz in batches of 10
    assert [r["seq"] for r in rows] == list(range(rows[0]["seq"], rows[0]["seq"] + len(rows)))
    assert all(r["gap"] == 0 for r in rows)
    assert rows[-1]["t_s"] >= 1.98
    force = np.concatenate([r["force_n"] for r in rows])
    assert all(len(r["force_n"]) == 10 for r in rows)
    # Whatever the phase at connect, the ball presses 12 N from 1.5 s of simulator time on,
    # and the stream ends at least 2 s after it began: the last half second is at 12 N.
    tail = force[-500:]
    assert abs(tail.mean() - 12.0) < 0.05
    assert tail.std() < 0.15  # noise is 0.05 N
    assert force.min() > -0.5 and force.max() < 12.6


@pytest.mark.parametrize("how", ["SIGSTOP", "SIGKILL"])
def test_the_deadman_stops_the_motor_when_the_host_goes_silent(simulator, how):
    url, sim = simulator
    host = spawn(sys.executable, "-m", "tests.hosts.vibrate_host", url)
    try:
        LineReader(host).wait_for("^VIBRATING$")
        sim.wait_for(r"EVENT t_s=\S+ vibrate permille=500")
        host.send_signal(getattr(signal, how))
        m = sim.wait_for(r"EVENT t_s=(\S+) deadman last_command_s=(\S+)", timeout_s=10)
        delay_s = float(m.group(1)) - float(m.group(2))
        off = sim.wait_for(r"EVENT t_s=(\S+) motor_off cause=deadman", timeout_s=5)
        assert float(off.group(1)) == float(m.group(1))
        assert 0.5 - 1e-9 <= delay_s <= 0.6, delay_s  # (printed times: float rounding)
    finally:
        stop(host)


def test_stream_to_a_missing_port_is_one_clear_line():
    result = subprocess.run(
        [MASSAGECTL, "stream", "serial:///dev/does-not-exist"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "massagectl stream: error: /dev/does-not-exist: no such serial port"
    )
    assert "Traceback" not in result.stderr
