"""``massagectl analyze`` on generated CSV traces: events, summary, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.dsp.tracegen import Leakage, measured, smooth_step, times
from ui.cli import main


def write_trace(path: Path, t, force) -> Path:
    np.savetxt(
        path, np.c_[t, force, np.zeros_like(t)], delimiter=",", fmt="%.6f",
        header="t_s,force_n,ignored", comments="",
    )  # fmt: skip
    return path


@pytest.fixture
def session_trace(tmp_path):
    """A 4 s hold at 6 N in a 4:7.5 band, released in 0.3 s, then a press to 13 N."""
    t = times(1000.0, 12.0)
    true = smooth_step(t, 0.5, 0.5, 0, 6.0) - smooth_step(t, 4.5, 0.3, 0, 6.0)
    true += smooth_step(t, 7.0, 0.4, 0, 13.0) - smooth_step(t, 8.0, 0.5, 0, 13.0)
    force = measured(t, true, Leakage(40.0, 3.0, off=0.06))
    return write_trace(tmp_path / "trace.csv", t, force), t, true


def test_json_reports_the_hold_fast_release_over_limit_and_summary(session_trace, capsys):
    path, t, true = session_trace
    rc = main(
        ["analyze", str(path), "--band", "4:7.5", "--hold-min", "2", "--motor-hz", "40", "--json"]
    )
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    types = [e["type"] for e in report["events"]]
    assert types == ["hold", "fast_release", "warning", "over_limit", "stop"]
    hold = report["events"][0]
    inb = (true >= 4) & (true <= 7.5) & (t < 6)
    assert abs(hold["duration_s"] - (t[inb][-1] - t[inb][0])) < 0.1 and hold["reached_min"]
    over = report["events"][3]
    first_over = t[np.argmax(true > 10)]
    assert first_over - 0.01 <= over["t_s"] <= first_over + 0.03
    assert 12.5 < over["peak_n"] < 13.5
    assert report["events"][4]["cause"] == "over_limit"
    s = report["summary"]
    assert s["counts"] == {
        "over_limit": 1, "warning": 1, "stop": 1, "fault": 0, "hold": 1, "fast_release": 1,
    }  # fmt: skip
    assert 12.5 < s["peak_n"] < 13.5 and s["zone"] == "neck_back" and s["limit_n"] == 10.0
    assert abs(s["time_over_limit_s"] - ((true > 10).sum() / 1000.0)) < 0.1
    assert 3.5 < s["time_in_band_s"] < 5.0


def test_table_output_and_limit_capped_at_ceiling(session_trace, capsys):
    path, _, _ = session_trace
    assert main(["analyze", str(path), "--limit-n", "50"]) == 0
    out, err = capsys.readouterr()
    assert "capped at 20 N" in err
    assert "zone neck_back (limit 20 N)" in out and "counts:" in out
    assert "(no events)" in out  # 13 N is under the 16 N warning of a 20 N limit


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("t_s,other\n0,1\n", "row 1: missing column force_n"),
        ("t_s,force_n\n0,1\n0.001,abc\n", "row 3: force_n is not a number"),
        ("t_s,force_n\n0,1\n0.002,1\n0.001,1\n", "row 4: time not increasing"),
        ("t_s,force_n\n", "need at least 2 samples"),
    ],
)
def test_bad_input_is_one_line_naming_the_row(tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_folder_that_is_not_a_recording_is_one_line(tmp_path, capsys):
    assert main(["analyze", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a recording (no session.json)" in err and len(err.strip().splitlines()) == 1


def test_installed_command_runs_as_a_subprocess(session_trace):
    path, _, _ = session_trace
    exe = Path(sys.executable).with_name("massagectl")
    done = subprocess.run(
        [str(exe), "analyze", str(path), "--json", "--motor-hz", "40"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"]["counts"]["over_limit"] == 1
    bad = subprocess.run(
        [str(exe), "analyze", str(path.with_name("missing.csv"))],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "cannot open" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("rate_hz", [10.0, 80.0])
def test_a_slow_sensor_trace_reports_its_over_limit(tmp_path, capsys, rate_hz):
    # issue 13: an HX711 trace (10 or 80 Hz, integrating ADC) with a step over the limit;
    # 80 Hz used to end in scipy's "critical frequencies" error, 10 Hz in "too low"
    t = times(rate_hz, 20.0)
    true = smooth_step(t, 5.0, 0.05, 3.0, 12.0)
    force = measured(t, true, seed=2)
    path = write_trace(tmp_path / "slow.csv", t, force)
    assert main(["analyze", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    over = [e for e in report["events"] if e["type"] == "over_limit"]
    assert len(over) == 1
    first_over = t[np.argmax(true > 10)]
    assert first_over <= over[0]["t_s"] <= first_over + max(0.015, 2 / rate_hz) + 1e-9
    assert report["summary"]["rate_hz"] == pytest.approx(rate_hz)


def test_a_trace_slower_than_10_hz_is_one_clear_line(tmp_path, capsys):
    t = times(4.0, 20.0)
    path = write_trace(tmp_path / "slow.csv", t, np.full(t.size, 3.0))
    assert main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err
    assert "10 Hz or more" in err and "Traceback" not in err and "Wn" not in err
