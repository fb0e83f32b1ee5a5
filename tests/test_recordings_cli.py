"""``--record`` without a folder records into the recordings folder; ``massagectl recordings``
lists what is there (date, routine, duration, stops)."""

from __future__ import annotations

import json

from device.config.known_devices import recordings_dir
from device.recording.folder import read_recording
from tests.test_routine_cli import ONE_SQUEEZE
from ui.cli import main


def test_record_alone_goes_to_the_recordings_folder_and_is_listed(tmp_path, capsys):
    assert main(["recordings"]) == 0
    assert f"no recordings in {recordings_dir()}" in capsys.readouterr().out
    routine = tmp_path / "one-squeeze.toml"
    routine.write_text(ONE_SQUEEZE)
    args = ["routine", str(routine), "--device", "sim://ball?user=scripted", "--speed", "10"]
    assert main([*args, "--record"]) == 0
    args = ["vibrate", "sim://ball", "constant", "--duration", "1", "--speed", "10"]
    assert main([*args, "--record"]) == 0
    capsys.readouterr()

    folders = sorted(p for p in recordings_dir().iterdir())
    assert [p.name.split("-", 2)[2] for p in folders] == ["one-squeeze", "vibrate-constant"]
    squeeze = read_recording(folders[0])
    assert squeeze.complete and squeeze.meta["routine"]["name"] == "one-squeeze"

    assert main(["recordings"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "one-squeeze" in line or "vibrate" in line]
    assert len(lines) == 2
    stops = sum(1 for e in squeeze.events if str(e.kind) in ("stop", "fault"))
    assert stops >= 1  # the scripted over-press
    cells = lines[0].split()
    assert cells[2] == "one-squeeze" and int(cells[-2]) == stops
    assert f"{round(squeeze.t_s[-1])} s" in lines[0] or "min" in lines[0]
    assert main(["recordings", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["routine"] for r in listed] == ["one-squeeze", None]
    assert listed[1]["command"] == "vibrate" and listed[1]["stops"] == 0
    assert abs(listed[0]["duration_s"] - float(squeeze.t_s[-1])) < 1e-6
    assert all(r["complete"] for r in listed)


def test_a_damaged_recording_is_listed_as_such(tmp_path, capsys):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "session.json").write_text("{not json")
    assert main(["recordings", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "old" in out and "damaged" in out and "not valid JSON" in out
