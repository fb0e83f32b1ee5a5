"""LSL outlets (issue 17): ``stream --record --lsl`` against the simulated ball, an LSL inlet
in the test reads the force and the markers back, and they are the recording's: every
sample's raw and filtered newtons (float32), every event's JSON in order, time stamps on
one clock model (a marker sits on the sample of its device time)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest

from device.recording.folder import read_recording
from device.recording.lsl import CHANNELS, FORCE_STREAM, MARKER_STREAM, marker_text
from dsp.host_clock import HostClockModel
from tests.helpers import MASSAGECTL, spawn, stop
from ui.cli import main

OVER = """
name = "over"
press = [
  { t_s = 0.5, force_n = 12.0, ramp_s = 0.3 },
  { t_s = 1.5, force_n = 0.0, ramp_s = 0.3 },
]
"""
SPEED = 2.0


def _without_host_time(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "t_host_s"}


def _resolve(lsl, name: str, source_id: str):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = lsl.resolve_streams(timeout=1.0, name=name, source_id=source_id)
        if found:
            return found[0]
    raise AssertionError(f"no LSL stream {name} from {source_id}")


@pytest.mark.timeout(120)
def test_an_inlet_reads_back_the_recording_and_every_marker_in_order(tmp_path):
    lsl = pytest.importorskip("mne_lsl.lsl")
    scenario = tmp_path / "over.toml"
    scenario.write_text(OVER)
    folder = tmp_path / "rec"
    url = f"sim://ball?speed={SPEED:g}&scenario={scenario}"
    errors = open(tmp_path / "stderr.txt", "w")  # noqa: SIM115 - closed below
    proc = spawn(
        MASSAGECTL, "stream", url, "--duration", "2.5", "--record", str(folder),
        "--lsl", "--lsl-wait", "30", stdout=subprocess.DEVNULL, stderr=errors,
    )  # fmt: skip
    try:
        source = f"massagectl:{url}"
        force_in = lsl.StreamInlet(_resolve(lsl, FORCE_STREAM, source), max_buffered=60)
        marker_in = lsl.StreamInlet(_resolve(lsl, MARKER_STREAM, source + "-ev"))
        force_in.open_stream(timeout=10)
        marker_in.open_stream(timeout=10)
        info = force_in.get_sinfo()
        assert info.get_channel_names() == list(CHANNELS)
        assert info.get_channel_units() == ["newtons", "newtons"]
        assert info.stype == "Force" and info.sfreq == 1000.0
        data, stamps, markers, marker_stamps = [], [], [], []
        quiet_since = None
        while True:
            chunk, ts = force_in.pull_chunk(timeout=0.2)
            mchunk, mts = marker_in.pull_chunk(timeout=0.0)
            if len(ts):  # copies: the inlet reuses its buffers
                data.append(np.array(chunk, copy=True))
                stamps.append(np.array(ts, copy=True))
            if len(mts):
                markers.extend(row[0] for row in mchunk)
                marker_stamps.extend(float(t) for t in mts)
            if proc.poll() is None or len(ts) or len(mts):
                quiet_since = None
                continue
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 1.5:
                break
        force_in.close_stream()
        marker_in.close_stream()
    finally:
        stop(proc)
        errors.close()
    assert proc.returncode == 0, (tmp_path / "stderr.txt").read_text()
    rec = read_recording(folder)
    got = np.concatenate(data)
    t_lsl = np.concatenate(stamps)
    assert got.shape == (rec.t_s.size, 2)
    # the recording keeps 6 decimals (docs/recording.md), LSL float32
    assert np.abs(got[:, 0] - rec.force_n).max() <= 1e-6
    assert np.abs(got[:, 1] - rec.filtered_n).max() <= 1e-6
    # regular at the device rate on the host clock: 1 ms of device time is 1/SPEED ms here
    assert np.all(np.diff(t_lsl) >= 0)
    assert math.isclose(float(np.median(np.diff(t_lsl))), 0.001 / SPEED, rel_tol=1e-3)
    # every marker, in order, is the recorded event's JSON (the recorder restamps host time)
    recorded = [_without_host_time(e.to_dict()) for e in rec.events]
    assert [_without_host_time(json.loads(m)) for m in markers] == [
        _without_host_time(json.loads(marker_text(e))) for e in rec.events
    ]
    assert len(markers) == len(recorded) >= 4
    kinds = [json.loads(m)["kind"] for m in markers]
    assert "stop" in kinds and "warning" in kinds and kinds[0] == "step_started"
    stop_marker = next(json.loads(m) for m in markers if json.loads(m)["kind"] == "stop")
    assert stop_marker["cause"] == "over_limit"
    # a marker is stamped on the clock of the samples: at the sample of its device time
    for event, stamp in zip(rec.events, marker_stamps, strict=True):
        i = int(np.searchsorted(rec.t_s, event.t_s))
        if 0 < i < rec.t_s.size:
            assert abs(stamp - t_lsl[i]) < 0.002, (event.kind, stamp - t_lsl[i])


def test_without_the_extra_lsl_names_it_and_exits_2(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mne_lsl", None)
    for argv in (
        ["stream", "sim://ball", "--duration", "0.2", "--lsl"],
        ["vibrate", "sim://handheld", "constant", "--lsl"],
        ["routine", "neck-relief", "--device", "sim://ball", "--lsl"],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "massagectl[lsl]" in err and "Traceback" not in err, err


def test_lsl_wait_alone_is_refused(capsys):
    assert main(["stream", "sim://ball", "--lsl-wait", "3"]) == 2
    assert "--lsl-wait goes with --lsl" in capsys.readouterr().err


# ---- the host clock model ---------------------------------------------------------------


def test_the_clock_model_takes_the_lower_envelope_of_the_latency():
    model = HostClockModel(speed=1.0)
    latencies = [0.030, 0.004, 0.020, 0.002, 0.050, 0.009]
    for k, latency in enumerate(latencies):
        device_s = 0.01 * (k + 1)
        model.observe(device_s, 100.0 + device_s + latency)
    assert model.offset_s == pytest.approx(100.002)
    assert model.to_host(np.array([1.0]))[0] == pytest.approx(101.002)


def test_the_clock_model_under_speed_and_monotonic():
    model = HostClockModel(speed=4.0)
    model.observe(0.4, 50.1)  # 0.4 device s is 0.1 host s
    assert model.to_host(np.array([0.4, 0.8]), monotonic=False).tolist() == pytest.approx(
        [50.1, 50.2]
    )
    first = model.to_host(np.array([0.8]))
    model.observe(0.9, 50.0 + 0.9 / 4 - 0.05)  # a smaller latency seen: offset goes down
    again = model.to_host(np.array([0.8]))
    assert again[0] >= first[0]  # a stream's times never go back
    assert model.to_host(np.array([0.8]), monotonic=False)[0] < first[0]


def test_the_clock_model_forgets_old_batches():
    model = HostClockModel(speed=1.0, window_s=10.0)
    model.observe(0.0, 10.0)  # offset 10.0
    for k in range(1, 30):
        model.observe(float(k), 10.5 + k)  # the clocks drifted 0.5 s apart
    assert model.offset_s == pytest.approx(10.5)
