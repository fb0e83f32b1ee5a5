"""Fixtures for the live window's tests: a qasync loop on pytest-qt's QApplication.

These tests are plain (sync) pytest-qt tests, so pytest-asyncio leaves them alone; each runs
its coroutine on a fresh ``qasync.QEventLoop`` over the one QApplication, the way
``run_window`` runs the real window, and puts asyncio's loop back to none afterwards so the
asyncio tests that follow in the same run get their own loops (DESIGN.md's pitfall: the two
plugins must coexist in one run).

One test is one ``run_until_complete``: the window is driven (clicks and keys included),
checked and shut down inside it. qasync runs pending asyncio callbacks from Qt's event
processing even when the loop is not running, where they find no running loop; so nothing
may be left scheduled between two runs.
"""

from __future__ import annotations

import asyncio

import pytest
import qasync

from ui.live_controller import LiveController
from ui.live_window import LiveWindow

#: Simulation speed for window tests: device seconds per real second.
SPEED = 4.0


@pytest.fixture
def qloop(qapp):
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        loop.close()
        asyncio.set_event_loop(None)


@pytest.fixture
def drive(qtbot, qloop):
    """``drive(body, speed=..., unattended=...)``: make a shown LiveWindow and run
    ``await body(window)`` on the qasync loop with a deadline; the window is shut down (Stop,
    session closed, window closed) inside the same run, whatever happened."""
    windows: list[LiveWindow] = []

    def run(
        body,
        *,
        speed: float = SPEED,
        unattended: bool = False,
        timeout_s: float = 40.0,
        zones=None,
    ):
        controller = LiveController(speed=speed, unattended=unattended, zones=zones)
        window = LiveWindow(controller, window_s=10.0, fps=30)
        windows.append(window)
        window.show()

        async def main():
            try:
                return await asyncio.wait_for(body(window), timeout_s)
            finally:
                await window.shutdown()

        result = qloop.run_until_complete(main())
        assert not controller._tasks and controller.session is None
        assert not window.isVisible()
        return result

    yield run
    for window in windows:
        window.deleteLater()
    qtbot.wait(1)  # let deleteLater run (no asyncio work is left scheduled)
