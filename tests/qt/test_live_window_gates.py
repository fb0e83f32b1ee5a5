"""The live window's gates: screening before vibration on a real device, the screening
dialog, and the plot command's argument checks."""

from __future__ import annotations

import pytest

from device.links.sim import SimLink
from device.screening.gate import QUESTIONS, ScreeningRefused, evaluate, simulated_user_answers
from tests.qt.test_live_window import redraws, until
from ui.cli import main
from ui.screening_dialog import ScreeningDialog


def test_a_real_device_vibrates_only_after_a_passed_screening(drive, monkeypatch):
    # a simulated ball that says it is real: the window must ask for screening first
    monkeypatch.setattr(SimLink, "is_simulated", property(lambda self: False))

    async def body(window):
        c = window.controller
        await c.connect("sim://ball")
        await redraws(window)
        assert not c.vibration_allowed
        assert not window.vibration_slider.isEnabled()
        assert window.screening_button.isVisible()
        with pytest.raises(ScreeningRefused):
            c.set_vibration("constant", 20)
        fw = c.session.link.firmware
        assert not fw.motor_on
        c.screening = evaluate(simulated_user_answers(), source="interactive")
        await redraws(window)
        assert c.vibration_allowed and window.vibration_slider.isEnabled()
        window.vibration_slider.setValue(20)
        await until(window, lambda: fw.motor_on, "the motor to run")

    drive(body)


def test_screening_dialog_needs_every_answer_and_judges_them(qtbot):
    dialog = ScreeningDialog()
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    assert not ok.isEnabled()
    passing = simulated_user_answers()
    for q in QUESTIONS:
        dialog._groups[q.id].button(1 if passing[q.id] else 0).click()
    assert ok.isEnabled()
    dialog.accept()
    assert dialog.result_value.passed and dialog.result_value.source == "interactive"

    dialog = ScreeningDialog()
    qtbot.addWidget(dialog)
    for q in QUESTIONS:
        flag = q.id == "injury"
        dialog._groups[q.id].button(1 if (passing[q.id] != flag) else 0).click()
    dialog.accept()
    assert not dialog.result_value.passed
    assert "injury" in [f.question_id for f in dialog.result_value.findings]


@pytest.mark.parametrize(
    "args",
    [["--fps", "100"], ["--window-s", "1"], ["--speed", "0"]],
)
def test_plot_command_rejects_bad_options(args, capsys):
    assert main(["plot", "sim://ball", *args]) == 2
    assert "massagectl plot: error:" in capsys.readouterr().err


def test_connect_dialog_path_reconnects_from_a_task(drive):
    """Connect... runs connect() as a task; it lets the current device go first."""

    async def body(window):
        c = window.controller
        await c.connect("sim://ball")
        first = c.session
        await window.connect_to("sim://handheld")
        assert c.session is not first and c.session.link.url.target == "handheld"
        await until(window, lambda: c.state.t_s > 0.5, "data from the new device")
        assert first._closed

    drive(body)
