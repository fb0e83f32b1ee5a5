"""The terminal view's keys reach the runner, and a frame renders from the live state."""

from __future__ import annotations

from rich.console import Console

from device.control.supervised import LiveState
from dsp.decisions import SafetyState
from ui.terminal_view import TerminalView, render


class _Runner:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.paused = False
        self.state = LiveState()

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
