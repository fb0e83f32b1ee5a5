"""Recording, replay and reports: the folder format, a crash, replay://, analyze and report.

The live-run tests share one recording of the neck-relief routine on the scripted simulated
ball (speed 25, on virtual time), made once per module.
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from device.errors import BadUrlError, InputFileError, UsageError
from device.links import open_link
from device.recording.folder import (
    Recorder,
    RecordingWarning,
    read_recording,
    session_meta,
)
from device.routine.routines import load_routine
from device.routine.runner import RoutineRunner
from device.routine.timeline import DERIVED_CAUSES, analyze_recording, timeline_segments
from device.session.device_session import DeviceSession
from dsp.calibration import Calibration
from dsp.events import Cause, CommandSent, Fault, StepFinished, StepStarted, Stop
from dsp.events import Warning as WarningEvent
from dsp.pipeline import ForcePipeline
from dsp.session_summary import summarize_session
from dsp.zones import get_zone
from tests.helpers import LineReader, spawn, stop
from tests.virtual_time import run_virtual
from ui.cli import main

SPEED = 25


def _batch(seq: int, t0_s: float, n: int = 10, rate_hz: int = 1000, force_n: float = 1.0):
    t_s = t0_s + np.arange(n) / rate_hz
    raw = np.full(n, 12000 + round(force_n * 1000), dtype=np.int64)
    batch = SimpleNamespace(
        seq=seq, gap=0, t_s=t_s, t_host_s=time.monotonic(), rate_hz=rate_hz, raw_counts=raw,
        force_n=(raw - 12000) / 1000.0,
    )  # fmt: skip
    result = SimpleNamespace(force_n=batch.force_n, filtered_n=batch.force_n * 0.5)
    return batch, result


def _step_started(t_s: float = 0.0, **fields) -> StepStarted:
    """A step_started with its whole field set (defaults: a plain step without vibration)."""
    base = {
        "step": "s",
        "step_kind": "press_and_hold",
        "zone": "neck_back",
        "limit_n": 10.0,
        "band_n": None,
        "side": "none",
        "vibration_pct": 0.0,
        "pattern": None,
        "motor_hz": None,
        "hold_min_s": None,
        "hold_max_s": None,
        "release_s": None,
    }
    return StepStarted(t_s=t_s, **{**base, **fields})


# ---- the folder format ----------------------------------------------------------------------


def test_recorder_round_trip_and_finish_twice(tmp_path):
    folder = tmp_path / "rec"
    rec = Recorder.create(folder, {"rate_hz": 1000, "routine": {"name": "x", "origin": "y"}})
    for k in range(5):
        rec.on_batch(*_batch(k, k * 0.01, force_n=float(k)))
    rec.on_event(_step_started(zone="neck_back", limit_n=8.0, band_n=(2.0, 5.0)))
    rec.on_event(Stop(cause=Cause.OVER_LIMIT, t_s=0.03, force_n=float("nan")))
    rec.finish({"end": "completed", "units": []})
    rec.finish({"ignored": True})  # safe twice
    back = read_recording(folder)
    assert back.complete and back.meta["summary"] == {"end": "completed", "units": []}
    assert back.meta["samples"] == 50 and back.meta["versions"]["numpy"] == np.__version__
    assert back.t_s.size == 50 and np.allclose(back.t_s, np.arange(50) / 1000.0)
    assert back.seq.tolist() == sorted(list(range(5)) * 10)
    assert np.allclose(back.force_n, np.repeat(np.arange(5.0), 10))
    assert np.allclose(back.filtered_n, back.force_n * 0.5)
    assert back.raw_counts.dtype == np.int64 and back.raw_counts[-1] == 16000
    assert [type(e) for e in back.events] == [StepStarted, Stop]
    assert back.events[0].band_n == (2.0, 5.0) and back.events[1].cause is Cause.OVER_LIMIT
    assert math.isnan(back.events[1].force_n)  # NaN is not JSON: written as null
    assert json.loads((folder / "events.jsonl").read_text().splitlines()[1])["force_n"] is None
    assert back.batch_bounds().tolist() == [0, 10, 20, 30, 40, 50]
    assert back.warnings == []


def test_a_folder_with_anything_in_it_is_refused(tmp_path):
    (tmp_path / "old.txt").write_text("keep me")
    with pytest.raises(UsageError, match="not empty; recordings never overwrite"):
        Recorder.create(tmp_path, {})
    assert (tmp_path / "old.txt").read_text() == "keep me"
    Recorder.create(tmp_path / "new" / "deeper", {}).finish()  # created with its parents


def test_unterminated_last_lines_are_skipped_with_a_warning(tmp_path):
    folder = tmp_path / "rec"
    rec = Recorder.create(folder, {})
    for k in range(3):
        rec.on_batch(*_batch(k, k * 0.01))
    rec.on_event(WarningEvent(t_s=0.01, warning_n=8.0, limit_n=10.0))
    rec.finish()
    samples = folder / "samples.csv"
    samples.write_bytes(samples.read_bytes() + b"3,0.03,0.1,120")  # a writer killed mid-line
    events = folder / "events.jsonl"
    events.write_bytes(events.read_bytes() + b'{"kind":"st')
    with pytest.warns(RecordingWarning, match="unterminated") as caught:
        back = read_recording(folder)
    assert len(caught) == 2 and len(back.warnings) == 2
    assert back.t_s.size == 30 and [type(e) for e in back.events] == [WarningEvent]


#: events.jsonl lines as massagectl wrote them before the typed events (format version 1):
#: vibrate's step_started without side or hold timing, a paused step_finished without
#: restarts, a command, a stop with its facts, a fault of the loop itself (no cause).
V1_EVENTS = (
    '{"kind":"step_started","cause":null,"t_s":0.0,"detection_delay_s":0.0,"force_n":0.0,'
    '"detail":{"step":"vibrate","kind":"vibrate","zone":"upper_trapezius","limit_n":40.0,'
    '"band_n":[],"vibration_pct":30.0,"pattern":"constant","motor_hz":150},"t_host_s":0.01}\n'
    '{"kind":"command_sent","cause":null,"t_s":0.01,"detection_delay_s":0.0,"force_n":0.0,'
    '"detail":{"command":"vibrate","intensity_pct":30.0,"frequency_hz":150},"t_host_s":0.02}\n'
    '{"kind":"step_finished","cause":null,"t_s":0.02,"detection_delay_s":0.0,"force_n":0.0,'
    '"detail":{"step":"vibrate","completed":false,"paused":true},"t_host_s":0.03}\n'
    '{"kind":"stop","cause":"over_limit","t_s":0.03,"detection_delay_s":0.0056,"force_n":null,'
    '"detail":{"limit_n":40.0,"path":"fast","fast_n":41.0,"vibrating":true,'
    '"was_vibrating":true},"t_host_s":0.04}\n'
    '{"kind":"fault","cause":null,"t_s":0.04,"detection_delay_s":0.0,"force_n":0.0,'
    '"detail":{"error":"RuntimeError: x"},"t_host_s":0.05}\n'
)


def test_a_version_1_recording_reads_into_the_types(tmp_path):
    folder = tmp_path / "v1"
    rec = Recorder.create(folder, {"rate_hz": 1000})
    for k in range(5):
        rec.on_batch(*_batch(k, k * 0.01))
    rec.finish(None)
    (folder / "events.jsonl").write_text(V1_EVENTS)
    back = read_recording(folder)
    assert back.meta["format_version"] == 1
    started, sent, finished, stop, fault = back.events
    assert isinstance(started, StepStarted) and started.step_kind == "vibrate"
    assert (started.side, started.band_n, started.hold_min_s, started.motor_hz) == (
        "none",
        None,
        None,
        150,
    )
    assert isinstance(sent, CommandSent) and sent.intensity_pct == 30.0
    assert isinstance(finished, StepFinished) and finished.paused and finished.restarts == 0
    assert isinstance(stop, Stop) and stop.path == "fast" and math.isnan(stop.force_n)
    assert isinstance(fault, Fault) and fault.cause is None and fault.error
    segments = timeline_segments(back.events, back.meta)
    assert [s.zone.name for s in segments[1:]] == ["upper_trapezius"] * 4
    assert segments[2].vibration_pct == 30.0 and segments[2].motor_hz == 150.0
    assert isinstance(segments[4].latch, Fault)  # the fault latched; the over-limit is derived
    assert analyze_recording(back)["summary"]["counts"]["fault"] == 1


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (("session.json", b"{"), "session.json: line 1: not valid JSON"),
        (("samples.csv", b"seq,t\n"), "header is 'seq,t'"),
        (("samples.csv", b"seq,t_s,t_host_s,raw_counts,force_n,filtered_n\n1,x,2,3,4,5\n"),
         "malformed sample row"),
        (("events.jsonl", b"[1]\n"), "events.jsonl: line 1: an event needs an object"),
        (("events.jsonl", b'{"kind":"stop","t_s":1.0}\n'),
         "events.jsonl: line 1: a stop event needs a cause"),
        (("events.jsonl", b'{"kind":"nap","t_s":1.0}\n'),
         "events.jsonl: line 1: unknown event kind 'nap'"),
        # issue 14: what fuzzing found
        (("session.json", b'{"format":"massagectl-recording","format_version":"1"}'),
         "session.json: format_version: expected `int`, got `str`"),
        (("session.json", b'{"format":"massagectl-recording","rate_hz":0}'),
         "session.json: rate_hz: expected `float` > 0"),
        (("session.json", b'{"format":"massagectl-recording","routine":["neck"]}'),
         "session.json: routine: expected `object | null`, got `array`"),
        (("session.json", b'{"format":"massagectl-recording","calibration":'
                          b'{"scale_counts_per_n":0,"offset_counts":0}}'),
         "session.json: calibration.scale_counts_per_n: must not be 0"),
        (("session.json", b'{"format":"massagectl-recording","device":{"model":3}}'),
         "session.json: device.model: expected `str`, got `int`"),
        (("session.json", b'{"format":"massagectl-recording","summary":{"units":[{}]}}'),
         "session.json: summary.units\\[0\\]: object missing required field `label`"),
        (("session.json", b'{"format":"massagectl-recording","x":1' + b'0' * 400 + b'}'),
         "session.json: x: integer out of range"),
        (("session.json", b'{"format":"massagectl-recording","x":'
                          + b'[' * 2000 + b']' * 2000 + b'}'),
         "session.json: not valid JSON: nested too deep"),
        (("session.json", b'{"format":"massagectl-recording","rate_hz":NaN}'),
         "session.json: not valid JSON"),
        (("session.json", b'{"format":"massagectl-recording\xff"}'), "not UTF-8 text"),
        (("samples.csv", b"seq,t_s,t_host_s,raw_counts,force_n,filtered_n\nnan,1,2,3,4,5\n"),
         "samples.csv: line 2: seq must be finite"),
        (("samples.csv", b"seq,t_s,t_host_s,raw_counts,force_n,filtered_n\n1,1,2,3.5,4,5\n"),
         "samples.csv: line 2: raw_counts must be a whole number"),
        (("samples.csv", b"seq,t_s,t_host_s,raw_counts,force_n,filtered_n\n1,1,2,3e10,4,5\n"),
         "samples.csv: line 2: raw_counts must be within"),
        (("samples.csv", b"seq,t_s,t_host_s,raw_counts,force_n,filtered_n\n1,1e300,2,3,4,5\n"),
         "samples.csv: line 2: t_s must be within"),
        (("events.jsonl", b'{"kind":"warning","t_s":1.0,"detail":"x"}\n'),
         "events.jsonl: line 1: warning: detail is not an object"),
        (("events.jsonl", b'{"kind":"hold_started","t_s":1.0,"detail":{"band_n":[3]}}\n'),
         "events.jsonl: line 1: hold_started: detail.band_n is not two finite numbers"),
        (("events.jsonl", b'{"kind":"step_started","t_s":1.0,"detail":{"step":"a","kind":"cue",'
                          b'"zone":["neck_back"],"limit_n":8}}\n'),
         "events.jsonl: line 1: step_started: detail.zone must be a string"),
        (("events.jsonl", b'{"kind":"warning","t_s":1' + b'0' * 400 + b'}\n'),
         "events.jsonl: line 1: t_s: integer out of range"),
        (("events.jsonl", b'[' * 2000 + b']' * 2000 + b'\n'),
         "events.jsonl: line 1: not valid JSON: nested too deep"),
    ],
)  # fmt: skip
def test_damaged_recordings_are_one_line_errors(tmp_path, capsys, damage, message):
    folder = tmp_path / "rec"
    Recorder.create(folder, {}).finish()
    name, content = damage
    (folder / name).write_bytes(content)
    with pytest.raises(InputFileError, match=message):
        read_recording(folder)
    png = str(tmp_path / "r.png")
    for argv in (["analyze", str(folder)], ["report", str(folder), "--png", png],
                 ["stream", f"replay://{folder}?speed=max", "--json"]):  # fmt: skip
        assert main(argv) == 2, argv
        out, err = capsys.readouterr()
        assert message.split(":")[-1].strip() in err and len(err.strip().splitlines()) == 1, err
        assert out == ""
    assert not (tmp_path / "r.png").exists()


# ---- a crash ------------------------------------------------------------------------------


def test_a_killed_recorder_leaves_a_recording_readable_to_its_last_second(tmp_path):
    folder = tmp_path / "rec"
    proc = spawn(sys.executable, "-m", "tests.hosts.record_host", "sim://ball", str(folder))
    try:
        out = LineReader(proc)
        out.wait_for("^RECORDING$")
        at_s = 0.0
        while at_s < 2.0:
            at_s = float(out.wait_for(r"^AT (\d+\.\d+)$").group(1))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        stop(proc)
    ends_mid_line = not (folder / "samples.csv").read_bytes().endswith(b"\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = read_recording(folder)
    # A partial last line is skipped with a warning, and only then.
    assert bool(caught) == ends_mid_line == bool(rec.warnings)
    assert not rec.complete and rec.meta["summary"] is None
    # Everything up to a second before the kill is there (the host printed at_s before it).
    assert rec.t_s[-1] >= at_s - 1.0
    assert np.all(np.diff(rec.t_s) > 0) and np.all(np.isfinite(rec.filtered_n))
    assert isinstance(rec.events[0], StepStarted) and rec.events[0].zone
    # ...and it analyses on its own.
    report = analyze_recording(rec)
    assert report["summary"]["samples"] == rec.t_s.size and not report["recording"]["complete"]


# ---- a live run, replayed through analyze and report -----------------------------------------


async def _record_routine(name: str, folder: Path) -> dict:
    routine = load_routine(name)
    link = open_link("sim://ball?user=scripted", speed=SPEED)
    async with DeviceSession(link) as session:
        pipeline = ForcePipeline(session.rate_hz, session.calibration, get_zone(None))
        runner = RoutineRunner(session, routine, pipeline, unattended=True)
        rec = Recorder.create(folder, session_meta(session, routine=routine))
        runner.add_listener(rec.on_event)
        runner.add_batch_listener(rec.on_batch)
        try:
            summary = await runner.run()
        finally:
            rec.finish(runner.summary.to_dict())
    return summary.to_dict()


@pytest.fixture(scope="module")
def neck_relief(tmp_path_factory):
    folder = tmp_path_factory.mktemp("neck") / "rec"
    summary = run_virtual(_record_routine("neck-relief", folder))
    return folder, summary


def _live_faulted(unit: dict) -> bool:
    return any(s["cause"] not in DERIVED_CAUSES for s in unit["stops"])


def test_analyze_of_the_recording_gives_the_live_stops_and_holds(neck_relief, capsys):
    folder, live = neck_relief
    assert main(["analyze", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    live_stops = sorted((s["t_s"], s["cause"]) for u in live["units"] for s in u["stops"])
    found = sorted(
        (e["t_s"], e["cause"]) for e in report["events"] if e["type"] in ("stop", "fault")
    )
    # the scripted over-press near the neck is there, live and re-analysed
    assert any(c == "over_limit" for _, c in live_stops)
    assert [c for _, c in found] == [c for _, c in live_stops]
    assert all(abs(a - b) <= 0.02 for (a, _), (b, _) in zip(found, live_stops, strict=True))
    # holds, unit by unit (a unit with a fault the force cannot show is skipped: the live
    # runner keeps a hold open across its restart, the re-analysis ends it there)
    steps = {s["label"]: s for s in report["steps"] if s["label"]}
    compared = 0
    for unit in live["units"]:
        if _live_faulted(unit):
            continue
        live_holds = [h["duration_s"] for h in unit["holds"] if h["duration_s"] >= 0.5]
        again = [h["duration_s"] for h in steps[unit["label"]]["holds"] if h["duration_s"] >= 0.5]
        assert len(again) == len(live_holds), unit["label"]
        assert np.allclose(again, live_holds, atol=0.05), unit["label"]
        if unit["band_n"]:
            in_band = steps[unit["label"]]["time_in_band_s"]
            assert abs(in_band - unit["time_in_band_s"]) <= 0.1, unit["label"]
        compared += bool(live_holds)
    assert compared >= 8


def test_the_session_summary_from_the_events_is_the_live_runners(neck_relief):
    """dsp.session_summary over events.jsonl gives, step by step, what the runner counted
    live: holds, time in band, peak, stops, restarts (the one summary every face renders)."""
    folder, live = neck_relief
    summary = summarize_session(read_recording(folder).events)
    assert [s.unit for s in summary.steps] == [u["label"] for u in live["units"]]
    for step, unit in zip(summary.steps, live["units"], strict=True):
        assert step.completed == unit["completed"], step.unit
        assert step.restarts == unit["restarts"], step.unit
        assert step.holds_s == pytest.approx([h["duration_s"] for h in unit["holds"]], abs=1e-3)
        if unit["band_n"]:
            assert step.time_in_band_s == pytest.approx(unit["time_in_band_s"], abs=1e-3)
        assert step.peak_n == pytest.approx(unit["peak_n"], abs=1e-3)
        assert [str(n.cause) for n in step.stops] == [s["cause"] for s in unit["stops"]]
    assert any(s.time_in_band_s for s in summary.steps)
    assert [str(n.cause) for n in summary.stops] == ["over_limit"]


def test_report_csv_is_the_session_summary(neck_relief, tmp_path, capsys):
    import csv

    folder, live = neck_relief
    assert main(["report", str(folder), "--csv", "-"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["unit"] for r in rows] == [u["label"] for u in live["units"]]
    stopped = [r for r in rows if r["stops"] != "0"]
    assert [r["stop_causes"] for r in stopped] == ["over_limit"]
    squeeze = rows[1]
    assert squeeze["state"] == "completed" and float(squeeze["time_in_band_s"]) > 5.0
    assert float(squeeze["holds_s"].split(";")[-1]) >= 10.0
    out = tmp_path / "summary.csv"
    assert main(["report", str(folder), "--csv", str(out)]) == 0
    assert list(csv.DictReader(io.StringIO(out.read_text()))) == rows
    assert f"summary written to {out}" in capsys.readouterr().out


def test_the_timeline_follows_zones_bands_and_vibration(neck_relief):
    folder, _ = neck_relief
    rec = read_recording(folder)
    segments = timeline_segments(rec.events, rec.meta)
    zones = {s.zone.name for s in segments}
    assert {"upper_trapezius", "neck_back", "suboccipital"} <= zones
    bands = {s.band_n for s in segments if s.band_n}
    assert (3.0, 7.0) in bands and (15.0, 30.0) in bands
    assert any(s.vibration_pct > 0 and s.motor_hz for s in segments)
    assert any(s.hold_min_s == 10.0 for s in segments)


def test_report_writes_a_png_of_force_against_the_limits(neck_relief, tmp_path, capsys, qapp):
    from PySide6.QtGui import QImage

    folder, live = neck_relief
    png = tmp_path / "session.png"
    assert main(["report", str(folder), "--png", str(png), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["png"] == str(png)
    assert report["source"] == "analysis of the recording; how steps ended from the live summary"
    steps = [s for s in report["steps"] if s["label"] != "(between steps)"]
    assert [s["label"] for s in steps] == [u["label"] for u in live["units"]]
    assert [(s["completed"], s["outcome"]) for s in steps] == [
        (u["completed"], u["outcome"]) for u in live["units"]
    ]
    assert any(st["stops"] and st["stops"][0]["cause"] == "over_limit" for st in report["steps"])
    assert any(s["cause"] == "over_limit" for s in report["stops"])
    image = QImage(str(png))
    assert (image.width(), image.height()) == (1600, 700)
    rgb32 = image.convertToFormat(QImage.Format.Format_RGB32)
    bgra = np.frombuffer(rgb32.constBits(), np.uint8).reshape(700, rgb32.bytesPerLine() // 4, 4)
    b, g, r = (bgra[:, :1600, i].astype(int) for i in range(3))
    drawn = float(np.mean((r < 250) | (g < 250) | (b < 250)))
    reddish = int(np.sum((r > 180) & (g < 90) & (b < 90)))
    bluish = int(np.sum((b > 150) & (r < 80)))
    assert 0.05 < drawn < 0.9  # not blank, not a solid fill
    assert bluish > 1000  # the filtered force, bold
    assert reddish > 1000  # the limit lines and the stop marker
    assert main(["report", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "STOP over_limit" in text and "holds" in text


# ---- replay:// and stream --record --------------------------------------------------------


@pytest.fixture
def short_recording(tmp_path):
    folder = tmp_path / "short"
    assert main(["stream", "sim://ball?speed=10", "--duration", "2", "--record", str(folder)]) == 0
    return folder


def test_stream_record_then_report_from_a_reanalysis(short_recording, capsys):
    capsys.readouterr()
    rec = read_recording(short_recording)
    assert rec.complete and rec.meta["command"] == "stream" and rec.t_s[-1] >= 2.0
    assert isinstance(rec.events[0], StepStarted) and rec.events[0].zone == "neck_back"
    assert main(["report", str(short_recording), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "analysis of the recording" and report["steps"][0]["label"]
    assert main(["stream", "sim://ball", "--record", str(short_recording)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_every_producer_writes_one_step_started_shape(neck_relief, short_recording, tmp_path):
    """The routine runner, ``vibrate`` and ``stream --record`` write step_started with one
    field set (dsp.events.StepStarted), whatever applies to them."""
    vibrate = tmp_path / "vibrate"
    args = ["vibrate", "sim://ball", "constant", "--duration", "1", "--speed", "10"]
    assert main([*args, "--record", str(vibrate)]) == 0
    shapes = {}
    for name, folder in (
        ("routine", neck_relief[0]),
        ("vibrate", vibrate),
        ("stream", short_recording),
    ):
        lines = (folder / "events.jsonl").read_text().splitlines()
        started = [e for e in map(json.loads, lines) if e["kind"] == "step_started"]
        assert started, name
        shapes[name] = {tuple(e["detail"]) for e in started}
    assert len(shapes["routine"]) == 1
    assert shapes["vibrate"] == shapes["stream"] == shapes["routine"]


async def test_replay_streams_the_recorded_forces_back(short_recording):
    rec = read_recording(short_recording)
    cal = Calibration(**rec.meta["calibration"])
    t_parts, raw_parts, force_parts, seqs = [], [], [], []
    async with DeviceSession(open_link(f"replay://{short_recording}?speed=max")) as session:
        assert session.link.kind == "replay" and session.info.model == rec.meta["device"]["model"]
        assert session.calibration.scale_counts_per_n == cal.scale_counts_per_n
        pipeline = ForcePipeline(session.rate_hz, session.calibration, get_zone(None))
        with pytest.raises(UsageError, match="no motor"):  # a replay has no motor
            await session.vibrate(30.0, 100)
        async for batch in session.batches():
            t_parts.append(batch.t_s)
            raw_parts.append(batch.raw_counts)
            force_parts.append(pipeline.on_batch(batch.t_s, batch.raw_counts, 0.0).force_n)
            seqs.append(batch.seq)
    assert np.array_equal(np.concatenate(raw_parts), rec.raw_counts)
    assert np.allclose(np.concatenate(t_parts), rec.t_s - rec.t_s[0], atol=2e-6)
    assert np.allclose(np.concatenate(force_parts), cal.to_newtons(rec.raw_counts))
    assert seqs == rec.seq[rec.batch_bounds()[:-1]].tolist()
    assert session.counters.missed_batches == 0


async def test_replay_in_real_time_is_paced_by_device_time(short_recording):
    rec = read_recording(short_recording)
    arrivals = []
    async with DeviceSession(open_link(f"replay://{short_recording}?speed=4")) as session:
        async for batch in session.batches():
            arrivals.append(batch.t_host_s)
    # never early: the last batch comes no sooner than its device time / speed after the first
    assert arrivals[-1] - arrivals[0] >= (rec.t_s[-1] - rec.t_s[9]) / 4 - 0.02


def test_stream_replay_url_from_the_command_line(short_recording, capsys):
    assert main(["stream", f"replay://{short_recording}?speed=max", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rec = read_recording(short_recording)
    first = json.loads(lines[0])
    assert len(lines) == rec.batch_bounds().size - 1
    assert np.allclose(first["force_n"], rec.force_n[:10], atol=1e-3)


@pytest.mark.parametrize("url", ["replay://x?speed=0", "replay://x?speed=fast", "replay://x?k=1"])
def test_bad_replay_urls(url):
    with pytest.raises(BadUrlError):
        open_link(url)


async def test_replay_of_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InputFileError, match="not a folder"):
        async with DeviceSession(open_link(f"replay://{tmp_path / 'nope'}")):
            pass


async def test_replay_of_a_recording_with_null_calibration_facts_uses_the_next_one(
    short_recording, tmp_path
):
    """A NaN written as null: `calibration` absent and the device's scale null read as the
    default instead of float(None) in the replay's handshake."""
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(short_recording, folder)
    meta = json.loads((folder / "session.json").read_text())
    meta["calibration"] = None
    meta["device"]["cal_scale_counts_per_n"] = None
    meta["device"]["cal_offset_counts"] = 7
    (folder / "session.json").write_text(json.dumps(meta))
    async with DeviceSession(open_link(f"replay://{folder}?speed=max")) as session:
        assert session.calibration.scale_counts_per_n == 1.0
        assert session.calibration.offset_counts == 7
