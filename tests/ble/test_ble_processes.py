"""``massagectl sim ble`` in one process; ``scan``, ``stream``, a host that is SIGKILLed
mid-stream, then a new ``stream``: each a separate process against the same simulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from firmware_bridge import gatt
from tests.helpers import MASSAGECTL, LineReader, spawn, stop, wait_or_dump


@pytest.fixture
def sim_ble():
    proc = spawn(MASSAGECTL, "sim", "ble", "--hci", "tcp-server:127.0.0.1:0")
    reader = LineReader(proc)
    try:
        hci = reader.wait_for(r"^READY hci=(tcp-client:127\.0\.0\.1:\d+)$", 30).group(1)
        yield hci, reader
    finally:
        stop(proc)


def run(*args: str, timeout_s: float = 40, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if k != "MASSAGECTL_BLE"}, **(env or {})}
    return subprocess.run(
        [MASSAGECTL, *args], capture_output=True, text=True, timeout=timeout_s, env=env
    )


def _batches(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_scan_stream_killed_host_and_new_stream_against_one_simulator(sim_ble):
    hci, sim = sim_ble

    scanned = run("scan", "--timeout", "1", "--json", "--hci", hci)
    assert scanned.returncode == 0, scanned.stderr
    devices = [json.loads(line) for line in scanned.stdout.splitlines()]
    assert devices == [
        {
            "kind": "ball",
            "name": gatt.BALL_ADVERTISED_NAME,
            "address": gatt.SIM_BALL_ADDRESS,
            "rssi_dbm": -50,
        }
    ]

    streamed = run(
        "stream", f"ble://{gatt.BALL_ADVERTISED_NAME}", "--duration", "1", "--json", "--hci", hci
    )
    assert streamed.returncode == 0, streamed.stderr
    batches = _batches(streamed.stdout)
    assert batches[-1]["t_s"] >= 0.98
    assert sum(b["gap"] for b in batches) == 0
    assert sum(len(b["force_n"]) for b in batches) >= 1000

    # a host that dies mid-stream, without a word on the air
    victim = spawn(
        MASSAGECTL,
        "stream",
        f"ble://{gatt.SIM_BALL_ADDRESS}",
        "--json",
        "--hci",
        hci,
        stderr=subprocess.DEVNULL,
    )
    victim_out = LineReader(victim)
    try:
        victim_out.wait_for(r'^\{"seq"', 30)
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.wait(10) == -signal.SIGKILL
    finally:
        stop(victim)

    again = run(
        "stream", f"ble://{gatt.SIM_BALL_ADDRESS}", "--duration", "0.5", "--json", "--hci", hci
    )
    assert again.returncode == 0, again.stderr
    batches = _batches(again.stdout)
    assert batches and sum(b["gap"] for b in batches) == 0
    assert sim.proc.poll() is None, "the simulator must survive its hosts"


def test_sim_ble_refuses_a_bad_hci_argument():
    result = run("sim", "ble", "--hci", "usb:0")
    assert result.returncode == 2
    assert "tcp-server:HOST:PORT" in result.stderr


def test_stream_to_an_absent_ble_device_is_a_one_line_error(sim_ble):
    hci, _sim = sim_ble
    result = run("stream", "ble://NOBALL?timeout=0.5", "--duration", "1", "--hci", hci)
    assert result.returncode == 2
    assert "no device offering the massagectl service" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_ball_lost_during_vibrate_is_said_at_once_then_counted_down_then_exit_1(
    tmp_path, monkeypatch
):
    """``sim ble`` killed while ``vibrate`` runs: the person hears at once that the link is
    lost and being re-established, sees the seconds left, and the command gives up with exit 1
    when ``--reconnect-timeout`` runs out (failed before: 30 s of silence, then exit 2)."""
    from device.screening.gate import simulated_user_answers

    sim = spawn(MASSAGECTL, "sim", "ble", "--hci", "tcp-server:127.0.0.1:0")
    host = None
    try:
        hci = LineReader(sim).wait_for(r"^READY hci=(tcp-client:127\.0\.0\.1:\d+)$", 30).group(1)
        answers = tmp_path / "answers.json"
        answers.write_text(json.dumps(simulated_user_answers()))
        monkeypatch.setenv("MASSAGECTL_BLE", f"bumble:{hci}")
        host = spawn(
            MASSAGECTL,
            "vibrate",
            f"ble://{gatt.BALL_ADVERTISED_NAME}",
            "constant",
            "--zone",
            "upper_back",
            "--duration",
            "120",
            "--screening",
            str(answers),
            "--reconnect-timeout",
            "3",
        )
        lines = LineReader(host)
        lines.wait_for(r"vibration +[1-9]\d* %", 30)
        sim.kill()
        killed = time.monotonic()
        lines.wait_for(r"link lost: .*reconnecting, giving up in 3 s", 3)
        said_lost_s = time.monotonic() - killed
        lines.wait_for(r"reconnecting\.\.\. [0-3] s left", 4)
        lines.wait_for(r"gave up: .*did not come back within 3 s", 10)
        gave_up_s = time.monotonic() - killed
        assert wait_or_dump(host, lines, 15) == 1
        lines.wait_for("stopped: the connection to the device was lost", 5)
        assert not any("Traceback" in line for line in lines.lines)
        print(f"lost said after {said_lost_s:.2f} s; exit after {gave_up_s:.1f} s")
        assert gave_up_s < 3 + 6  # the timeout, plus one attempt and the way out
    finally:
        if host is not None:
            stop(host)
        stop(sim)
