"""What a person expects to see in the live window: no device said as such, the routine's
progress and time left, the zone box and the vibration slider following the step, a pause
shown until resumed, events in words, and the session's summary at the end."""

from __future__ import annotations

import os

from PySide6 import QtWidgets

from device.routine.routines import load_routine
from tests.qt.test_live_window import ROUTINE, _firmware, redraws, until


def test_no_device_is_said_not_all_clear(drive):
    async def body(window):
        await redraws(window)
        assert window.banner.text().startswith("No device connected")
        assert "All clear" not in window.banner.text()
        assert window.readout.text() == "-- N"
        assert "#8a8a8a" in window.readout.styleSheet()  # grey, not the green of "ok"
        await window.controller.connect("sim://ball")
        await redraws(window)
        assert window.banner.text() == "All clear" and "N" in window.readout.text()
        assert window.readout.text() != "-- N"

    drive(body)


def test_a_routine_shows_progress_its_zone_and_level_events_in_words_and_a_summary(drive, tmp_path):
    path = tmp_path / "window-test.toml"
    path.write_text(
        ROUTINE.replace("hold_min_s = 2\nhold_max_s = 4", "hold_min_s = 6\nhold_max_s = 9")
    )

    async def body(window):
        c = window.controller
        await c.connect("sim://ball?user=scripted")
        assert window.zone_combo.currentData() == "neck_back"
        c.start_routine(load_routine(path))
        await until(
            window,
            lambda: c.runner is not None and c.state.hold_s > 1.0,
            "the squeeze's hold, vibrating",
        )
        await redraws(window)
        assert window.zone_combo.currentData() == "upper_trapezius"
        assert "upper_trapezius: limit 40 N" in window.zone_label.text()
        # the step's pulse at 30 % (the slider stayed at 0 before: it showed only manual levels)
        assert window.vibration_slider.value() == 30 and "30 %" in window.vibration_label.text()
        progress = window.routine_progress.text()
        assert "1 of 3 steps done, about" in progress and "left" in progress
        assert 0 < window.routine_bar.value() < 1000
        assert "s to go" in window.hold_label.text()
        shown = [window.events_list.item(i).text() for i in range(window.events_list.count())]
        assert any("Started: Shoulder squeeze" in t for t in shown), shown
        assert any("Done: Settle" in t for t in shown), shown
        # no kinds or ids: "step_started: squeeze" was what the list showed before
        assert not any("_" in t or t.endswith(": squeeze") for t in shown), shown
        if os.environ.get("MASSAGECTL_SHOTS"):
            window.save_png(os.path.join(os.environ["MASSAGECTL_SHOTS"], "window-hold.png"))

        window.pause_button.click()
        await until(window, lambda: not _firmware(window).motor_on, "the motor to stop")
        for _ in range(3):
            await redraws(window, 5)
            assert window.prompt.text().startswith("PAUSED"), window.prompt.text()
        window.pause_button.click()
        await redraws(window)
        assert not window.prompt.text().startswith("PAUSED")

        await until(window, lambda: c.summary is not None, "the routine to finish", 30.0)
        await redraws(window)
        assert window.zone_combo.currentData() == "neck_back"  # the picker's own again
        dialog = window.summary_dialog
        assert dialog is not None and dialog.isVisible()
        table = dialog.findChild(QtWidgets.QTableWidget, "summary")
        rows = [
            [table.item(r, col).text() for col in range(table.columnCount())]
            for r in range(table.rowCount())
        ]
        assert [r[0] for r in rows] == ["Settle", "Shoulder squeeze", "Warmth"]
        assert rows[1][2] == "completed, paused 1x"
        assert rows[1][3] != "-" and float(rows[1][4]) > 3.0
        if os.environ.get("MASSAGECTL_SHOTS"):
            dialog.grab().save(os.path.join(os.environ["MASSAGECTL_SHOTS"], "summary.png"))
            window.save_png(os.path.join(os.environ["MASSAGECTL_SHOTS"], "window-end.png"))

    drive(body, speed=8.0, unattended=True)
