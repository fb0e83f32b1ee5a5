"""The live pressure window (PySide6 + pyqtgraph, asyncio through qasync).

What it shows: a rolling window (10 s by default) of raw force (thin) and filtered force
(bold) with the zone's limit line and warning band (and a routine step's target band), a
large force readout with a colour band readable across a room, hold progress with the time
left, the step's instruction, the vibration level, and status (link kind, battery, sample
rate, gaps, CRC errors, latency). Over-limit and faults turn the plot and the banner red with
the cause in words; a warning turns them amber.

Controls: connect (a URL, or scan and pick), tare, zone, vibration pattern and level (capped
by the zone; a real device needs the screening first), start/end a routine, re-arm, a
symptom button, PNG export, recording, and a large STOP (Space and Esc) that sends Stop at
once.

The data path keeps the window light: ``LiveController`` appends every batch to numpy ring
buffers as it arrives; a Qt timer redraws at most ``fps`` times a second (<= 60), whatever
the sample rate, with the data decimated to one min/max pair per pixel column and 1-2 px
pens (pyqtgraph's peak downsampling and clip-to-view stay on as a second line). The safety
supervisor never runs on that timer: it runs in the controller's asyncio tasks.

``run_window`` is the one blocking entry point for commands (``massagectl plot``,
``massagectl demo --gui``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import shiboken6
from PySide6 import QtCore, QtGui, QtWidgets

from device.control.vibration import PATTERNS
from device.errors import MassagectlError
from device.routine.progress import format_duration
from device.routine.routines import builtin_names, load_routine
from device.screening.gate import ScreeningResult
from dsp.events import Event, HoldReachedMin, HoldStarted
from dsp.pipeline import describe_rate
from dsp.session_summary import SessionSummary
from dsp.zones import Zone
from ui.battery import battery_text
from ui.event_words import describe_event
from ui.live_controller import AlarmLevel, LiveController
from ui.plot_buffers import decimate_peak

#: Redraw rate limits (frames per second): never faster than a display refreshes.
MAX_FPS = 60
DEFAULT_FPS = 30
DEFAULT_WINDOW_S = 10.0
MIN_WINDOW_S = 2.0

COLOURS = {
    AlarmLevel.OK: "#ffffff",
    AlarmLevel.WARNING: "#ffe2a8",
    AlarmLevel.ALARM: "#ffc4c4",
}
BANNER_COLOURS = {
    AlarmLevel.OK: ("#e8f3e8", "#1d4d1d"),
    AlarmLevel.WARNING: ("#f5b041", "#3d2600"),
    AlarmLevel.ALARM: ("#c0392b", "#ffffff"),
}
#: Force readout colour band: under the warning line, in it, at or over the limit; no device.
READOUT_COLOURS = {"ok": "#2e8b57", "warning": "#e69500", "over": "#c0392b", "none": "#8a8a8a"}
#: The banner with no device connected: neither all clear nor an alarm.
NO_DEVICE_COLOURS = ("#dcdcdc", "#333333")
PAUSED_STYLE = "QLabel#prompt { background: #7fd3e6; color: #0b2b33; font-weight: bold; }"
RAW_PEN = pg.mkPen("#7f9fbf", width=1)
FILTERED_PEN = pg.mkPen("#0b3d91", width=2)
LIMIT_PEN = pg.mkPen("#c0392b", width=2, style=QtCore.Qt.PenStyle.DashLine)
GRID_PEN = pg.mkPen("#dddddd", width=1)


def nice_step(span: float, lines: int = 6) -> float:
    """A round grid step (1, 2 or 5 times a power of ten) giving about ``lines`` lines."""
    raw = max(span, 1e-9) / lines
    power = 10 ** np.floor(np.log10(raw))
    for m in (1, 2, 5, 10):
        if m * power >= raw:
            return float(m * power)
    return float(10 * power)


def grid_segments(x_span: float, y_lo: float, y_hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Line pairs (for ``connect="pairs"``) of a grid over x in [-x_span, 0], y in
    [y_lo, y_hi]: vertical lines at round seconds back from now, horizontal at round
    newtons."""
    xs = -np.arange(0.0, x_span + 1e-9, nice_step(x_span, 10))
    dy = nice_step(y_hi - y_lo)
    ys = np.arange(np.ceil(y_lo / dy) * dy, y_hi + 1e-9, dy)
    x = np.concatenate([np.repeat(xs, 2), np.tile([-x_span, 0.0], len(ys))])
    y = np.concatenate([np.tile([y_lo, y_hi], len(xs)), np.repeat(ys, 2)])
    return x, y


def recorder_available() -> bool:
    """True when ``device.recording.folder`` exists (another issue is writing it)."""
    return importlib.util.find_spec("device.recording.folder") is not None


def _progress_row(
    into: QtWidgets.QBoxLayout, name: str, height_px: int, label_width_px: int
) -> tuple[QtWidgets.QProgressBar, QtWidgets.QLabel]:
    """A named row of a progress bar (0-1000) and a text beside it, added to ``into``."""
    row = QtWidgets.QHBoxLayout()
    bar = QtWidgets.QProgressBar()
    bar.setRange(0, 1000)
    bar.setTextVisible(False)
    bar.setFixedHeight(height_px)
    label = QtWidgets.QLabel("")
    label.setMinimumWidth(label_width_px)
    row.addWidget(QtWidgets.QLabel(name))
    row.addWidget(bar, stretch=1)
    row.addWidget(label)
    into.addLayout(row)
    return bar, label


class LiveWindow(QtWidgets.QMainWindow):
    """The window; it owns a ``LiveController`` and reads it on a redraw timer."""

    def __init__(
        self,
        controller: LiveController | None = None,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        fps: int = DEFAULT_FPS,
    ) -> None:
        super().__init__()
        self.controller = controller or LiveController()
        self.window_s = float(window_s)
        self.fps = max(1, min(int(fps), MAX_FPS))
        self.frames = 0
        self._level = AlarmLevel.OK
        self._texts: dict[str, str] = {}
        self._y_top_n = 0.0
        self._closed_future: asyncio.Future | None = None
        self._close_task: asyncio.Task | None = None
        #: the last routine's summary, shown in its own window when the routine ends
        self.summary_dialog: QtWidgets.QDialog | None = None
        self._summary_shown_for: object | None = None
        self.setWindowTitle("massagectl: live pressure")
        self._build()
        self._timer = QtCore.QTimer(self)
        self._timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self.redraw)
        self._timer.start(round(1000 / self.fps))

    # ---- layout ----------------------------------------------------------------------------

    def _build(self) -> None:
        central = QtWidgets.QWidget()
        self.setCentralWidget(central)
        outer = QtWidgets.QHBoxLayout(central)

        left = QtWidgets.QVBoxLayout()
        outer.addLayout(left, stretch=1)
        self.banner = QtWidgets.QLabel("")
        self.banner.setObjectName("banner")
        font = self.banner.font()
        font.setPointSize(16)
        font.setBold(True)
        self.banner.setFont(font)
        self.banner.setMinimumHeight(40)
        self.banner.setContentsMargins(8, 4, 8, 4)
        left.addWidget(self.banner)

        self.plot = pg.PlotWidget(background="w")
        item = self.plot.getPlotItem()
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
        item.setMenuEnabled(False)
        item.hideButtons()
        # pyqtgraph's own grid costs ~8 ms a frame here (the axes repaint it): one static
        # curve of line pairs draws the same grid for a few microseconds.
        self.grid = pg.PlotCurveItem(pen=GRID_PEN, connect="pairs")
        self.grid.setZValue(-30)
        item.addItem(self.grid)
        item.setLabel("bottom", "time (s, 0 = now)")
        item.setLabel("left", "force (N)")
        item.addLegend(offset=(10, 10), brush=pg.mkBrush(255, 255, 255, 220))
        self.plot.setMouseEnabled(x=False, y=False)
        self.view = item.getViewBox()
        self.band_region = pg.LinearRegionItem(
            orientation="horizontal", movable=False, brush=pg.mkBrush(46, 139, 87, 50)
        )
        self.band_region.setZValue(-20)
        self.band_region.hide()
        self.warning_region = pg.LinearRegionItem(
            orientation="horizontal", movable=False, brush=pg.mkBrush(230, 149, 0, 60)
        )
        self.warning_region.setZValue(-10)
        for region in (self.band_region, self.warning_region):
            for line in region.lines:
                line.setPen(pg.mkPen(None))
            item.addItem(region)
        self.limit_line = pg.InfiniteLine(angle=0, pen=LIMIT_PEN, movable=False)
        item.addItem(self.limit_line)
        self.raw_curve = item.plot(pen=RAW_PEN, name="raw force")
        self.filtered_curve = item.plot(pen=FILTERED_PEN, name="filtered force")
        for curve in (self.raw_curve, self.filtered_curve):
            curve.setSkipFiniteCheck(True)
        item.setXRange(-self.window_s, 0.0, padding=0)
        left.addWidget(self.plot, stretch=1)

        self.step_label = QtWidgets.QLabel("No routine running.")
        f = self.step_label.font()
        f.setPointSize(12)
        f.setBold(True)
        self.step_label.setFont(f)
        left.addWidget(self.step_label)
        self.routine_bar, self.routine_progress = _progress_row(left, "routine", 14, 300)
        self.instruction = QtWidgets.QLabel("")
        self.instruction.setWordWrap(True)
        f = self.instruction.font()
        f.setPointSize(11)
        self.instruction.setFont(f)
        self.instruction.setMinimumHeight(48)
        self.instruction.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop)
        left.addWidget(self.instruction)
        self.prompt = QtWidgets.QLabel("")
        self.prompt.setObjectName("prompt")
        self.prompt.setWordWrap(True)
        f = self.prompt.font()
        f.setPointSize(12)
        f.setItalic(True)
        self.prompt.setFont(f)
        left.addWidget(self.prompt)
        self.hold_bar, self.hold_label = _progress_row(left, "hold", 18, 260)

        side = QtWidgets.QVBoxLayout()
        panel = QtWidgets.QWidget()
        panel.setLayout(side)
        panel.setFixedWidth(330)
        outer.addWidget(panel)

        self.readout = QtWidgets.QLabel("-- N")
        self.readout.setObjectName("readout")
        self.readout.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        f = self.readout.font()
        f.setPointSize(44)
        f.setBold(True)
        self.readout.setFont(f)
        self.readout.setMinimumHeight(110)
        side.addWidget(self.readout)
        self.zone_label = QtWidgets.QLabel("")
        self.zone_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        side.addWidget(self.zone_label)

        self.stop_button = QtWidgets.QPushButton("STOP\n(Space / Esc)")
        self.stop_button.setObjectName("stop")
        self.stop_button.setMinimumHeight(90)
        f = self.stop_button.font()
        f.setPointSize(22)
        f.setBold(True)
        self.stop_button.setFont(f)
        self.stop_button.setStyleSheet(
            "QPushButton#stop { background: #c0392b; color: white; border-radius: 8px; }"
            "QPushButton#stop:pressed { background: #8e2a20; }"
        )
        self.stop_button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.stop_button.clicked.connect(self.on_stop)
        side.addWidget(self.stop_button)
        for key in (QtCore.Qt.Key.Key_Space, QtCore.Qt.Key.Key_Escape):
            shortcut = QtGui.QShortcut(QtGui.QKeySequence(key), self)
            shortcut.setContext(QtCore.Qt.ShortcutContext.ApplicationShortcut)
            shortcut.activated.connect(self.on_stop)

        row = QtWidgets.QHBoxLayout()
        self.rearm_button = QtWidgets.QPushButton("Re-arm (R)")
        self.rearm_button.setToolTip("Go on after a stop, once force has eased off for 1 s")
        self.rearm_button.clicked.connect(self.on_rearm)
        QtGui.QShortcut(QtGui.QKeySequence("R"), self, activated=self.on_rearm)
        self.symptom_button = QtWidgets.QPushButton("Pain / dizzy / tingling")
        self.symptom_button.setToolTip("Ends the session at once and records the symptom")
        self.symptom_button.clicked.connect(self.controller.report_symptom)
        row.addWidget(self.rearm_button)
        row.addWidget(self.symptom_button)
        side.addLayout(row)

        form = QtWidgets.QFormLayout()
        side.addLayout(form)
        self.zone_combo = QtWidgets.QComboBox()
        for name, zone in self.controller.zones.items():
            self.zone_combo.addItem(f"{name} ({zone.limit_n:g} N)", name)
        self.zone_combo.setCurrentIndex(self.zone_combo.findData(self.controller.zone.name))
        self.zone_combo.currentIndexChanged.connect(self.on_zone)
        form.addRow("zone", self.zone_combo)

        self.pattern_combo = QtWidgets.QComboBox()
        self.pattern_combo.addItems(list(PATTERNS))
        self.pattern_combo.currentIndexChanged.connect(self.on_vibration)
        form.addRow("pattern", self.pattern_combo)
        vib_row = QtWidgets.QHBoxLayout()
        self.vibration_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.vibration_slider.setRange(0, 100)
        self.vibration_slider.valueChanged.connect(self.on_vibration)
        self.vibration_label = QtWidgets.QLabel("0 %")
        self.vibration_label.setMinimumWidth(90)
        vib_row.addWidget(self.vibration_slider, stretch=1)
        vib_row.addWidget(self.vibration_label)
        form.addRow("vibration", vib_row)
        self.screening_button = QtWidgets.QPushButton("Screening questions...")
        self.screening_button.clicked.connect(self.on_screening)
        form.addRow("", self.screening_button)

        self.routine_combo = QtWidgets.QComboBox()
        self.routine_combo.addItems(builtin_names())
        self.routine_button = QtWidgets.QPushButton("Start routine")
        self.routine_button.clicked.connect(self.on_routine)
        self.pause_button = QtWidgets.QPushButton("Pause")
        self.pause_button.setToolTip("Pause: vibration stops at once; Resume starts the step over")
        self.pause_button.clicked.connect(self.on_pause)
        form.addRow("routine", self.routine_combo)
        routine_row = QtWidgets.QHBoxLayout()
        routine_row.addWidget(self.routine_button, stretch=1)
        routine_row.addWidget(self.pause_button, stretch=1)
        form.addRow("", routine_row)

        self.window_spin = QtWidgets.QDoubleSpinBox()
        self.window_spin.setRange(MIN_WINDOW_S, self.controller.ring.capacity / 1000.0 / 1.05)
        self.window_spin.setDecimals(0)
        self.window_spin.setSuffix(" s")
        self.window_spin.setValue(self.window_s)
        self.window_spin.valueChanged.connect(self.set_window_s)
        form.addRow("window", self.window_spin)

        grid = QtWidgets.QGridLayout()
        side.addLayout(grid)
        self.connect_button = QtWidgets.QPushButton("Connect...")
        self.connect_button.clicked.connect(self.on_connect_dialog)
        self.tare_button = QtWidgets.QPushButton("Tare")
        self.tare_button.setToolTip("Zero the sensor with nothing pressing on it")
        self.tare_button.clicked.connect(self.controller.tare)
        self.png_button = QtWidgets.QPushButton("Save PNG...")
        self.png_button.clicked.connect(self.on_save_png)
        self.record_button = QtWidgets.QPushButton("Record...")
        self.record_button.setToolTip(
            "Record samples and events into a new folder (samples.csv, events.jsonl, session.json)"
        )
        self.record_button.clicked.connect(self.on_record)
        if not recorder_available():
            self.record_button.setEnabled(False)
            self.record_button.setToolTip("Recording is not available in this installation")
        grid.addWidget(self.connect_button, 0, 0)
        grid.addWidget(self.tare_button, 0, 1)
        grid.addWidget(self.png_button, 1, 0)
        grid.addWidget(self.record_button, 1, 1)

        self.events_list = QtWidgets.QListWidget()
        self.events_list.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        # long step names wrap instead of being cut off at the panel's edge
        self.events_list.setWordWrap(True)
        self.events_list.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.events_list.setResizeMode(QtWidgets.QListView.ResizeMode.Adjust)
        side.addWidget(QtWidgets.QLabel("events"))
        side.addWidget(self.events_list, stretch=1)
        self.controller.on_event = self._add_event

        self.status = QtWidgets.QLabel("not connected")
        self.statusBar().addPermanentWidget(self.status, 1)
        for w in (self.zone_combo, self.pattern_combo, self.routine_combo, self.window_spin):
            w.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        self.resize(1280, 760)

    # ---- controls --------------------------------------------------------------------------

    @QtCore.Slot()
    def on_stop(self) -> None:
        """STOP: Stop goes out at once; the slider returns to zero."""
        self.controller.stop_now()
        self.vibration_slider.blockSignals(True)
        self.vibration_slider.setValue(0)
        self.vibration_slider.blockSignals(False)

    @QtCore.Slot()
    def on_rearm(self) -> None:
        if not self.controller.rearm():
            self._flash("Not yet: ease off (under 70 % of the limit for 1 s), then re-arm.")

    @QtCore.Slot()
    def on_zone(self) -> None:
        self.controller.set_zone(self.zone_combo.currentData())

    @QtCore.Slot()
    def on_vibration(self) -> None:
        pct = float(self.vibration_slider.value())
        try:
            self.controller.set_vibration(self.pattern_combo.currentText(), pct)
        except MassagectlError as exc:
            self.vibration_slider.blockSignals(True)
            self.vibration_slider.setValue(0)
            self.vibration_slider.blockSignals(False)
            self._flash(str(exc))

    @QtCore.Slot()
    def on_routine(self) -> None:
        c = self.controller
        if c.routine_running:
            c.end_routine()
            return
        try:
            c.start_routine(load_routine(self.routine_combo.currentText(), zones=c.zones))
        except MassagectlError as exc:
            self._flash(str(exc))

    @QtCore.Slot()
    def on_pause(self) -> None:
        self.controller.toggle_pause()

    @QtCore.Slot()
    def on_screening(self) -> None:
        from ui.screening_dialog import ScreeningDialog

        dialog = ScreeningDialog(self)
        dialog.finished.connect(lambda _code: self._screened(dialog.result_value))
        dialog.open()

    def _screened(self, result: ScreeningResult | None) -> None:
        if result is None:
            return
        if result.passed:
            self.controller.screening = result
            self._flash("Screening passed: vibration controls are on.")
        else:
            self._flash(result.summary())

    @QtCore.Slot()
    def on_connect_dialog(self) -> None:
        from ui.connect_dialog import ConnectDialog

        dialog = ConnectDialog(self)
        dialog.url_chosen.connect(self.connect_to)
        dialog.open()

    def connect_to(self, url: str) -> asyncio.Task:
        """Connect to ``url`` (a task; failures show in the banner)."""
        self.status.setText(f"connecting to {url} ...")
        return self.controller._spawn(self.controller.connect(url), "connect")

    @QtCore.Slot()
    def on_record(self) -> None:
        c = self.controller
        if c.recorder is not None:
            folder = c.recorder.folder
            c.stop_recording()
            self._flash(f"Recording saved in {folder}")
            return
        parent = QtWidgets.QFileDialog.getExistingDirectory(
            self, "Where to put the recording folder", str(Path.cwd())
        )
        if not parent:
            return
        folder = Path(parent) / time.strftime("massagectl-%Y%m%d-%H%M%S")
        try:
            c.start_recording(folder)
        except MassagectlError as exc:
            self._flash(str(exc))
        else:
            self._flash(f"Recording into {folder}")

    @QtCore.Slot()
    def on_save_png(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Save the window as PNG", "massagectl-live.png", "PNG images (*.png)"
        )
        if path:
            self.save_png(path)

    def save_png(self, path: str | Path) -> Path:
        """Save what the window shows now as a PNG; returns the path."""
        path = Path(path)
        if not self.grab().save(str(path), "PNG"):
            raise MassagectlError(f"could not write {path}")
        return path

    def set_window_s(self, window_s: float) -> None:
        """Show the last ``window_s`` seconds."""
        self.window_s = float(window_s)
        self.plot.getPlotItem().setXRange(-self.window_s, 0.0, padding=0)
        self._y_top_n = 0.0  # the grid is redrawn with the next frame

    def _flash(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def _add_event(self, event: Event) -> None:
        if isinstance(event, HoldStarted | HoldReachedMin):
            return
        text = f"{event.t_s:6.1f} s  {describe_event(event, self.controller.routine_titles())}"
        self.events_list.insertItem(0, text)
        self.events_list.item(0).setToolTip(text)
        while self.events_list.count() > 40:
            self.events_list.takeItem(self.events_list.count() - 1)

    def show_summary(self, summary: SessionSummary, title: str) -> QtWidgets.QDialog:
        """The session's summary (dsp.session_summary) in a window of its own: per step its
        state, holds, time in band, peak and stops."""
        if self.summary_dialog is not None:
            self.summary_dialog.close()
        dialog = QtWidgets.QDialog(self)
        dialog.setWindowTitle(f"Session summary: {title}")
        layout = QtWidgets.QVBoxLayout(dialog)
        head = QtWidgets.QLabel(
            f"{title}. {summary.steps_completed} of {len(summary.steps)} steps completed, "
            f"{len(summary.stops)} stop(s), {len(summary.pauses)} pause(s)."
        )
        head.setWordWrap(True)
        layout.addWidget(head)
        columns = ("step", "zone", "state", "holds (s)", "in band (s)", "peak (N)", "stops")
        table = QtWidgets.QTableWidget(len(summary.steps), len(columns))
        table.setObjectName("summary")
        table.setHorizontalHeaderLabels(columns)
        table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        titles = self.controller.routine_titles()
        for row, st in enumerate(summary.steps):
            name = titles.get(st.step, st.step)
            rest = st.unit[len(st.step) :].strip()
            state = st.state + (f", {st.restarts} restart(s)" if st.restarts else "")
            state += f", paused {st.pauses}x" if st.pauses else ""
            cells = (
                f"{name} ({rest})" if rest else name,
                st.zone,
                state,
                ", ".join(f"{h:.1f}" for h in st.holds_s) or "-",
                "-" if st.time_in_band_s is None else f"{st.time_in_band_s:.1f}",
                "-" if st.peak_n is None else f"{st.peak_n:.1f}",
                "; ".join(n.words for n in st.stops) or "-",
            )
            for col, text in enumerate(cells):
                table.setItem(row, col, QtWidgets.QTableWidgetItem(text))
        table.resizeColumnsToContents()
        layout.addWidget(table)
        dialog.resize(min(1200, table.horizontalHeader().length() + 60), 520)
        self.summary_dialog = dialog
        dialog.show()
        return dialog

    # ---- drawing ---------------------------------------------------------------------------

    def _set_text(self, label: QtWidgets.QLabel, key: str, text: str) -> None:
        if self._texts.get(key) != text:
            self._texts[key] = text
            label.setText(text)

    @QtCore.Slot()
    def redraw(self) -> None:
        """One frame: curves from the ring (decimated to the screen), lines, readout,
        alarm colours, step and status. Reads only; never decides anything."""
        c = self.controller
        st = c.state
        zone = c.current_zone
        self.frames += 1
        t, raw, filtered, first = c.ring.since(st.t_s - self.window_s)
        if len(t):
            bins = max(64, int(self.view.width()) or 800)
            x, (raw_d, filt_d) = decimate_peak(t, (raw, filtered), first, bins)
            x = x - t[-1]
            self.raw_curve.setData(x, raw_d)
            self.filtered_curve.setData(x, filt_d)
            peak = float(max(raw_d.max(), filt_d.max()))
        else:
            self.raw_curve.setData([], [])
            self.filtered_curve.setData([], [])
            peak = 0.0
        top = max(zone.limit_n * 1.3, peak * 1.1, 1.0)
        if abs(top - self._y_top_n) > 0.05 * self._y_top_n:
            self._y_top_n = top
            self.plot.getPlotItem().setYRange(-0.05 * top, top, padding=0)
            self.grid.setData(*grid_segments(self.window_s, -0.05 * top, top))
        self.limit_line.setValue(zone.limit_n)
        self.warning_region.setRegion((zone.warning_n, zone.limit_n))
        unit = st.unit if c.routine_running else None
        band = getattr(unit, "band_n", None)
        if band:
            self.band_region.setRegion(band)
            self.band_region.show()
        else:
            self.band_region.hide()

        alarm = c.alarm()
        # nothing connected (and nothing wrong): say so, neither green nor red
        no_device = not c.connected and alarm.level == AlarmLevel.OK
        level = "none" if no_device else alarm.level
        if level != self._level:
            self._level = level
            self.view.setBackgroundColor(COLOURS[AlarmLevel.OK if no_device else alarm.level])
            bg, fg = NO_DEVICE_COLOURS if no_device else BANNER_COLOURS[alarm.level]
            self.banner.setStyleSheet(f"QLabel#banner {{ background: {bg}; color: {fg}; }}")
        banner = "No device connected: use Connect..." if no_device else alarm.text or "All clear"
        self._set_text(self.banner, "banner", banner)

        f = st.filtered_n
        if no_device:
            band_key = "none"
        else:
            band_key = "over" if f >= zone.limit_n else "warning" if f >= zone.warning_n else "ok"
        if self._texts.get("readout_band") != band_key:
            self._texts["readout_band"] = band_key
            self.readout.setStyleSheet(
                f"QLabel#readout {{ background: {READOUT_COLOURS[band_key]}; color: white; "
                "border-radius: 8px; }"
            )
        self._set_text(self.readout, "readout", "-- N" if no_device else f"{f:5.1f} N")
        self._set_text(
            self.zone_label,
            "zone",
            f"{zone.name}: limit {zone.limit_n:g} N, warning {zone.warning_n:g} N",
        )
        self._draw_step(st)
        self._draw_controls()
        self._draw_status(st)

    def _draw_step(self, st) -> None:
        c = self.controller
        if c.routine_running and st.unit is not None:
            unit = st.unit
            rest = unit.label[len(unit.step.id) :].strip()
            name = f"{unit.step.title} ({rest})" if rest else unit.step.title
            step = f"Step {st.unit_number} of {st.unit_count}: {name}"
            instruction = st.instruction
        elif c.summary is not None:
            step = f"Routine ended: {c.summary.message}"
            instruction = c.summary.advice
        else:
            step = "No routine running."
            instruction = ""
        self._set_text(self.step_label, "step", step)
        self._set_text(self.instruction, "instruction", instruction)
        paused = c.routine_paused
        prompt = "PAUSED: vibration is off. Resume starts the step over." if paused else st.prompt
        self._set_text(self.prompt, "prompt", prompt)
        if self._texts.get("prompt_style") != str(paused):
            self._texts["prompt_style"] = str(paused)
            self.prompt.setStyleSheet(PAUSED_STYLE if paused else "")
        progress = c.progress()
        if progress is not None:
            self.routine_bar.setValue(round(progress.fraction * 1000))
            words = (
                f"{round(100 * progress.fraction)} %: {progress.done} of {progress.count} "
                f"steps done, about {format_duration(progress.left_s)} left"
            )
        else:
            words = ""
            if not c.routine_running:
                self.routine_bar.setValue(1000 if c.summary is not None else 0)
        self._set_text(self.routine_progress, "routine_progress", words)
        if (
            not c.routine_running
            and c.summary is not None
            and self._summary_shown_for is not c.summary
        ):
            self._summary_shown_for = c.summary
            summary = c.session_summary()
            if summary is not None:
                self.show_summary(summary, f"{c.summary.routine}: {c.summary.message}")
        fraction, text = 0.0, ""
        if paused:
            text = "paused"
        elif c.routine_running and st.hold_min_s:
            fraction = min(1.0, st.hold_s / st.hold_min_s)
            left = st.hold_min_s - st.hold_s
            if st.hold_s <= 0:
                text = f"press into the band: {st.hold_min_s:g} s to hold"
            elif left > 0:
                text = f"{st.hold_s:4.1f} s of {st.hold_min_s:g} s: {left:4.1f} s to go"
            else:
                text = f"{st.hold_s:4.1f} s: hold reached, release slowly"
        elif c.routine_running and st.unit_deadline_t_s is not None:
            span = max(1e-9, st.unit_deadline_t_s - st.unit_started_t_s)
            left = max(0.0, st.unit_deadline_t_s - st.t_s)
            fraction = min(1.0, 1.0 - left / span)
            text = f"{left:4.1f} s left in this step"
        self.hold_bar.setValue(round(fraction * 1000))
        self._set_text(self.hold_label, "hold", text)

    def _draw_controls(self) -> None:
        c = self.controller
        running = c.routine_running
        manual = c.connected and not running
        allowed = c.vibration_allowed and manual
        cap = c.zone.vibration_cap_pct
        for w in (self.zone_combo, self.tare_button, self.pattern_combo):
            w.setEnabled(manual)
        self.vibration_slider.setEnabled(allowed and cap > 0)
        if self.vibration_slider.maximum() != round(cap):
            self.vibration_slider.setMaximum(round(cap))
        self.screening_button.setVisible(c.connected and not c.is_simulated)
        self.routine_button.setEnabled(c.connected)
        if recorder_available():
            self.record_button.setEnabled(c.connected)
            recording = "Stop recording" if c.recorder is not None else "Record..."
            self._set_text(self.record_button, "record_button", recording)
        self.routine_combo.setEnabled(manual)
        self._set_text(
            self.routine_button, "routine_button", "End routine" if running else "Start routine"
        )
        self.pause_button.setEnabled(running)
        self._set_text(self.pause_button, "pause_button", "Resume" if c.routine_paused else "Pause")
        shown = c.played_pct()
        now_cap = c.current_zone.vibration_cap_pct
        self._set_text(self.vibration_label, "vibration", f"{shown:3.0f} % (cap {now_cap:g} %)")
        zone = c.current_zone
        if running:
            # the routine drives: the zone box and the slider show its step's zone and level
            index = self.zone_combo.findData(zone.name)
            if index >= 0:
                text = f"{zone.name} ({zone.limit_n:g} N)"
                if self.zone_combo.itemText(index) != text:
                    self.zone_combo.setItemText(index, text)
                if self.zone_combo.currentIndex() != index:
                    self.zone_combo.blockSignals(True)
                    self.zone_combo.setCurrentIndex(index)
                    self.zone_combo.blockSignals(False)
            self._show_slider(shown)
        elif self._texts.get("zone_combo_restored") != c.zone.name:
            # back to the picker's own zone once the routine is over
            self._texts["zone_combo_restored"] = c.zone.name
            for i, (name, z) in enumerate(c.zones.items()):
                self.zone_combo.setItemText(i, f"{name} ({z.limit_n:g} N)")
            self.zone_combo.blockSignals(True)
            self.zone_combo.setCurrentIndex(self.zone_combo.findData(c.zone.name))
            self.zone_combo.blockSignals(False)
            self._show_slider(c.vibration_pct)
        if running:
            self._texts.pop("zone_combo_restored", None)

    def _show_slider(self, pct: float) -> None:
        if self.vibration_slider.value() != round(pct):
            self.vibration_slider.blockSignals(True)
            self.vibration_slider.setValue(round(pct))
            self.vibration_slider.blockSignals(False)

    def _draw_status(self, st) -> None:
        c = self.controller
        if not c.connected:
            text = "not connected: use Connect..."
        else:
            battery = battery_text(st.battery_pct)
            text = (
                f"{c.session.link.url}  |  link {st.link_kind}  |  battery {battery}  |  "
                f"rate {c.measured_rate_hz():5.0f} Hz  |  "
                f"{describe_rate(c.session.rate_hz, short=True)}  |  gaps {st.missed_batches}  |  "
                f"CRC errors {st.crc_errors}  |  latency {st.latency_s * 1000:4.1f} ms  |  "
                f"t {st.t_s:6.1f} s"
            )
            if c.recorder is not None:
                text += f"  |  REC {c.recorder.folder.name}"
            elif c.recording_error:
                text += f"  |  recording stopped: {c.recording_error}"
        self._set_text(self.status, "status", text)

    # ---- closing ---------------------------------------------------------------------------

    def closed(self) -> asyncio.Future:
        """A future that completes once the window closed and the device is let go."""
        if self._closed_future is None:
            self._closed_future = asyncio.get_running_loop().create_future()
        return self._closed_future

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        """Let the device go first (Stop, end the stream), then close."""
        if self._close_task is None and self.controller.connected:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None  # no loop left (interpreter or test teardown): the deadman stops
            if loop is not None:
                event.ignore()
                self._close_task = loop.create_task(self._close_device(), name="close-window")
                return
        self._timer.stop()
        if self._closed_future is not None and not self._closed_future.done():
            self._closed_future.set_result(None)
        super().closeEvent(event)

    async def _close_device(self) -> None:
        try:
            await self.controller.disconnect()
        finally:
            self.close()

    async def shutdown(self) -> None:
        """Close the window and let the device go (scripts and tests)."""
        self._timer.stop()
        await self.controller.disconnect()
        self.close()


def run_window(
    url: str | None,
    *,
    routine: str | None = None,
    speed: float | None = None,
    unattended: bool = False,
    record_dir: str | Path | None = None,
    window_s: float = DEFAULT_WINDOW_S,
    fps: int = DEFAULT_FPS,
    screening: ScreeningResult | None = None,
    close_when_done: bool = False,
    zones: Mapping[str, Zone] | None = None,
    lsl=None,
) -> int:
    """Open the live window on ``url`` and block until it is closed.

    ``routine``: a built-in routine name or a routine file, started once connected.
    ``speed``: simulation speed (``sim://`` only). ``unattended``: the routine re-arms by its
    policy. ``record_dir``: record samples and events into this new folder from the start.
    ``screening``: a passed screening for a real device (else the window asks before any
    vibration or routine). ``close_when_done``: close once the routine has ended.
    ``zones``: the zone table in force (the user's profile; default the built-in one).
    ``url`` None: the window opens unconnected with its Connect dialog. ``lsl``: LSL outlets
    (``device.recording.lsl.LslOutlets``) fed with every batch and event (``plot --lsl``).

    Returns 0 when closed normally or the routine completed (or the user stopped it), 1 when
    the routine ended otherwise (a stop policy, a lost link, an error), 2 when the device
    could not be opened (the message goes to stderr), 130 when Ctrl-C closed it. With a
    routine, a recording (``record_dir``) ends when the routine ends.
    """
    import qasync

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    windows: list[LiveWindow] = []
    try:
        with loop:
            return loop.run_until_complete(
                _run(
                    windows,
                    url,
                    routine,
                    speed,
                    unattended,
                    window_s,
                    fps,
                    screening,
                    close_when_done,
                    record_dir,
                    zones,
                    lsl,
                )
            )
    finally:
        asyncio.set_event_loop(None)
        # destroyed now, while every Python part of it is whole: left to garbage collection,
        # Qt destroyed it from the collector, calling half-collected labels back
        # (pyqtgraph's LabelItem.sizeHint)
        for window in windows:
            shiboken6.delete(window)


async def _run(
    windows: list[LiveWindow],
    url,
    routine,
    speed,
    unattended,
    window_s,
    fps,
    screening,
    close_when_done,
    record_dir,
    zones,
    lsl=None,
) -> int:
    controller = LiveController(
        speed=speed, unattended=unattended, screening=screening, zones=zones
    )
    controller.lsl = lsl
    window = LiveWindow(controller, window_s=window_s, fps=fps)
    windows.append(window)
    closed = window.closed()
    window.show()
    # Ctrl-C in the terminal closes the window (Stop first), like the close button, and the
    # exit code says so (130, as the CLI promises)
    interrupted: list[bool] = []

    def on_sigint(*_: object) -> None:
        interrupted.append(True)
        window.close()

    previous = signal.signal(signal.SIGINT, on_sigint)
    wake = QtCore.QTimer()
    wake.timeout.connect(lambda: None)  # lets Python see the signal while Qt waits
    wake.start(200)
    code = 0
    try:
        if url is None:
            window.on_connect_dialog()
        else:
            try:
                await controller.connect(url)
                if record_dir is not None:
                    controller.start_recording(record_dir)
            except MassagectlError as exc:
                print(f"massagectl: error: {exc}", file=sys.stderr)
                await window.shutdown()
                return 2
            if routine is not None:
                task = controller.start_routine(load_routine(routine, zones=controller.zones))
                if record_dir is not None:
                    # the recording is the routine's: it ends with "Routine ended"
                    task.add_done_callback(lambda _task: controller.stop_recording())
                if close_when_done:
                    await asyncio.wait({task, closed}, return_when=asyncio.FIRST_COMPLETED)
                    if not closed.done():
                        window.close()
        await closed
        summary = controller.summary
        if summary is not None and str(summary.end) not in ("completed", "user_stop"):
            code = 1
        if controller.error:
            print(f"massagectl: error: {controller.error}", file=sys.stderr)
            code = 1
        if interrupted:
            print("interrupted", file=sys.stderr)
            code = 130
    finally:
        wake.stop()
        signal.signal(signal.SIGINT, previous)
        await controller.disconnect()
    return code
