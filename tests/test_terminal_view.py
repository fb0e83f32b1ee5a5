"""The terminal view's keys reach the runner, and a frame renders from the live state."""

from __future__ import annotations

import asyncio
import io
import re

import pytest
from rich.console import Console

from device.control.supervised import LiveState
from device.links import open_link
from device.routine.routines import load_routine
from device.routine.runner import RoutineRunner
from device.session.device_session import DeviceSession
from dsp.decisions import SafetyState
from dsp.events import StepFinished
from dsp.pipeline import ForcePipeline
from dsp.zones import get_zone
from ui.terminal_view import TerminalView, render


class _Runner:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.paused = False
        self.state = LiveState()
        self.units: list = []

    def add_listener(self, fn) -> None:
        pass

    def user_stop(self) -> None:
        self.calls.append("stop")

    def report_symptom(self) -> None:
        self.calls.append("symptom")

    def request_rearm(self) -> None:
        self.calls.append("rearm")

    def pause(self) -> None:
        self.calls.append("pause")
        self.paused = True

    def resume(self) -> None:
        self.calls.append("resume")
        self.paused = False


def test_keys_reach_the_runner():
    runner = _Runner()
    view = TerminalView(runner, Console(file=open("/dev/null", "w")))  # noqa: SIM115
    for key in (" ", "p", "r", "w", "w", "x"):
        view._key(key)
    view.console.file.close()
    assert runner.calls == ["stop", "symptom", "rearm", "pause", "resume"]


def test_a_frame_shows_the_alarm_in_words():
    state = LiveState(
        filtered_n=12.0,
        safety=SafetyState.STOPPED,
        alarm="over_limit",
        link_kind="sim",
        rate_hz=1000,
    )
    console = Console(record=True, width=100, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(render(state, "test"))
    text = console.export_text()
    console.file.close()
    assert "STOPPED: too much pressure for this spot" in text
    assert "12.0 N" in text


def test_a_frame_says_when_the_sensor_is_slow():
    # issue 13: the routine view shows the rate and the expected worst detection delay
    state = LiveState(link_kind="sim", rate_hz=80, nominal_rate_hz=80)
    console = Console(record=True, width=200, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(render(state, "test"))
    text = console.export_text()
    console.file.close()
    assert "sensor 80 Hz: over-limit seen within ~25 ms, slow sensor" in text


# ---- frames of a real routine (virtual time) ---------------------------------------------------


async def _until(runner, cond, what: str, limit_s: float = 600.0) -> None:
    while not cond():
        assert runner.state.t_s < limit_s and not runner.state.finished, f"no {what}"
        runner.live.changed.clear()
        await runner.live.changed.wait()


def _text(view: TerminalView) -> str:
    console = Console(record=True, width=120, file=io.StringIO())
    console.print(view.frame())
    return console.export_text()


@pytest.mark.virtual_time
async def test_frames_show_progress_time_left_a_hold_countdown_and_a_pause_until_resumed():
    routine = load_routine("neck-relief")
    link = open_link("sim://ball?user=scripted", speed=25.0)
    async with DeviceSession(link) as session:
        pipeline = ForcePipeline(session.rate_hz, session.calibration, get_zone(None))
        runner = RoutineRunner(session, routine, pipeline, unattended=True)
        view = TerminalView(runner, Console(file=io.StringIO()))
        finished: list[StepFinished] = []
        runner.add_listener(lambda e: isinstance(e, StepFinished) and finished.append(e))
        task = asyncio.ensure_future(runner.run())
        try:
            planned_s = view.progress.planned_s
            # in the first step (a 30 s cue): elapsed + left is the plan, the frame says so
            await _until(runner, lambda: runner.state.t_s > 10.0, "10 s")
            p = view.progress.at(runner.state)
            assert p.count == len(runner.units) and p.done == 0
            assert p.elapsed_s + p.left_s == pytest.approx(planned_s, abs=0.2)
            text = _text(view)
            assert "0 of 22 steps done, about" in text and "left" in text
            assert "Time left in this step:" in text

            # a hold counts down to its minimum
            await _until(runner, lambda: runner.state.hold_s > 2.0, "a hold")
            text = _text(view)
            assert re.search(r"hold +\d+\.\d s of 10-15 s: +\d+\.\d s to go", text), text

            # paused in the rest after the first squeeze: still shown once the rest is over
            await _until(runner, lambda: len(finished) >= 2, "the first squeeze to end")
            assert runner.state.prompt == "Rest."
            runner.pause()
            paused_at = runner.state.t_s
            await _until(runner, lambda: runner.state.t_s > paused_at + 6.0, "6 s paused")
            assert runner.paused and runner.state.prompt != "Paused. Resume when you are ready."
            text = _text(view)
            assert "PAUSED" in text and "w to resume" in text
            assert "2 of 22 steps done" in text
            runner.resume()
            await _until(runner, lambda: runner.state.t_s > paused_at + 8.0, "resumed")
            assert "PAUSED" not in _text(view)
            runner.user_stop()
            await task
        finally:
            if not task.done():
                task.cancel()
    summary = view.summary()
    assert [s.state for s in summary.steps[:2]] == ["completed", "completed"]
    assert summary.steps[1].holds_s and summary.steps[1].time_in_band_s


def test_a_frame_in_kilograms_force_for_gauge_owners():
    # issue 15: --units kg shows kgf in the face (data stays in newtons)
    state = LiveState(filtered_n=19.6133, link_kind="sim", rate_hz=80)
    console = Console(record=True, width=200, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(render(state, "test", units="kg"))
    console.print(render(state, "test"))
    text = console.export_text()
    console.file.close()
    assert "  2.0 kgf  (limit 1.02 kgf" in text  # 10 N default limit
    assert " 19.6 N  (limit 10 N" in text


def test_a_low_battery_or_a_sensor_low_power_warning_is_said_in_words():
    # issue 15: the Progressor's low-power warning reaches the face as a Status of <= 5 %
    console = Console(record=True, width=200, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(render(LiveState(link_kind="ble", rate_hz=80, battery_pct=5), "test"))
    console.print(render(LiveState(link_kind="ble", rate_hz=80, battery_pct=96), "test"))
    text = console.export_text()
    console.file.close()
    assert "battery 5 % LOW: charge it soon" in text
    assert "battery 96 %  " in text
