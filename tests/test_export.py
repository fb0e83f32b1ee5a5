"""``massagectl export`` (issue 17): a recording as EDF+ read back by pyedflib and by MNE's
EDF reader, and as CSV. EDF stores 16-bit integers: every sample read back is within one
digital step (the signal's physical range / 65535, about 0.2 mN for a 0-12 N recording) of
the recorded value; annotation onsets within edflib's 0.1 ms."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest

from device.recording.export import EDF_ANNOTATION_CHARS, event_label
from device.recording.folder import read_recording
from ui.cli import main
from ui.event_words import describe_event

pyedflib = pytest.importorskip("pyedflib")

OVER = """
name = "over"
press = [
  { t_s = 0.5, force_n = 12.0, ramp_s = 0.3 },
  { t_s = 1.5, force_n = 0.0, ramp_s = 0.3 },
]
"""


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A stream that presses over the neck's limit: a warning, a stop over_limit, commands."""
    folder = tmp_path_factory.mktemp("export")
    scenario = folder / "over.toml"
    scenario.write_text(OVER)
    rec = folder / "rec"
    url = f"sim://ball?speed=10&scenario={scenario}"
    assert main(["stream", url, "--duration", "2.5", "--record", str(rec)]) == 0
    return rec


def _expected_annotations(rec):
    t0 = rec.t_s[0]
    events = sorted(rec.events, key=lambda e: e.t_s)
    return [(e.t_s - t0, event_label(e, describe_event)[:EDF_ANNOTATION_CHARS]) for e in events]


def test_edf_reads_back_in_pyedflib_samples_and_annotations(recording, tmp_path, capsys):
    out = tmp_path / "s.edf"
    assert main(["export", str(recording), "--to", "edf", "-o", str(out)]) == 0
    assert "annotations" in capsys.readouterr().out
    rec = read_recording(recording)
    n = rec.t_s.size
    assert n >= 2400
    reader = pyedflib.EdfReader(str(out))
    try:
        assert reader.signals_in_file == 2
        assert reader.getLabel(0) == "force_raw" and reader.getLabel(1) == "force_filtered"
        assert reader.getPhysicalDimension(0) == "N" == reader.getPhysicalDimension(1)
        assert reader.getSampleFrequency(0) == rec.rate_hz
        for ch, recorded in ((0, rec.force_n), (1, rec.filtered_n)):
            step_n = (reader.getPhysicalMaximum(ch) - reader.getPhysicalMinimum(ch)) / 65535
            assert step_n < 0.001
            back = reader.readSignal(ch)
            assert back.size >= n and back.size - n < rec.rate_hz  # the last record completed
            err = np.abs(back[:n] - recorded)
            assert err.max() <= step_n * 1.001, (ch, err.max(), step_n)
            assert np.allclose(back[n:], recorded[-1], atol=step_n * 1.001)
        onsets, _durations, texts = reader.readAnnotations()
    finally:
        reader.close()
    expected = _expected_annotations(rec)
    assert list(texts) == [text for _, text in expected]
    assert np.allclose(onsets, [t for t, _ in expected], atol=1e-4)
    assert any(t.startswith("stop over_limit: ") for t in texts), texts
    assert any(t.startswith("warning: ") for t in texts)


def test_edf_reads_back_in_mne(recording, tmp_path):
    mne = pytest.importorskip("mne")
    out = tmp_path / "s.edf"
    assert main(["export", str(recording), "--to", "edf", "-o", str(out)]) == 0
    rec = read_recording(recording)
    raw = mne.io.read_raw_edf(out, preload=True, verbose="error")
    assert raw.ch_names == ["force_raw", "force_filtered"]
    assert raw.info["sfreq"] == rec.rate_hz
    data = raw.get_data()
    n = rec.t_s.size
    header = pyedflib.EdfReader(str(out))
    try:
        step_n = (header.getPhysicalMaximum(0) - header.getPhysicalMinimum(0)) / 65535
    finally:
        header.close()
    assert np.abs(data[0, :n] - rec.force_n).max() <= step_n * 1.001
    expected = _expected_annotations(rec)
    assert list(raw.annotations.description) == [text for _, text in expected]
    assert np.allclose(raw.annotations.onset, [t for t, _ in expected], atol=1e-4)


def test_csv_has_every_sample_and_every_event(recording, tmp_path, capsys):
    out = tmp_path / "x-samples.csv"
    assert main(["export", str(recording), "--to", "csv", "-o", str(out)]) == 0
    capsys.readouterr()
    rec = read_recording(recording)
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == rec.t_s.size
    assert [float(r["force_n"]) for r in rows] == rec.force_n.tolist()
    assert [float(r["t_s"]) for r in rows] == rec.t_s.tolist()
    assert [int(r["raw_counts"]) for r in rows] == rec.raw_counts.tolist()
    with open(tmp_path / "x-events.csv", newline="") as f:
        events = list(csv.DictReader(f))
    assert [(e["kind"], e["cause"]) for e in events] == [
        (str(e.kind), "" if getattr(e, "cause", None) is None else str(e.cause)) for e in rec.events
    ]
    stop = next(e for e in events if e["kind"] == "stop")
    assert stop["text"].startswith("stop over_limit: ") and len(stop["text"]) > 40
    assert json.loads(stop["detail"])["limit_n"] == 10.0


def test_default_outputs_sit_beside_the_folder(recording, tmp_path, capsys):
    import shutil

    copy = tmp_path / "session1"
    shutil.copytree(recording, copy)
    assert main(["export", str(copy), "--to", "csv"]) == 0
    assert main(["export", str(copy), "--to", "edf"]) == 0
    capsys.readouterr()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["session1", "session1-events.csv", "session1-samples.csv", "session1.edf"]


def test_edf_without_pyedflib_names_the_extra(recording, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyedflib", None)  # import fails as if not installed
    assert main(["export", str(recording), "--to", "edf", "-o", str(tmp_path / "x.edf")]) == 2
    err = capsys.readouterr().err
    assert "massagectl[edf]" in err and "Traceback" not in err
    assert not (tmp_path / "x.edf").exists()


def test_export_of_a_folder_that_is_not_a_recording_is_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--to", "csv"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
