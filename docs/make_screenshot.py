"""Make docs/live-window.png: the live window during the demo routine.

Runs the neck-relief routine on the simulated ball with its scripted user
(``sim://ball?user=scripted``) at a few times real speed, waits until the shoulder
squeeze-and-release is in its hold (the band, the hold bar and the instruction all show),
and saves the window. Offscreen by default, so it needs no display:

    .venv/bin/python docs/make_screenshot.py [--out docs/live-window.png]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import qasync  # noqa: E402
from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402

from device.routine.routines import load_routine  # noqa: E402
from ui.live_controller import LiveController  # noqa: E402
from ui.live_window import LiveWindow  # noqa: E402

SPEED = 3.0
HOLD_SHOWN_S = 5.0
MAX_BYTES = 300_000


async def shoot(out: Path) -> int:
    controller = LiveController(speed=SPEED, unattended=True)
    window = LiveWindow(controller, window_s=20.0, fps=30)
    window.resize(1280, 760)
    window.show()
    try:
        await controller.connect("sim://ball?user=scripted")
        controller.start_routine(load_routine("neck-relief"))
        st = controller.state

        def in_hold() -> bool:
            unit = getattr(controller.state, "unit", None)
            return (
                unit is not None
                and unit.step.id == "trapezius-squeeze"
                and controller.state.hold_s >= HOLD_SHOWN_S
            )

        if not await controller.wait_until(in_hold, 60.0):
            print(f"the hold never showed (t {st.t_s:.1f} s)", file=sys.stderr)
            return 1
        await asyncio.sleep(0.1)  # a few more frames
        image = window.grab().toImage()
        # fewer colours: the PNG stays small and the text stays sharp
        image = image.convertToFormat(
            QtGui.QImage.Format.Format_Indexed8, QtCore.Qt.ImageConversionFlag.ThresholdDither
        )
        if not image.save(str(out), "PNG"):
            print(f"could not write {out}", file=sys.stderr)
            return 1
    finally:
        await window.shutdown()
    size = out.stat().st_size
    print(f"wrote {out} ({size // 1000} kB)")
    return 0 if size < MAX_BYTES else 1


def main() -> int:
    parser = argparse.ArgumentParser(description="screenshot of the live window")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("live-window.png"))
    args = parser.parse_args()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        return loop.run_until_complete(shoot(args.out))


if __name__ == "__main__":
    sys.exit(main())
