"""The report's picture: force against the zone limits over a whole recording, as a PNG.

Raw force thin and grey, filtered force bold and blue, each step's limit (red) and warning
level (amber, dashed) as steps over time, each step's target band shaded, each step's name at
its start, holds as green spans in a strip under the lowest force (so they never cover a
light press near the neck), pauses shaded grey, and stops and faults as red vertical lines
labelled with their cause inside the plot. Drawn with pyqtgraph
and written by its ImageExporter on Qt's offscreen platform (no window, no display needed).
Curves are decimated to one min/max pair per pixel column first (ui.plot_buffers): a
30-minute recording has ~2 M samples, far more than pixels.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from device.errors import InputFileError
from device.recording.folder import Recording
from dsp.analysis import HOLD
from dsp.events import EventKind
from dsp.session_summary import summarize_session
from ui.plot_buffers import decimate_peak

WIDTH_PX = 1600
HEIGHT_PX = 700


def _app():
    """The running QApplication, or a new one on the offscreen platform."""
    from PySide6 import QtWidgets

    app = QtWidgets.QApplication.instance()
    if app is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = QtWidgets.QApplication(["massagectl-report"])
    return app


def _steps_xy(steps: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal segments (NaN-separated) of ``key(step)`` over each step's time span."""
    xs: list[float] = []
    ys: list[float] = []
    for st in steps:
        y = st[key] if key != "warning_n" else 0.8 * st["limit_n"]
        xs += [st["start_s"], st["end_s"], np.nan]
        ys += [y, y, np.nan]
    return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)


def marks(rec: Recording) -> dict[str, list[tuple[float, float | None, str]]]:
    """What the picture labels, from the session summary of the recording's events:
    ``steps`` (start, end, name), ``pauses`` (start, end or None, "paused"), ``stops``
    (t, None, cause)."""
    summary = summarize_session(rec.events)
    return {
        "steps": [(st.started_t_s, st.ended_t_s, st.unit) for st in summary.steps],
        "pauses": [(p.start_s, p.end_s, "paused") for p in summary.pauses],
        "stops": [(n.t_s, None, str(n.cause or n.kind)) for n in summary.stops],
    }


def write_png(
    path: str | Path,
    rec: Recording,
    analysis: dict[str, Any],
    *,
    width_px: int = WIDTH_PX,
    height_px: int = HEIGHT_PX,
    title: str = "",
) -> Path:
    """Draw ``rec`` with ``analysis`` (device.routine.timeline.analyze_recording) into ``path``."""
    _app()
    import pyqtgraph as pg
    import pyqtgraph.exporters as exporters
    import shiboken6
    from PySide6 import QtCore, QtWidgets

    out = Path(path)
    widget = pg.PlotWidget(background="w")
    widget.resize(width_px, height_px)
    plot = widget.getPlotItem()
    for axis in ("left", "bottom"):
        plot.getAxis(axis).setPen(pg.mkPen("k"))
        plot.getAxis(axis).setTextPen(pg.mkPen("k"))
    plot.setLabel("bottom", "device time", units="s")
    plot.setLabel("left", "force", units="N")
    if title:
        plot.setTitle(title, color="k")
    plot.showGrid(x=True, y=True, alpha=0.2)
    legend = plot.addLegend(
        offset=(-10, -40), labelTextColor="k", brush=pg.mkBrush(255, 255, 255, 230)
    )

    steps = [s for s in analysis.get("steps", []) if s["end_s"] > s["start_s"]]
    events = analysis.get("events", [])
    has_force = rec.t_s.size > 0
    top = max([float(np.nanmax(rec.force_n)) if has_force else 1.0] + [s["limit_n"] for s in steps])
    low = min(0.0, float(np.nanmin(rec.force_n)) if has_force else 0.0)
    # holds go in a strip below the lowest force: never over a light press near the neck
    strip = 0.05 * (top - low)
    bottom = low - 1.6 * strip
    head = top * 1.35  # room above for the step names
    marked = marks(rec)

    def span(x0: float, x1: float, y0: float, y1: float, rgba: tuple, z: int) -> None:
        rect = QtWidgets.QGraphicsRectItem(QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))
        rect.setBrush(pg.mkBrush(*rgba))
        rect.setPen(pg.mkPen(None))
        rect.setZValue(z)
        plot.addItem(rect)

    for st in steps:  # the step's target band
        if st["band_n"] is not None:
            span(
                st["start_s"],
                st["end_s"],
                st["band_n"][0],
                st["band_n"][1],
                (80, 140, 255, 45),
                -20,
            )
    for e in events:  # holds: green spans in the strip under the forces
        if e["type"] == HOLD:
            span(e["start_s"], e["end_s"], bottom, bottom + strip, (40, 170, 80, 200), -15)
    end_s = float(rec.t_s[-1]) if has_force else 0.0
    for start, stop, _ in marked["pauses"]:  # pauses: grey over the whole height
        span(start, stop if stop is not None else end_s, bottom, head, (120, 120, 120, 70), -25)
        text = pg.TextItem("paused", color=(60, 60, 60), anchor=(0, 1))
        text.setPos(start, bottom + strip)
        plot.addItem(text)
    for start, _, name in marked["steps"]:  # step names, upright, at each step's start
        plot.addItem(pg.InfiniteLine(pos=start, angle=90, pen=pg.mkPen((170, 170, 170), width=1)))
        text = pg.TextItem(name, color=(40, 40, 40), anchor=(1, 0), angle=90)
        text.setPos(start, head)
        plot.addItem(text)
    if has_force:
        x, (raw,) = decimate_peak(rec.t_s, (rec.force_n,), 0, width_px)
        plot.plot(x, raw, pen=pg.mkPen((150, 150, 150), width=1), name="force (raw)")
        if not np.isnan(rec.filtered_n).all():
            xf, (fl,) = decimate_peak(rec.t_s, (rec.filtered_n,), 0, width_px)
            plot.plot(xf, fl, pen=pg.mkPen((20, 70, 200), width=3), name="force (filtered)")
    if steps:
        x, y = _steps_xy(steps, "limit_n")
        plot.plot(x, y, pen=pg.mkPen((210, 30, 30), width=2), connect="finite", name="limit")
        x, y = _steps_xy(steps, "warning_n")
        dash = pg.mkPen((230, 150, 0), width=1, style=QtCore.Qt.PenStyle.DashLine)
        plot.plot(x, y, pen=dash, connect="finite", name="warning (80 %)")
    x0 = float(rec.t_s[0]) if has_force else 0.0
    for e in events:
        if e["type"] in (EventKind.STOP, EventKind.FAULT):
            # the label sits inside the plot: left of lines in the right half
            right = e["t_s"] > x0 + 0.5 * (end_s - x0)
            anchor = (1, 0.5) if right else (0, 0.5)
            plot.addItem(
                pg.InfiniteLine(
                    pos=e["t_s"],
                    angle=90,
                    pen=pg.mkPen((220, 0, 0), width=2),
                    label=str(e.get("cause") or e["type"]),
                    labelOpts={
                        "position": 0.72,
                        "color": (170, 0, 0),
                        "fill": (255, 255, 255, 230),
                        "anchors": [anchor, anchor],
                    },
                )
            )
    legend.addItem(pg.PlotDataItem(pen=pg.mkPen((220, 0, 0), width=2)), "stop / fault (cause)")
    legend.addItem(
        pg.BarGraphItem(x=[0], height=[1], width=1, brush=pg.mkBrush(40, 170, 80, 110)), "hold"
    )
    legend.addItem(
        pg.BarGraphItem(x=[0], height=[1], width=1, brush=pg.mkBrush(120, 120, 120, 70)), "paused"
    )
    plot.setYRange(bottom, head, padding=0)
    if has_force:
        plot.setXRange(float(rec.t_s[0]), float(rec.t_s[-1]), padding=0.01)
    # An unshown widget keeps its default size: give the plot its geometry directly, so the
    # exporter (which keeps the item's aspect ratio) draws width_px x height_px.
    plot.setGeometry(QtCore.QRectF(0, 0, width_px, height_px))
    exporter = exporters.ImageExporter(plot)
    exporter.parameters()["width"] = width_px
    exporter.parameters()["background"] = pg.mkColor("w")
    try:
        ok = exporter.export(str(out))
    except OSError as exc:
        raise InputFileError(f"{out}: cannot write the PNG: {exc}") from exc
    finally:
        # destroyed now, while every Python part of it is whole: left to deleteLater (no
        # event loop runs here) or to garbage collection, Qt destroyed it later from the
        # collector, calling half-collected legend labels back (LabelItem.sizeHint)
        widget.close()
        shiboken6.delete(widget)
    if ok is False or not out.is_file():
        raise InputFileError(f"{out}: cannot write the PNG (check the folder exists)")
    return out
