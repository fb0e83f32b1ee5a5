"""Live plot cost: frame time and CPU share while plotting 1 kHz force in a 30 s window.

Three ways of drawing the same data (raw force with a 1 px pen, filtered force with 2 px),
each at 30 and 60 frames per second, with 1 kHz samples arriving between frames:

- ``naive``: the baseline; every one of the 30,000 points per curve handed to pyqtgraph,
  no downsampling, no clip-to-view.
- ``decimated``: the live window's data path on a bare plot: ring buffer, peak decimation
  to one min/max pair per pixel column, pyqtgraph's peak downsampling and clip-to-view on.
- ``window``: the whole live window (``LiveWindow.redraw``: curves, limit and bands,
  readout, labels, status) at 1280x760.

A frame is: append the samples that arrived since the last frame, update, and paint (Qt's
pending paint events processed at once, offscreen). Frame time is that span; CPU share is
process CPU time over wall time during the run (one core = 100 %), sleeping between frames
as a display-paced timer would. Run: ``python benchmarks/bench_plot.py [--seconds S]``.
Target (issue 9): at most 20 % of one core at 30 fps for the live window's path.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from PySide6 import QtWidgets  # noqa: E402

from ui.live_controller import LiveController  # noqa: E402
from ui.live_window import FILTERED_PEN, RAW_PEN, LiveWindow  # noqa: E402
from ui.plot_buffers import ForceRing, decimate_peak  # noqa: E402

RATE_HZ = 1000
WINDOW_S = 30.0
PLOT_SIZE = (1200, 500)


class Signal:
    """Synthetic 1 kHz force: slow presses and releases with sensor noise (newtons)."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(1)
        self.n = 0

    def take(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        i = np.arange(self.n, self.n + count)
        self.n += count
        t = i / RATE_HZ
        force = 6.0 + 5.0 * np.sin(2 * np.pi * t / 8.0)
        raw = force + self.rng.normal(0.0, 0.15, count)
        return t, raw, force


class BarePlot:
    """A plot widget like the window's, for the naive and decimated modes."""

    def __init__(self, decimated: bool) -> None:
        self.decimated = decimated
        self.widget = pg.PlotWidget(background="w")
        self.widget.resize(*PLOT_SIZE)
        item = self.widget.getPlotItem()
        if decimated:
            item.setDownsampling(auto=True, mode="peak")
            item.setClipToView(True)
        item.setXRange(-WINDOW_S, 0, padding=0)
        item.setYRange(-1, 13, padding=0)
        self.raw = item.plot(pen=RAW_PEN)
        self.filtered = item.plot(pen=FILTERED_PEN)
        for c in (self.raw, self.filtered):
            c.setSkipFiniteCheck(True)
        self.widget.show()
        self.view = item.getViewBox()

    def draw(self, ring: ForceRing) -> int:
        t, raw, filt, first = ring.since(ring.latest(1)[0][-1] - WINDOW_S)
        if self.decimated:
            bins = max(64, int(self.view.width()))
            x, (raw, filt) = decimate_peak(t, (raw, filt), first, bins)
        else:
            x = t
        x = x - t[-1]
        self.raw.setData(x, raw)
        self.filtered.setData(x, filt)
        return len(x)


def run(mode: str, fps: int, seconds: float, app: QtWidgets.QApplication) -> dict:
    signal = Signal()
    if mode == "window":
        controller = LiveController(max_window_s=WINDOW_S + 5)
        window = LiveWindow(controller, window_s=WINDOW_S, fps=1)
        window._timer.stop()  # frames are paced here
        window.resize(1280, 760)
        window.show()
        ring = controller.ring
        state = controller.state
        points = 0

        def draw() -> int:
            state.t_s = float(ring.latest(1)[0][-1])
            state.filtered_n = float(ring.latest(1)[2][-1])
            window.redraw()
            return len(window.filtered_curve.getData()[0])

    else:
        plot = BarePlot(decimated=mode == "decimated")
        ring = ForceRing(int((WINDOW_S + 5) * RATE_HZ))

        def draw() -> int:
            return plot.draw(ring)

    t, raw, filt = signal.take(int(WINDOW_S * RATE_HZ))
    ring.append(t, raw, filt)
    for _ in range(5):  # warm up (layout, first paints)
        draw()
        app.processEvents()
    period = 1.0 / fps
    per_frame = RATE_HZ // fps
    frame_ms = []
    wall0, cpu0 = time.perf_counter(), time.process_time()
    next_frame = wall0
    while time.perf_counter() - wall0 < seconds:
        start = time.perf_counter()
        for _ in range(per_frame // 10):  # batches of 10 samples, as they arrive
            ring.append(*signal.take(10))
        points = draw()
        app.processEvents()
        frame_ms.append((time.perf_counter() - start) * 1000)
        next_frame += period
        delay = next_frame - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        else:
            next_frame = time.perf_counter()
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    if mode == "window":
        window.close()
    else:
        plot.widget.close()
    app.processEvents()
    ms = np.array(frame_ms)
    return {
        "mode": mode,
        "fps_target": fps,
        "fps_achieved": len(ms) / wall,
        "points_per_curve": points,
        "frame_median_ms": float(np.median(ms)),
        "frame_p95_ms": float(np.percentile(ms, 95)),
        "cpu_pct_of_one_core": 100.0 * cpu / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="run length per case")
    args = parser.parse_args()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    print(
        f"live plot: {RATE_HZ} Hz, {WINDOW_S:g} s window ({int(RATE_HZ * WINDOW_S)} samples "
        f"per curve), raw 1 px + filtered 2 px, plot {PLOT_SIZE[0]}x{PLOT_SIZE[1]}, "
        f"Qt platform {os.environ['QT_QPA_PLATFORM']}, {args.seconds:g} s per case"
    )
    print(
        f"{'mode':<10} {'fps':>4} {'achieved':>8} {'points':>7} {'median ms':>10} "
        f"{'p95 ms':>8} {'CPU % core':>11}"
    )
    for fps in (30, 60):
        for mode in ("naive", "decimated", "window"):
            r = run(mode, fps, args.seconds, app)
            print(
                f"{r['mode']:<10} {fps:>4} {r['fps_achieved']:>8.1f} {r['points_per_curve']:>7} "
                f"{r['frame_median_ms']:>10.2f} {r['frame_p95_ms']:>8.2f} "
                f"{r['cpu_pct_of_one_core']:>11.1f}"
            )


if __name__ == "__main__":
    main()
