"""``plot --lsl`` (issue 17): the live window's controller feeds the LSL outlets with every
batch and every event it gets; an inlet reads back what its recording holds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from device.recording.folder import read_recording
from dsp.decisions import SafetyState
from tests.qt.conftest import SPEED
from tests.qt.test_live_window import until

lsl = pytest.importorskip("mne_lsl.lsl")


def test_the_window_publishes_what_it_records(drive, tmp_path):
    from device.recording.lsl import FORCE_STREAM, MARKER_STREAM, LslOutlets

    scenario = tmp_path / "over.toml"
    scenario.write_text(
        'name = "over"\npress = [\n  { t_s = 0.5, force_n = 12.0, ramp_s = 0.5 },\n'
        "  { t_s = 2.0, force_n = 0.0, ramp_s = 0.5 },\n]\n"
    )
    url = f"sim://ball?scenario={scenario}"
    source = f"massagectl-test:{tmp_path}"
    outlets = LslOutlets(rate_hz=1000, source_id=source, speed=SPEED)
    (force_info,) = lsl.resolve_streams(timeout=10, name=FORCE_STREAM, source_id=source)
    (marker_info,) = lsl.resolve_streams(timeout=10, name=MARKER_STREAM, source_id=source + "-ev")
    force_in = lsl.StreamInlet(force_info, max_buffered=60)
    marker_in = lsl.StreamInlet(marker_info)
    force_in.open_stream(timeout=10)
    marker_in.open_stream(timeout=10)
    assert outlets.wait_for_consumers(10)
    rows: list[np.ndarray] = []
    markers: list[str] = []

    def pull() -> None:
        chunk, ts = force_in.pull_chunk(timeout=0.0)
        if len(ts):
            rows.append(np.array(chunk, copy=True))
        mchunk, mts = marker_in.pull_chunk(timeout=0.0)
        markers.extend(row[0] for row in mchunk)

    async def body(window):
        c = window.controller
        c.lsl = outlets
        await c.connect(url)
        c.start_recording(tmp_path / "rec")
        await until(window, lambda: c.state.safety is SafetyState.STOPPED, "the stop")
        await until(window, lambda: c.state.t_s > 3.0, "3 s of data")
        c.stop_recording()
        c.lsl = None

    drive(body)
    for _ in range(20):
        pull()
    rec = read_recording(tmp_path / "rec")
    got = np.concatenate(rows)
    # the recording started after the connection: its samples are the tail of what LSL got
    n = rec.t_s.size
    start = int(
        np.argmin(np.abs(got[:, 0] - rec.force_n[0]) + np.abs(got[:, 1] - rec.filtered_n[0]))
    )
    assert got.shape[0] >= n
    assert np.abs(got[start : start + n, 0] - rec.force_n).max() <= 1e-6
    kinds = [json.loads(m)["kind"] for m in markers]
    causes = [json.loads(m)["cause"] for m in markers]
    assert "over_limit" in causes and "stop" in kinds
    recorded = [str(e.kind) for e in rec.events]
    assert kinds[-len(recorded) :] == recorded
