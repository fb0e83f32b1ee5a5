"""The live pressure window on simulated devices (pytest-qt, offscreen, qasync).

Each test drives the real window and controller against ``sim://`` devices at a few times
real speed and checks what the simulated firmware saw (motor, Stop commands) and what the
window shows (curves, banner, colours, step). Waits are on conditions, never on timing.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore

from device.recording.folder import read_recording
from device.routine.routines import load_routine
from dsp.decisions import SafetyState
from dsp.events import Cause, Rearmed, StepFinished, StepPaused, StepStarted, Stop
from tests.helpers import FullDiskFile
from ui.live_controller import AlarmLevel
from ui.live_window import COLOURS

WAIT_S = 20.0


async def until(window, cond, what: str, timeout_s: float = WAIT_S) -> None:
    ok = await window.controller.wait_until(cond, timeout_s)
    window.controller.raise_if_failed()
    assert ok, f"timed out waiting for {what}"


async def redraws(window, count: int = 2) -> None:
    frames = window.frames
    await until(window, lambda: window.frames >= frames + count, "redraws")


def _firmware(window):
    return window.controller.session.link.firmware


def test_curves_fill_with_the_simulated_force(drive):
    async def body(window):
        c = window.controller
        await c.connect("sim://ball")  # default scenario: 6 N from t = 1.8 s to 10 s
        await until(window, lambda: c.state.t_s > 5.0, "5 s of data")
        await redraws(window, 3)
        fw = _firmware(window)
        truth_n = fw.scenario.force_at(fw.t_s)
        assert truth_n == pytest.approx(6.0)
        x_raw, y_raw = window.raw_curve.getData()
        x_f, y_f = window.filtered_curve.getData()
        # a window of the last 10 s, decimated to about the plot's width in pixels
        assert -10.0 <= x_f[0] < -4.5 and x_f[-1] == pytest.approx(0.0, abs=0.05)
        assert len(x_f) <= 2 * window.view.width() + 100 and len(x_raw) == len(x_f)
        # before the press: about 0 N; the last second: the scenario's 6 N
        assert np.median(y_f[x_f < x_f[0] + 0.5]) == pytest.approx(0.0, abs=0.3)
        last = x_f > -1.0
        assert np.median(y_f[last]) == pytest.approx(truth_n, abs=0.2)
        assert np.median(y_raw[last]) == pytest.approx(truth_n, abs=0.2)
        assert c.state.force_n == pytest.approx(fw.true_force_n, abs=0.4)
        assert "6.0 N" in window.readout.text()
        status = window.status.text()
        assert "link sim" in status and "battery 96 %" in status and "gaps 0" in status
        assert "sensor 1000 Hz: over-limit seen within ~" in status  # issue 13
        assert c.alarm().level == AlarmLevel.OK

    drive(body)


@pytest.mark.parametrize("how", ["button", "space", "escape"])
def test_stop_sends_stop_and_the_motor_stops(drive, qtbot, how):
    async def body(window):
        c = window.controller
        await c.connect("sim://ball")
        window.vibration_slider.setValue(20)  # neck_back caps at 30 %
        fw = _firmware(window)
        await until(window, lambda: fw.motor_on, "the motor to run")
        stops_before = fw.stops_received
        if how == "button":
            qtbot.mouseClick(window.stop_button, QtCore.Qt.MouseButton.LeftButton)
        else:
            key = QtCore.Qt.Key.Key_Space if how == "space" else QtCore.Qt.Key.Key_Escape
            qtbot.keyClick(window, key)
        await until(window, lambda: not fw.motor_on, "the motor to stop")
        await redraws(window)
        assert fw.stops_received > stops_before
        assert any(e.name == "stop_received" for e in fw.events)
        assert window.vibration_slider.value() == 0 and c.vibration_pct == 0.0
        assert window.banner.text() == "Stopped by you"
        assert [e.cause for e in c.events if isinstance(e, Stop)] == [Cause.USER_STOP]

    drive(body)


def test_over_limit_turns_the_alarm_on_with_its_cause(drive, tmp_path):
    scenario_file = tmp_path / "over.toml"
    scenario_file.write_text(
        'name = "past-neck-back"\n'
        "press = [\n"
        "  { t_s = 0.5, force_n = 5.0, ramp_s = 0.5 },\n"
        "  { t_s = 4.0, force_n = 15.0, ramp_s = 0.5 },\n"
        "  { t_s = 6.0, force_n = 0.0, ramp_s = 1.0 },\n"
        "]\n"
    )

    async def body(window):
        c = window.controller
        await c.connect(f"sim://ball?scenario={scenario_file}")
        c.start_recording(tmp_path / "rec")
        assert c.current_zone.name == "neck_back" and c.current_zone.limit_n == 10.0
        window.vibration_slider.setValue(25)
        fw = _firmware(window)
        await until(window, lambda: fw.motor_on, "the motor to run")
        await until(window, lambda: c.state.safety is SafetyState.STOPPED, "the stop")
        await redraws(window)
        assert not fw.motor_on and fw.stops_received >= 1
        assert c.state.alarm == "over_limit"
        assert c.alarm().level == AlarmLevel.ALARM
        banner = window.banner.text()
        assert banner == "STOPPED: too much pressure for this spot"
        assert window.view.background.brush().color().name() == COLOURS[AlarmLevel.ALARM]
        stops = [e for e in c.events if isinstance(e, Stop)]
        assert stops[0].cause is Cause.OVER_LIMIT and stops[0].was_vibrating
        texts = [window.events_list.item(i).text() for i in range(window.events_list.count())]
        assert any("STOP: too much pressure for this spot" in t for t in texts)
        # re-arm is refused while force is still high, accepted once it has eased off
        await until(window, lambda: c.state.filtered_n < 1.0, "the release")
        await until(window, c.rearm, "the re-arm", timeout_s=WAIT_S)
        await redraws(window)
        assert c.alarm().level == AlarmLevel.OK
        assert window.view.background.brush().color().name() == COLOURS[AlarmLevel.OK]
        assert "REC rec" in window.status.text()
        c.stop_recording()

    drive(body)
    recording = read_recording(tmp_path / "rec")
    assert recording.complete and recording.t_s.size > 1000
    causes = [e.cause for e in recording.events if isinstance(e, Stop)]
    assert causes[0] is Cause.OVER_LIMIT
    assert any(isinstance(e, Rearmed) for e in recording.events)


ROUTINE = """
format = 1
name = "window-test"
title = "Window test"

[[steps]]
id = "settle"
kind = "cue"
title = "Settle"
instruction = "Sit upright."
duration_s = 2

[[steps]]
id = "squeeze"
kind = "press_and_hold"
title = "Shoulder squeeze"
instruction = "Press the ball into the shoulder."
zone = "upper_trapezius"
band_n = [15, 30]
hold_min_s = 2
hold_max_s = 4
release_s = 2
vibration = { pattern = "pulse", intensity_pct = 30 }

[[steps]]
id = "warmth"
kind = "aftercare"
title = "Warmth"
instruction = "A warm shower helps."
duration_s = 1
"""


def test_routine_steps_advance(drive, tmp_path):
    path = tmp_path / "window-test.toml"
    path.write_text(ROUTINE)
    routine = load_routine(path)
    shown: list[str] = []
    holds: list[str] = []

    async def body(window):
        c = window.controller

        def watch() -> bool:
            text = window.step_label.text()
            if not shown or shown[-1] != text:
                shown.append(text)
            if window.hold_label.text():
                holds.append(window.hold_label.text())
            return c.summary is not None

        await c.connect("sim://ball?user=scripted")
        c.start_routine(routine)
        assert c.routine_running
        await redraws(window)
        assert not window.zone_combo.isEnabled() and window.routine_button.text() == "End routine"
        await until(window, watch, "the routine to finish", timeout_s=30.0)
        await redraws(window)
        assert str(c.summary.end) == "completed", c.summary.message
        assert [u.step_id for u in c.summary.units] == ["settle", "squeeze", "warmth"]
        assert all(u.completed for u in c.summary.units)
        started = [e.step for e in c.events if isinstance(e, StepStarted)]
        # a unit that was stopped starts over: the same step may start twice in a row
        assert [s for i, s in enumerate(started) if i == 0 or started[i - 1] != s] == [
            "settle",
            "squeeze",
            "warmth",
        ]
        assert window.step_label.text().startswith("Routine ended: routine completed")
        # the window's own loop supervises again after the routine
        assert c.live is not None and c.runner is None

    drive(body, speed=8.0, unattended=True)
    steps = [s for s in shown if s.startswith("Step ")]
    assert steps[0].startswith("Step 1 of 3: Settle")
    assert any(s.startswith("Step 2 of 3: Shoulder squeeze") for s in steps)
    assert steps[-1].startswith("Step 3 of 3: Warmth")
    assert any("to go" in h for h in holds) and any("hold reached" in h for h in holds)


def test_run_window_runs_a_routine_and_returns_its_exit_code(qapp, tmp_path):
    """The entry point ``demo --gui`` uses: blocking, its own qasync loop, 0 on completion."""
    from ui.live_window import run_window

    path = tmp_path / "window-test.toml"
    path.write_text(ROUTINE)
    code = run_window(
        "sim://ball?user=scripted",
        routine=str(path),
        speed=8.0,
        unattended=True,
        close_when_done=True,
        record_dir=tmp_path / "rec",
    )
    assert code == 0
    recording = read_recording(tmp_path / "rec")
    assert recording.complete and recording.meta["summary"]["end"] == "completed"
    # the window is destroyed before run_window returns, not left to a later garbage
    # collection (which destroyed it in another test, calling half-collected labels)
    from ui.live_window import LiveWindow

    assert not [w for w in qapp.topLevelWidgets() if isinstance(w, LiveWindow)]


def test_gui_demo_ends_its_recording_with_the_routine_and_exits_130_on_ctrl_c(
    qapp, tmp_path, monkeypatch
):
    """``demo --gui --record``: the window stays open after "Routine ended" (demo does not
    close it) and goes on supervising, but the recording was the routine's and ended with
    it (it went on until the window closed); Ctrl-C then exits 130, as the CLI does (it was
    0)."""
    import signal

    import ui.live_window as live_window

    controllers = []

    class Kept(live_window.LiveController):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            controllers.append(self)

    monkeypatch.setattr(live_window, "LiveController", Kept)
    path = tmp_path / "window-test.toml"
    path.write_text(ROUTINE)
    ended_at: list[float] = []

    def poll() -> None:  # in the window's own loop: Ctrl-C 2 s of device time after the end
        c = controllers[0] if controllers else None
        if c is None or c.summary is None:
            return
        if not ended_at:
            ended_at.append(c.state.t_s)
        elif c.state.t_s > ended_at[0] + 2.0:
            timer.stop()
            signal.raise_signal(signal.SIGINT)

    timer = QtCore.QTimer()
    timer.timeout.connect(poll)
    timer.start(20)
    code = live_window.run_window(
        "sim://ball?user=scripted",
        routine=str(path),
        speed=8.0,
        unattended=True,
        close_when_done=False,
        record_dir=tmp_path / "rec",
    )
    assert code == 130
    recording = read_recording(tmp_path / "rec")
    assert recording.complete and recording.meta["summary"]["end"] == "completed"
    last_step = [e for e in recording.events if isinstance(e, StepFinished)][-1]
    assert recording.t_s[-1] <= last_step.t_s + 0.1
    assert ended_at[0] - last_step.t_s < 0.5


def test_run_window_reports_a_device_that_cannot_be_opened(qapp, tmp_path, capsys):
    from ui.live_window import run_window

    assert run_window(f"sim://ball?scenario={tmp_path / 'missing.toml'}") == 2
    assert "error" in capsys.readouterr().err


def test_pause_button_stops_vibration_and_resume_starts_the_step_over(drive, tmp_path):
    path = tmp_path / "window-test.toml"
    path.write_text(
        ROUTINE.replace("hold_min_s = 2\nhold_max_s = 4", "hold_min_s = 6\nhold_max_s = 9")
    )

    async def body(window):
        c = window.controller
        await c.connect("sim://ball?user=scripted")
        c.start_routine(load_routine(path))
        await until(
            window,
            lambda: (
                c.runner is not None
                and c.runner.state.unit is not None
                and c.runner.state.unit.step.id == "squeeze"
                and _firmware(window).motor_on
            ),
            "the squeeze to vibrate",
        )
        await redraws(window)
        assert window.pause_button.isEnabled() and window.pause_button.text() == "Pause"
        window.pause_button.click()
        await until(window, lambda: not _firmware(window).motor_on, "the motor to stop")
        await redraws(window)
        assert window.pause_button.text() == "Resume"
        window.pause_button.click()
        await until(window, lambda: c.summary is not None, "the routine to finish", 30.0)
        assert str(c.summary.end) == "completed", c.summary.message
        # paused, not finished; then the same step started over and finished on its own
        squeeze = [e for e in c.events if getattr(e, "step", None) == "squeeze"]
        assert [type(e) for e in squeeze][-3:] == [StepPaused, StepStarted, StepFinished]
        assert squeeze[-1].completed and squeeze[-1].t_s > squeeze[-2].t_s

    drive(body, speed=8.0, unattended=True)


def test_a_recording_that_cannot_be_written_stops_the_window_s_vibration(drive, tmp_path):
    """The supervised run's one failure policy in the window too: a full disk stops
    vibration and ends the run with the error naming the file (before, the window only
    ended the recording and went on vibrating)."""

    async def body(window):
        c = window.controller
        await c.connect("sim://handheld")
        c.start_recording(tmp_path / "rec")
        window.vibration_slider.setValue(25)
        fw = _firmware(window)
        await until(window, lambda: fw.motor_on, "the motor to run")
        c.recorder._samples_fh = FullDiskFile(c.recorder._samples_fh)
        await until(window, lambda: c.recording_error is not None, "the failed write")
        await until(window, lambda: not fw.motor_on, "the motor to stop")
        assert "samples.csv" in c.recording_error and c.recorder is None
        assert c.live is None or c.live.failure is not None

    drive(body)


PROFILE_5N_10PCT = "[zones.neck_back]\nlimit_n = 5\nvibration_cap_pct = 10\n"


def test_the_window_supervises_with_the_user_s_profile(drive, tmp_path):
    """A profile that lowers neck_back to 5 N / 10 %: the window's supervisor stops at 7 N
    (the built-in 10 N would not), the firmware's hard limit follows, and a slider at 30 %
    plays at most 10 % (failed before: the window used the built-in zones)."""
    from device.config.profiles import load_profile

    profile_file = tmp_path / "profile.toml"
    profile_file.write_text(PROFILE_5N_10PCT)
    zones = load_profile(profile_file).zones
    scenario_file = tmp_path / "seven.toml"
    scenario_file.write_text(
        'name = "seven"\npress = [{ t_s = 1.5, force_n = 7.0, ramp_s = 0.5 }]\n'
    )

    async def body(window):
        c = window.controller
        await c.connect(f"sim://ball?scenario={scenario_file}")
        assert c.current_zone.limit_n == 5.0
        assert window.zone_combo.currentText() == "neck_back (5 N)"
        window.vibration_slider.setValue(30)
        fw = _firmware(window)
        await until(window, lambda: fw.motor_on, "the motor to run")
        assert 0 < fw.physics.motor.drive <= 0.10
        assert 0 < fw.limit_mn <= c.current_zone.ceiling_n * 1000
        await until(window, lambda: c.state.safety is SafetyState.STOPPED, "the stop")
        stops = [e for e in c.events if isinstance(e, Stop)]
        assert stops[0].cause is Cause.OVER_LIMIT and stops[0].was_vibrating
        assert c.state.filtered_n < 8.0  # stopped on the way to 7 N, not at 10 N

    drive(body, zones=zones)


def test_plot_and_demo_gui_hand_the_default_profile_to_the_window(tmp_path, monkeypatch):
    """``plot`` and ``demo --gui`` read profile.toml from the config folder (failed before:
    the window was opened without it)."""
    import ui.live_window
    from ui.cli import main

    monkeypatch.setenv("MASSAGECTL_CONFIG_DIR", str(tmp_path))
    (tmp_path / "profile.toml").write_text(PROFILE_5N_10PCT)
    seen: list[dict] = []
    monkeypatch.setattr(ui.live_window, "run_window", lambda url, **kw: seen.append(kw) or 0)
    assert main(["plot", "sim://ball"]) == 0
    assert main(["demo", "--gui"]) == 0
    for kw in seen:
        assert kw["zones"]["neck_back"].limit_n == 5.0
        assert kw["zones"]["neck_back"].vibration_cap_pct == 10.0
    assert len(seen) == 2
