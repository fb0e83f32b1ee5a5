"""``report --png``: step names, stop labels inside the picture, pauses marked, and holds in
a strip of their own that never covers a light press."""

from __future__ import annotations

import asyncio
import os

import numpy as np

from device.links import open_link
from device.recording.folder import Recorder, read_recording, session_meta
from device.routine.routines import parse_routine
from device.routine.runner import RoutineRunner
from device.session.device_session import DeviceSession
from dsp.events import HoldStarted
from dsp.pipeline import ForcePipeline
from dsp.zones import get_zone
from tests.test_routine_cli import ONE_SQUEEZE
from tests.virtual_time import run_virtual
from ui.cli import main
from ui.report_plot import marks

TWO_STEPS = (
    ONE_SQUEEZE.replace('name = "one-squeeze"', 'name = "two-steps"')
    + """
[[steps]]
id = "warmth"
kind = "aftercare"
title = "Warmth"
instruction = "A warm shower helps."
duration_s = 2
"""
)


async def _record_with_a_pause(folder) -> None:
    routine = parse_routine(TWO_STEPS)
    link = open_link("sim://ball?user=scripted", speed=25.0)
    async with DeviceSession(link) as session:
        pipeline = ForcePipeline(session.rate_hz, session.calibration, get_zone(None))
        runner = RoutineRunner(session, routine, pipeline, unattended=True)
        rec = Recorder.create(folder, session_meta(session, routine=routine))
        runner.add_listener(rec.on_event)
        runner.add_batch_listener(rec.on_batch)
        holding = asyncio.Event()
        runner.add_listener(lambda e: isinstance(e, HoldStarted) and holding.set())
        task = asyncio.ensure_future(runner.run())
        try:
            await holding.wait()
            runner.pause()
            paused_at = runner.state.t_s
            while runner.state.t_s < paused_at + 3.0:
                runner.live.changed.clear()
                await runner.live.changed.wait()
            runner.resume()
            await task
        finally:
            rec.finish(runner.summary.to_dict())


def test_the_report_picture_names_steps_marks_pauses_and_stops(tmp_path, qapp):
    from PySide6.QtGui import QImage

    folder = tmp_path / "rec"
    run_virtual(_record_with_a_pause(folder))
    rec = read_recording(folder)
    m = marks(rec)
    assert [name for _, _, name in m["steps"]] == ["neck", "warmth"]
    assert len(m["pauses"]) == 1 and m["pauses"][0][1] is not None
    assert "over_limit" in [cause for _, _, cause in m["stops"]]  # the scripted over-press
    png = tmp_path / "session.png"
    assert main(["report", str(folder), "--png", str(png)]) == 0
    if os.environ.get("MASSAGECTL_SHOTS"):
        png.replace(os.path.join(os.environ["MASSAGECTL_SHOTS"], "report.png"))
        png = tmp_path / "again.png"
        assert main(["report", str(folder), "--png", str(png)]) == 0
    image = QImage(str(png)).convertToFormat(QImage.Format.Format_RGB32)
    h, w = image.height(), image.width()
    bgra = np.frombuffer(image.constBits(), np.uint8).reshape(h, image.bytesPerLine() // 4, 4)
    b, g, r = (bgra[:, :w, i].astype(int) for i in range(3))
    hold_green = (g > 140) & (r < 150) & (b < 160) & (g - r > 40)
    grey_pause = (abs(r - g) < 8) & (abs(g - b) < 8) & (r > 170) & (r < 235)
    rows = np.flatnonzero(hold_green[:, : int(0.8 * w)].any(axis=1))  # not the legend
    assert rows.size, "no hold drawn"
    # the hold strip is a band a few percent of the height, at the very bottom of the plot
    assert rows.max() - rows.min() < 0.08 * h and rows.min() > 0.7 * h
    assert grey_pause.sum() > 2000  # the paused span
    # the plot is gone once written: a widget left for later (deleteLater with no event
    # loop to run it) was destroyed by whatever test's garbage collection met it, calling
    # its half-collected legend labels (pyqtgraph LabelItem.sizeHint: AttributeError)
    import pyqtgraph as pg

    assert not [w for w in qapp.allWidgets() if isinstance(w, pg.PlotWidget)]
