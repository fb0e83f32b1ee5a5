"""``pair``, ``devices``, ``stream ble://NAME`` with the stored calibration, and ``forget``,
each a separate process against one ``massagectl sim ble`` (issue 5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from device.config.known_devices import KnownDevices
from firmware_bridge import gatt
from tests.helpers import MASSAGECTL, LineReader, spawn, stop

# the press comes back every 20 s: a pair that starts late (a loaded machine) and finds the
# ball pressed waits for the let-go, tares, then meets the next press
SCENARIO = """
name = "known-press"
repeat_s = 20.0
press = [
  { t_s = 10.0, force_n = 20.0, ramp_s = 0.3 },
  { t_s = 14.0, force_n = 0.0, ramp_s = 0.5 },
]
"""


def run(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MASSAGECTL_BLE"}
    return subprocess.run(
        [MASSAGECTL, *args], capture_output=True, text=True, timeout=timeout_s, env=env
    )


@pytest.mark.long  # 15 s of real time; make test pairs in tests/ble/test_pair_guided.py
def test_pair_devices_stream_with_stored_calibration_and_forget(tmp_path):
    scenario = tmp_path / "press.toml"
    scenario.write_text(SCENARIO)
    sim = spawn(MASSAGECTL, "sim", "ble", "--scenario", str(scenario), "--speed", "2", "--quiet")
    try:
        hci = LineReader(sim).wait_for(r"^READY hci=(tcp-client:127\.0\.0\.1:\d+)$", 30).group(1)
        paired = run(
            "pair", gatt.BALL_ADVERTISED_NAME, "--hci", hci, "--known-n", "20", "--speed", "2",
            "--press-timeout", "30", "--json",
        )  # fmt: skip
        assert paired.returncode == 0, paired.stderr
        record = json.loads(paired.stdout)
        assert record["address"] == gatt.SIM_BALL_ADDRESS
        assert record["calibration"]["how"] == "two_point"
        assert record["bond"]["has_keys"] and "keys" not in record["bond"]  # never printed
        assert "Now press 20 N" in paired.stderr

        listed = run("devices", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [json.loads(line)["name"] for line in listed.stdout.splitlines()] == ["MBALL"]

        # shift the stored zero by 5000 counts (5 N): a later stream must show it
        store = KnownDevices()
        device = store.find("MBALL")
        device.calibration.offset_counts += 5000
        store.put(device)
        streamed = run("stream", "ble://MBALL", "--duration", "0.5", "--json", "--hci", hci)
        assert streamed.returncode == 0, streamed.stderr
        forces = [f for line in streamed.stdout.splitlines() for f in json.loads(line)["force_n"]]
        mean = sum(forces) / len(forces)
        assert -5.6 < mean < -4.4, mean

        forgot = run("forget", "MBALL")
        assert forgot.returncode == 0 and "forgot MBALL" in forgot.stdout
        assert KnownDevices().devices() == []
        again = run("forget", "MBALL")
        assert again.returncode == 2 and "no known device" in again.stderr
        assert "Traceback" not in again.stderr
    finally:
        stop(sim)
    assert sys.executable  # the processes used this venv's massagectl


def test_a_corrupt_known_devices_file_is_a_one_line_error():
    store = KnownDevices()
    store.folder.mkdir(parents=True, exist_ok=True)
    store.path.write_text("{not json")
    result = run("devices")
    assert result.returncode == 2
    assert "cannot read the known devices" in result.stderr and "Traceback" not in result.stderr
    assert store.path.read_text() == "{not json"
