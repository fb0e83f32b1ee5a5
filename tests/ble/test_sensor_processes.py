"""The force sensors over the software radio, each side in its own process (issue 15):
``massagectl sim ble --device K`` serves the device from its public protocol; ``scan --json``
shows it with its kind; ``stream ble://NAME --json`` gives newtons at the device's rate that
follow the scenario; Bumble's own ``bumble-gatt-dump`` (a third party) sees the documented
services and characteristics."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ble.test_ble_processes import run
from tests.helpers import MASSAGECTL, LineReader, spawn, stop

LB_N = 4.4482216152605
#: a steady press of exactly 5 lb: the Force Board's 1 lb steps then read it exactly
PRESS_N = 5 * LB_N
NOISE_N = 0.05

#: kind -> (advertised name, rate in Hz, how close the mean must be: noise or resolution)
SENSORS = {
    "progressor": ("Progressor_7301", 80, 0.05),
    "forceboard": ("Force Board", 80, 0.05),
    "whc06": ("IF_B7", 10, 0.1),
}

GATT_DUMP = str(Path(sys.executable).with_name("bumble-gatt-dump"))

#: the services and characteristics the public clients use (docs/devices.md)
DOCUMENTED = {
    "progressor": {
        "7E4E1701-1EA6-40C9-9DCC-13D34FFEAD57": None,
        "7E4E1702-1EA6-40C9-9DCC-13D34FFEAD57": "NOTIFY",
        "7E4E1703-1EA6-40C9-9DCC-13D34FFEAD57": "WRITE",
    },
    "forceboard": {
        "9A88D67F-8DF2-4AFE-9E0D-C2BBBE773DD0": None,
        "9A88D682-8DF2-4AFE-9E0D-C2BBBE773DD0": "NOTIFY",
        "9A88D683-8DF2-4AFE-9E0D-C2BBBE773DD0": "WRITE",
        "467A8516-6E39-11EB-9439-0242AC130002": None,
        "467A8517-6E39-11EB-9439-0242AC130002": "WRITE",
    },
}


@pytest.fixture
def steady_scenario(tmp_path) -> Path:
    path = tmp_path / "steady.toml"
    path.write_text(
        'name = "steady"\nseed = 3\n'
        f"press = [{{ t_s = 0.0, force_n = {PRESS_N!r}, ramp_s = 0.0 }}]\n"
        f"[sensor]\nnoise_n = {NOISE_N}\ndrift_n_per_min = 0.0\n"
    )
    return path


@pytest.fixture
def sim_sensor(request, steady_scenario):
    kind = request.param
    proc = spawn(
        MASSAGECTL,
        "sim",
        "ble",
        "--device",
        kind,
        "--scenario",
        str(steady_scenario),
        "--hci",
        "tcp-server:127.0.0.1:0",
    )
    reader = LineReader(proc)
    try:
        hci = reader.wait_for(r"^READY hci=(tcp-client:127\.0\.0\.1:\d+)$", 30).group(1)
        yield kind, hci
    finally:
        stop(proc)


@pytest.mark.parametrize(
    "sim_sensor",
    # the Force Board is a GATT peripheral like the Progressor: its run is long (7 s)
    [k if k != "forceboard" else pytest.param(k, marks=pytest.mark.long) for k in SENSORS],
    indirect=True,
)
def test_scan_then_stream_a_sensor_in_another_process(sim_sensor):
    kind, hci = sim_sensor
    name, rate_hz, close_n = SENSORS[kind]

    scanned = run("scan", "--timeout", "0.5", "--json", "--hci", hci)
    assert scanned.returncode == 0, scanned.stderr
    devices = [json.loads(line) for line in scanned.stdout.splitlines()]
    assert [(d["kind"], d["name"]) for d in devices] == [(kind, name)]
    address = devices[0]["address"]

    duration_s = 1.0
    streamed = run("stream", f"ble://{name}", "--duration", str(duration_s), "--json", "--hci", hci)
    assert streamed.returncode == 0, streamed.stderr
    batches = [json.loads(line) for line in streamed.stdout.splitlines() if line.startswith("{")]
    forces = [f for b in batches for f in b["force_n"]]
    assert sum(b["gap"] for b in batches) == 0
    # the device's rate over its own time (device stamps, or host receive times)
    span_s = batches[-1]["t_s"] - batches[0]["t_s"]
    per_batch = len(batches[0]["force_n"])
    measured_hz = (len(forces) - per_batch) / span_s
    assert measured_hz == pytest.approx(rate_hz, rel=0.1), measured_hz
    assert span_s >= duration_s - 2 / rate_hz
    # newtons that follow the scenario within the noise (or the device's resolution)
    mean_n = sum(forces) / len(forces)
    assert mean_n == pytest.approx(PRESS_N, abs=close_n), mean_n
    assert max(abs(f - PRESS_N) for f in forces) < 6 * NOISE_N + close_n

    if kind in DOCUMENTED:
        # a third party's view: Bumble's own GATT dump, at the address scan printed
        dumped = subprocess.run(
            [GATT_DUMP, hci, address], capture_output=True, text=True, timeout=30
        )
        assert dumped.returncode == 0, dumped.stderr
        text = re.sub(r"\x1b\[[0-9;]*m", "", dumped.stdout)
        services = text.split("=== All Attributes ===")[0]
        for uuid, prop in DOCUMENTED[kind].items():
            line = next((ln for ln in services.splitlines() if f"uuid={uuid}" in ln), None)
            assert line is not None, f"{uuid} missing from:\n{services}"
            if prop is not None:
                assert prop in line, line


def test_pair_remembers_a_sensor_and_its_address_then_opens_it(tmp_path):
    """``pair`` tares the Progressor (its own tare) against the bound, stores a record of
    kind ``progressor``; ``stream ble://ADDRESS`` then opens the right driver from it."""
    rest = tmp_path / "rest.toml"
    rest.write_text('name = "rest"\nseed = 2\npress = []\n[sensor]\ndrift_n_per_min = 0.0\n')
    proc = spawn(MASSAGECTL, "sim", "ble", "--device", "progressor", "--scenario", str(rest))
    reader = LineReader(proc)
    env = {"MASSAGECTL_CONFIG_DIR": str(tmp_path / "config")}
    try:
        hci = reader.wait_for(r"^READY hci=(tcp-client:127\.0\.0\.1:\d+)$", 30).group(1)
        paired = run("pair", "Progressor_7301", "--json", "--hci", hci, env=env)
        assert paired.returncode == 0, paired.stderr
        record = json.loads(paired.stdout)
        assert record["kind"] == "progressor"
        assert record["calibration"]["how"] == "tare"
        assert "tare: zero at" in paired.stderr
        address = record["address"]
        streamed = run(
            "stream", f"ble://{address}", "--duration", "0.5", "--json", "--hci", hci, env=env
        )
        assert streamed.returncode == 0, streamed.stderr
        batches = [json.loads(ln) for ln in streamed.stdout.splitlines() if ln.startswith("{")]
        assert sum(len(b["force_n"]) for b in batches) >= 35  # 80 Hz
        assert all(abs(f) < 0.3 for b in batches for f in b["force_n"])  # at rest, tared
    finally:
        stop(proc)
