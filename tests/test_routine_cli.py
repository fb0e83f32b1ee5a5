"""The routine, vibrate and demo commands as a person runs them (real processes)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time

import numpy as np
import pytest

from device.recording.folder import read_recording
from device.screening.gate import simulated_user_answers
from dsp.events import EventKind
from tests.helpers import MASSAGECTL, LineReader, spawn, stop, wait_or_dump
from ui.cli import main

ONE_SQUEEZE = """
format = 1
name = "one-squeeze"
title = "One squeeze"
summary = "One light press beside the spine."
mode = "self"
[[steps]]
id = "neck"
kind = "press_and_hold"
title = "Neck"
instruction = "Press lightly beside the spine, then let go slowly."
zone = "neck_back"
band_n = [3, 7]
hold_min_s = 3
hold_max_s = 6
release_s = 2
vibration = { pattern = "constant", intensity_pct = 20 }
resume = { policy = "auto_after_reset", after_s = 1 }
"""

TRAPEZIUS_HOLD = """
format = 1
name = "long-hold"
title = "Long hold"
summary = "A long shoulder hold."
mode = "self"
[[steps]]
id = "shoulder"
kind = "press_and_hold"
title = "Shoulder"
instruction = "Press into the top of the shoulder and hold."
zone = "upper_trapezius"
band_n = [15, 30]
hold_min_s = 10
hold_max_s = 15
release_s = 2
vibration = { pattern = "constant", intensity_pct = 50 }
"""


def _run(*args, timeout=60):
    return subprocess.run(
        [MASSAGECTL, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_routine_on_the_scripted_ball_completes_records_and_summarises(tmp_path):
    routine = tmp_path / "one.toml"
    routine.write_text(ONE_SQUEEZE)
    rec = tmp_path / "rec"
    result = _run(
        "routine",
        str(routine),
        "--device",
        "sim://ball?user=scripted",
        "--speed",
        "10",
        "--record",
        str(rec),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "No terminal" in out  # unattended, and it says so
    assert "STOP: too much pressure for this spot" in out  # the scripted over-press
    assert "going on" in out
    assert "routine completed" in out
    recording = read_recording(rec)
    kinds = {e.kind for e in recording.events}
    assert {EventKind.STEP_STARTED, EventKind.STOP, EventKind.REARMED} <= kinds
    assert len(recording.t_s) > 1000


def test_a_real_device_without_screening_is_refused_at_once(tmp_path):
    sim = spawn(MASSAGECTL, "sim", "serial")
    try:
        reader = LineReader(sim)
        url = reader.wait_for(r"^READY (serial://\S+)$").group(1)
        t0 = time.monotonic()
        result = _run("routine", "neck-relief", "--device", url, timeout=20)
        assert time.monotonic() - t0 < 10
        assert result.returncode == 2
        assert "screening is required" in result.stderr
        assert "Traceback" not in result.stderr
        # nothing reached the device
        time.sleep(0.2)
        assert not any("vibrate" in line for line in reader.lines)
    finally:
        stop(sim)


@pytest.mark.parametrize(
    ("sig", "code", "said"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["SIGINT", "SIGTERM"],
)
def test_ctrl_c_or_sigterm_mid_hold_sends_stop_and_leaves_the_motor_off(tmp_path, sig, code, said):
    """Ctrl-C (SIGINT) and SIGTERM (a service manager, ``kill``) both send Stop before the
    host exits (SIGTERM failed before: the process died and the deadman stopped the motor)."""
    scenario = tmp_path / "press.toml"
    scenario.write_text("press = [{ t_s = 0.0, force_n = 22.0, ramp_s = 0.5 }]\n")
    routine = tmp_path / "hold.toml"
    routine.write_text(TRAPEZIUS_HOLD)
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps(simulated_user_answers()))
    sim = spawn(MASSAGECTL, "sim", "serial", "--scenario", str(scenario))
    host = None
    try:
        sim_lines = LineReader(sim)
        url = sim_lines.wait_for(r"^READY (serial://\S+)$").group(1)
        host = spawn(
            MASSAGECTL, "routine", str(routine), "--device", url, "--screening", str(answers)
        )
        host_lines = LineReader(host)
        host_lines.wait_for(r"step shoulder", timeout_s=20)
        sim_lines.wait_for(r"EVENT t_s=\S+ vibrate permille=500", timeout_s=10)
        time.sleep(0.5)  # well inside the 10 s hold
        host.send_signal(sig)
        assert wait_or_dump(host, host_lines, 15) == code
        sim_lines.wait_for(r"EVENT t_s=\S+ motor_off cause=stop", timeout_s=5)
        time.sleep(0.7)  # longer than the deadman: it must have had nothing to do
        assert not any("deadman" in line for line in sim_lines.lines)
        # the session's summary, after Ctrl-C too: the step that was cut short
        host_lines.wait_for("long-hold: interrupted", timeout_s=5)
        host_lines.wait_for(r"shoulder .* not completed", timeout_s=5)
        host_lines.wait_for(said, timeout_s=5)
    finally:
        if host is not None:
            stop(host)
        stop(sim)


def test_vibrate_stops_on_an_over_limit_and_says_why(tmp_path):
    scenario = tmp_path / "over.toml"
    scenario.write_text("press = [{ t_s = 0.5, force_n = 14.0, ramp_s = 1.0 }]\n")
    result = _run(
        "vibrate",
        f"sim://ball?scenario={scenario}",
        "constant",
        "--intensity",
        "30",
        "--duration",
        "5",
        "--speed",
        "2",
    )
    assert result.returncode == 1
    assert "stopped: too much pressure for this spot" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["vibrate", "sim://ball", "wave", "--zone", "neck_front"], "no vibration is allowed"),
        (["vibrate", "sim://ball", "wave", "--intensity", "140"], "between 0 and 100"),
        (["routine", "nope", "--device", "sim://ball"], "nope"),
        (
            ["routine", "neck-relief", "--device", "serial:///dev/x", "--speed", "3"],
            "--speed is only for simulated devices",
        ),
    ],
)
def test_bad_input_is_one_line(args, message):
    result = _run(*args, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_profile_lowers_the_limit_the_routine_runs_with(tmp_path):
    routine = tmp_path / "one.toml"
    routine.write_text(ONE_SQUEEZE)
    profile = tmp_path / "light.toml"
    profile.write_text("[zones.neck_back]\nlimit_n = 9\n")
    result = _run(
        "routine",
        str(routine),
        "--device",
        "sim://ball?user=scripted",
        "--speed",
        "10",
        "--profile",
        str(profile),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # the band scales with the lowered limit: 3-7 N x 9/10
    assert "zone neck_back (limit 9 N, aim 2.7-6.3 N)" in result.stdout
    assert "STOP: too much pressure for this spot" in result.stdout


def test_the_default_profile_in_the_config_folder_applies(tmp_path, monkeypatch):
    config = tmp_path / "config"
    config.mkdir()
    (config / "profile.toml").write_text("[zones.neck_back]\nlimit_n = 9\n")
    monkeypatch.setenv("MASSAGECTL_CONFIG_DIR", str(config))  # the child inherits it
    routine = tmp_path / "one.toml"
    routine.write_text(ONE_SQUEEZE)
    result = _run("routine", str(routine), "--device", "sim://ball?user=scripted", "--speed", "10")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(limit 9 N, aim 2.7-6.3 N)" in result.stdout


def test_a_strict_profile_scales_the_routine_instead_of_refusing_it(tmp_path, capsys):
    """neck_back lowered to 6 N: neck-relief's neck bands scale by 0.6 (before, the routine
    was refused: "band top ... above 80 % of the neck_back limit")."""
    profile = tmp_path / "lighter.toml"
    profile.write_text("[zones.neck_back]\nlimit_n = 6\n")
    assert main(["routines", "show", "neck-relief", "--profile", str(profile)]) == 0
    out = capsys.readouterr().out
    assert "neck_back x0.60" in out
    assert re.search(r"neck_back +6 N +1.8-4.2 N", out)


@pytest.mark.parametrize("rate_hz", [10, 80])
def test_routine_on_a_slow_sensor_records_the_over_press_as_at_1khz(tmp_path, rate_hz):
    # issue 13: a ball whose ADC runs only at 10 or 80 Hz (integrating, like an HX711); the
    # full neck-relief at these rates is the same run (README), this is its short form
    routine = tmp_path / "one.toml"
    routine.write_text(ONE_SQUEEZE)
    rec = tmp_path / "rec"
    url = f"sim://ball?user=scripted&rate={rate_hz}"
    result = _run("routine", str(routine), "--device", url, "--speed", "10", "--record", str(rec))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"sensor {rate_hz} Hz" in result.stdout + result.stderr  # the face says so
    assert "routine completed" in result.stdout
    recording = read_recording(rec)
    assert recording.rate_hz == rate_hz  # the recording keeps its rate
    stops = [e for e in recording.events if e.kind is EventKind.STOP]
    assert [str(e.cause) for e in stops] == ["over_limit"]
    holds = [e for e in recording.events if e.kind is EventKind.HOLD_ENDED]
    assert holds and max(e.duration_s for e in holds) >= 3.0  # the step's hold_min_s
    dt = np.diff(recording.t_s)
    assert abs(float(np.median(dt)) - 1.0 / rate_hz) < 0.01 / rate_hz
