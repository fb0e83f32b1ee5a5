"""Pause and resume under supervision, the wait for "let go fully", and what report and
analyze make of the recording (issue 20). Virtual time: every figure is in device time."""

from __future__ import annotations

import asyncio
import io

import pytest
from rich.console import Console

from device.control.run import supervised_run
from device.recording.folder import read_recording
from device.routine.routines import parse_routine
from device.routine.runner import REACH_BAND_S, RoutineRunner, RunEnd
from device.routine.timeline import analyze_recording
from dsp.events import (
    Cause,
    Event,
    HoldReachedMin,
    StepFinished,
    StepOutcome,
    StepPaused,
    StepStarted,
    Stop,
)
from simulators.scripted_user import ScriptedUser
from ui.commands.report import build_report
from ui.terminal_view import TerminalView

pytestmark = pytest.mark.virtual_time

SPEED = 25.0
LET_GO_PROMPT = "Let go fully before the next step."

STEP_DOWN = """
format = 1
name = "step-down"
title = "Step down"
summary = "A shoulder hold, then a light one beside the spine."
mode = "self"
[[steps]]
id = "shoulder"
kind = "press_and_hold"
title = "Shoulder"
instruction = "Press into the top of the shoulder and hold."
zone = "upper_trapezius"
band_n = [15, 30]
hold_min_s = 4
hold_max_s = 8
release_s = 2
vibration = { pattern = "constant", intensity_pct = 40 }
[[steps]]
id = "neck"
kind = "press_and_hold"
title = "Neck"
instruction = "Press lightly beside the spine, then let go slowly."
zone = "neck_back"
band_n = [3, 7]
hold_min_s = 3
hold_max_s = 6
release_s = 2
vibration = { pattern = "constant", intensity_pct = 20 }
"""


class OverPress:
    """The simulated person's force, except for one over-press at a time: from the force
    they had to ``peak_n`` in 0.3 s, held 0.3 s, let go to nothing in 0.3 s, nothing for
    0.5 s more; then the scripted person's own plan again."""

    def __init__(self, user: ScriptedUser) -> None:
        self.user = user
        self.knots: list[tuple[float, float]] = []

    def press(self, t_s: float, peak_n: float) -> None:
        f0 = self.user.force_at(t_s)
        self.knots = [(t_s, f0), (t_s + 0.3, peak_n), (t_s + 0.6, peak_n), (t_s + 0.9, 0.0)]

    def __call__(self, t_s: float) -> float:
        k = self.knots
        if not k or t_s < k[0][0] or t_s > k[-1][0] + 0.5:
            return self.user.force_at(t_s)
        for (t0, f0), (t1, f1) in zip(k, k[1:], strict=False):
            if t_s <= t1:
                return f0 + (f1 - f0) * (t_s - t0) / (t1 - t0)
        return 0.0


async def _until(
    runner: RoutineRunner, task: asyncio.Future, cond, what: str, within_s: float = 60.0
) -> None:
    """Wait until ``cond()``; fail when the routine's ``task`` ends first (with its error,
    if it had one) or ``within_s`` of device time pass."""
    live = runner.live
    deadline = runner.state.t_s + within_s
    while not cond():
        if task.done():
            raise AssertionError(f"the routine ended before {what}: {task.result()}")
        assert runner.state.t_s < deadline, f"no {what} within {within_s:g} s of device time"
        live.changed.clear()
        waiter = asyncio.ensure_future(live.changed.wait())
        await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)


async def test_pause_and_let_go_are_supervised_and_the_paused_step_starts_over(tmp_path):
    routine = parse_routine(STEP_DOWN, "step-down.toml")
    user = ScriptedUser(overpress=False)
    folder = tmp_path / "rec"
    events: list[Event] = []
    shown_vs_judged: list[tuple[float, float, float]] = []
    async with supervised_run(
        "sim://ball", speed=SPEED, user=user, record_dir=folder, record_meta={}
    ) as run:
        link = run.session.link
        presser = OverPress(user)
        link.firmware.physics.force_source = presser
        runner = RoutineRunner(run.session, routine, run.pipeline, unattended=True, live=run.live)
        runner.add_listener(events.append)

        def judged(batch, result) -> None:
            unit = runner.state.unit
            limit_n = run.pipeline.zone.limit_n
            if unit is not None and unit.limit_n != limit_n:  # type: ignore[attr-defined]
                shown_vs_judged.append((runner.state.t_s, unit.limit_n, limit_n))  # type: ignore[attr-defined]

        runner.add_batch_listener(judged)
        task = asyncio.ensure_future(runner.run())
        # 1. a pause in the shoulder hold, once the hold has reached its minimum
        await _until(
            runner, task, lambda: any(isinstance(e, HoldReachedMin) for e in events), "a hold"
        )
        runner.pause()
        paused_at = runner.state.t_s
        # 2. while paused, the person presses past the shoulder's 40 N
        presser.press(link.timebase.now_s(), 48.0)
        await _until(runner, task, lambda: runner.state.t_s > paused_at + 4.0, "4 s of pause")
        assert not link.firmware.motor_on
        runner.resume()
        # 3. while the runner waits for "let go fully" before the neck step, a press past 40 N
        await _until(runner, task, lambda: runner.state.prompt == LET_GO_PROMPT, "'let go fully'")
        let_go_at = runner.state.t_s
        assert runner.state.unit.label == "shoulder"  # type: ignore[union-attr]
        presser.press(link.timebase.now_s(), 48.0)
        summary = await task
        run.finish(summary.to_dict())

    assert summary.end is RunEnd.COMPLETED, summary.message
    # the limit the faces show (the unit's) is the limit the supervisor judges by, always
    assert shown_vs_judged == []

    # both over-presses stopped, over the limit of the zone the ball was in (the shoulder's)
    stops = [e for e in events if isinstance(e, Stop)]
    assert [(e.cause, e.unit, e.limit_n) for e in stops] == [
        (Cause.OVER_LIMIT, "shoulder", 40.0),  # paused
        (Cause.OVER_LIMIT, None, 40.0),  # letting go, between the steps
    ]
    assert paused_at < stops[0].t_s < paused_at + 1.0
    assert let_go_at < stops[1].t_s < let_go_at + 1.0

    # the paused step was not finished at the pause: it started over after the resume and
    # the stop's re-arm, and finished on a hold of its own, not the one made before the pause
    shoulder = [e for e in events if getattr(e, "step", None) == "shoulder"]
    kinds = [type(e) for e in shoulder]
    assert kinds == [StepStarted, StepPaused, StepStarted, StepFinished]
    finished = shoulder[-1]
    assert isinstance(finished, StepFinished) and finished.completed
    assert finished.outcome == StepOutcome.COMPLETED
    assert finished.t_s - shoulder[-2].t_s > routine.step("shoulder").hold_min_s
    reached = [e.t_s for e in events if isinstance(e, HoldReachedMin) and e.unit == "shoulder"]
    assert len(reached) == 2 and reached[1] > shoulder[-2].t_s
    units = {u.label: u for u in summary.units}
    assert units["shoulder"].restarts == 1 and units["shoulder"].completed
    assert [s["cause"] for s in units["shoulder"].stops] == ["over_limit"]
    # the stop while letting go was re-armed before the neck step began: no restart there
    neck = [type(e) for e in events if getattr(e, "step", None) == "neck"]
    assert neck == [StepStarted, StepFinished]
    assert units["neck"].completed and not units["neck"].stops and not units["neck"].restarts

    # report and analyze of the recording agree on peaks and stops, and with the live run
    rec = read_recording(folder)
    analysis = analyze_recording(rec)
    report = build_report(rec, analysis)
    analysed = {s["label"]: s for s in analysis["steps"] if s["label"] is not None}
    between = [s for s in analysis["steps"] if s["label"] is None and s["stops"]]
    reported = {s["label"]: s for s in report["steps"]}
    for label in ("shoulder", "neck"):
        a, r, live = analysed[label], reported[label], units[label]
        assert r["peak_n"] == pytest.approx(a["peak_n"], abs=1e-3), label
        assert r["peak_n"] == pytest.approx(live.peak_n, abs=0.01), label
        assert [s["cause"] for s in r["stops"]] == [s["cause"] for s in a["stops"]], label
        assert [s["cause"] for s in a["stops"]] == [s["cause"] for s in live.stops], label
        for got, want in zip(a["stops"], live.stops, strict=True):
            assert got["t_s"] == pytest.approx(want["t_s"], abs=0.01), label
        assert r["time_in_band_s"] == pytest.approx(live.time_in_band_s, abs=0.05), label
    assert analysed["shoulder"]["peak_n"] > 45.0  # the pause's over-press is the step's
    assert analysed["neck"]["peak_n"] < 10.0  # the let-go's is not the neck step's
    assert [(s["stops"][0]["cause"], s["zone"]) for s in between] == [
        ("over_limit", "upper_trapezius")
    ]
    between_report = [s for s in report["steps"] if s["label"] == "(between steps)"]
    assert [s["stops"][0]["cause"] for s in between_report] == ["over_limit"]


NOBODY_PRESSES = """
format = 1
name = "unreached"
title = "Unreached"
summary = "A shoulder hold nobody makes."
mode = "self"
[[steps]]
id = "shoulder"
kind = "press_and_hold"
title = "Shoulder"
instruction = "Press into the top of the shoulder and hold."
zone = "upper_trapezius"
band_n = [15, 30]
hold_min_s = 10
hold_max_s = 15
release_s = 2
vibration = { pattern = "constant", intensity_pct = 40 }
"""


async def test_a_step_whose_band_is_never_reached_ends_early_and_says_so(tmp_path, capsys):
    """Before: the step ran hold_max + 30 s (45 s) vibrating at 40 % on a ball nobody
    pressed, and the routine said "routine completed" with 0.0 s in band."""
    from simulators.scenario import Scenario
    from ui.cli import main

    routine = parse_routine(NOBODY_PRESSES, "unreached.toml")
    folder = tmp_path / "rec"
    events: list[Event] = []
    async with supervised_run(
        "sim://ball", speed=SPEED, scenario=Scenario(name="idle"), record_dir=folder
    ) as run:
        fw = run.session.link.firmware
        runner = RoutineRunner(run.session, routine, run.pipeline, unattended=True, live=run.live)
        runner.add_listener(events.append)
        log = io.StringIO()
        TerminalView(runner, Console(file=log, width=160))  # a log, not a terminal
        summary = await runner.run()
        run.finish(summary.to_dict())
        assert not fw.motor_on
    assert "step shoulder: NOT DONE: the target band was never reached" in log.getvalue()
    (started,) = [e for e in events if isinstance(e, StepStarted)]
    (finished,) = [e for e in events if isinstance(e, StepFinished)]
    assert finished.outcome == StepOutcome.BAND_NOT_REACHED and not finished.completed
    assert finished.t_s - started.t_s == pytest.approx(REACH_BAND_S, abs=0.05)
    assert runner.state.prompt == "The target band was not reached: going on."
    # the motor ran from the step's start to its end, not beyond
    on = [e.t_s for e in fw.events if e.name == "vibrate" and e.detail["permille"] > 0]
    off = [e.t_s for e in fw.events if e.name in ("motor_off", "stop_received")]
    assert on and max(off) - min(on) < REACH_BAND_S + 0.5
    assert summary.end is RunEnd.COMPLETED
    assert summary.message == "routine completed; 1 of 1 steps never reached their band"
    assert summary.to_dict()["units_not_reached"] == 1
    assert summary.units[0].outcome == "band_not_reached"
    capsys.readouterr()
    assert main(["report", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "NOT DONE: the target band was never reached" in out
    assert "1 of 1 steps never reached their band" in out
