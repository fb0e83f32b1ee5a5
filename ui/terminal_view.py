"""The routine's terminal face: a live panel (rich) and single-key controls.

In a terminal it redraws ~8 times a second from ``LiveState`` (never driving safety: the
supervisor runs on every batch in ``device``) and reads keys without Enter:

    space / s   STOP now (the session ends)
    p           stop: pain, dizziness or tingling (ends the session with advice)
    r           go on after a stop (once force has eased off)
    w           pause / resume (vibration stops; the step starts over on resume)

Without a terminal (a pipe, CI) it prints one plain line per step and per stop instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import termios
import tty
from collections.abc import Callable, Iterator

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from device.control.supervised import LiveState
from device.routine.progress import Progress, RoutineProgress, format_duration
from device.routine.runner import RoutineRunner, RunSummary
from dsp.decisions import SafetyState
from dsp.events import (
    Event,
    Fault,
    LinkLost,
    Rearmed,
    StepFinished,
    StepOutcome,
    StepPaused,
    StepStarted,
    Stop,
    describe_cause,
    describe_outcome,
)
from dsp.pipeline import describe_rate
from dsp.session_summary import SessionSummary, summarize_session
from ui.battery import battery_text
from ui.units import figure, label, shown

REDRAW_S = 0.125
GAUGE_WIDTH = 40
KEY_HELP = (
    "[space] STOP   [p] pain, dizziness or tingling   [r] go on after a stop   [w] pause/resume"
)


def _gauge(state: LiveState, units: str = "N") -> Text:
    unit = state.unit
    limit = getattr(unit, "limit_n", None) or 10.0
    band = getattr(unit, "band_n", None)
    scale = max(limit * 1.25, state.filtered_n, 1.0)
    cells = []
    for i in range(GAUGE_WIDTH):
        f = (i + 0.5) / GAUGE_WIDTH * scale
        if f <= state.filtered_n:
            style = "red" if f >= limit else "yellow" if f >= 0.8 * limit else "green"
            cells.append(("█", style))
        elif band and band[0] <= f <= band[1]:
            cells.append(("░", "cyan"))
        elif abs(f - limit) < scale / GAUGE_WIDTH:
            cells.append(("│", "red"))
        else:
            cells.append(("·", "dim"))
    text = Text()
    for ch, style in cells:
        text.append(ch, style=style)
    u = label(units)
    text.append(
        f"  {shown(state.filtered_n, units):5.1f} {u}  (limit {figure(limit, units)} {u}",
        style="bold",
    )
    if band:
        lo, hi = figure(band[0], units), figure(band[1], units)
        text.append(f", aim {lo}-{hi} {u}", style="cyan")
    text.append(")")
    return text


def _bar(fraction: float, style: str) -> Text:
    filled = round(GAUGE_WIDTH * min(1.0, max(0.0, fraction)))
    return Text("━" * filled, style=style) + Text("━" * (GAUGE_WIDTH - filled), style="dim")


def hold_countdown(state: LiveState) -> str:
    """The hold line's words: how long held, and how long to go (or release now)."""
    held = f"hold {state.hold_s:4.1f} s of {state.hold_min_s:g}-{state.hold_max_s:g} s"
    if state.hold_min_s is None:
        return held
    left = state.hold_min_s - state.hold_s
    if state.hold_s <= 0:
        return f"{held}: press into the band to start"
    if left > 0:
        return f"{held}: {left:4.1f} s to go"
    return f"{held}: hold reached, release slowly"


def progress_line(progress: Progress) -> str:
    """The routine's overall progress in words."""
    pct = round(100 * progress.fraction)
    return (
        f"  {pct:3d} %  {progress.done} of {progress.count} steps done, "
        f"about {format_duration(progress.left_s)} left"
    )


def render(
    state: LiveState,
    title: str,
    *,
    progress: Progress | None = None,
    paused: bool = False,
    units: str = "N",
) -> Panel:
    """One frame of the live panel. ``progress``: the routine's, when known; ``paused``: the
    person paused the routine (shown until resumed, whatever else changes); ``units``: "N"
    or "kg" (kilograms-force) for the force figures."""
    unit = state.unit
    head = Text()
    if unit is not None:
        head.append(f"Step {state.unit_number}/{state.unit_count}: ", style="bold")
        head.append(f"{unit.step.title} ({unit.label})", style="bold")
        head.append(f"  zone {unit.zone_name}", style="dim")
    else:
        head.append("Starting...", style="bold")
    rows: list = [head]
    if progress is not None:
        rows.append(_bar(progress.fraction, "blue") + Text(progress_line(progress)))
    if paused:
        rows.append(
            Text(
                "PAUSED: vibration is off. Press w to resume (the step starts over).",
                style="bold black on cyan",
            )
        )
    rows.append(Text(state.instruction, style="italic"))
    if state.unit_deadline_t_s is not None and not state.hold_min_s and not paused:
        left = max(0.0, state.unit_deadline_t_s - state.t_s)
        rows.append(Text(f"Time left in this step: {left:5.1f} s"))
    if state.hold_min_s and not paused:
        rows.append(
            _bar(state.hold_s / state.hold_min_s, "green") + Text(f"  {hold_countdown(state)}")
        )
    rows.append(_gauge(state, units))
    rows.append(Text(f"Vibration {state.vibration_pct:4.0f} %"))
    if state.alarm:
        rows.append(Text(f"STOPPED: {describe_cause(state.alarm)}", style="bold white on red"))
    elif state.safety is SafetyState.WARNING:
        rows.append(Text("Near the limit: ease off a little", style="bold black on yellow"))
    if state.prompt and not paused:
        rows.append(Text(state.prompt, style="bold"))
    battery = battery_text(state.battery_pct)
    nominal = state.nominal_rate_hz
    sensor = f" ({describe_rate(nominal, short=True)})" if nominal else ""
    rows.append(
        Text(
            f"{state.link_kind}  {state.rate_hz:.0f} Hz{sensor}  battery {battery}  "
            f"gaps {state.missed_batches}  CRC errors {state.crc_errors}  "
            f"latency {state.latency_s * 1000:.0f} ms",
            style="dim",
        )
    )
    rows.append(Text(KEY_HELP, style="dim"))
    if state.alarm:
        border = "red"
    elif state.safety is SafetyState.WARNING:
        border = "yellow"
    else:
        border = "cyan" if paused else "blue"
    return Panel(Group(*rows), title=title, border_style=border)


def summary_table(summary: SessionSummary, title: str) -> Table:
    """Per step: state, holds and durations, time in band, peak, pauses, stops with causes
    (``dsp.session_summary``: the one summary every face renders)."""
    table = Table(title=title)
    for col in ("step", "zone", "state", "holds (s)", "in band (s)", "peak (N)", "stops"):
        table.add_column(col)
    for st in summary.steps:
        holds = ", ".join(f"{h:.1f}" for h in st.holds_s) or "-"
        stops = ", ".join(n.words for n in st.stops) or "-"
        state = st.state
        if st.restarts:
            state += f", {st.restarts} restart(s)"
        if st.pauses:
            state += f", paused {st.pauses}x"
        table.add_row(
            st.unit,
            st.zone,
            state,
            holds,
            "-" if st.time_in_band_s is None else f"{st.time_in_band_s:.1f}",
            "-" if st.peak_n is None else f"{st.peak_n:.1f}",
            stops,
        )
    return table


@contextlib.contextmanager
def _cbreak(fd: int) -> Iterator[None]:
    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


class TerminalView:
    """Shows ``runner`` in a terminal while it runs, with keys; plain lines otherwise."""

    def __init__(
        self, runner: RoutineRunner, console: Console | None = None, *, units: str = "N"
    ) -> None:
        self.runner = runner
        self.units = units
        self.console = console or Console()
        self.interactive = sys.stdin.isatty() and self.console.is_terminal
        self._last_unit = None
        #: every event of the run, for the summary at the end
        self.events: list[Event] = []
        self.progress = RoutineProgress(runner.units)
        runner.add_listener(self.events.append)
        runner.add_listener(self.progress.on_event)
        runner.add_listener(self._on_event)

    def frame(self) -> Panel:
        """The panel as it should look now."""
        title = f"massagectl: {self.runner.routine.title}"
        state = self.runner.state
        return render(
            state,
            title,
            progress=self.progress.at(state),
            paused=bool(self.runner.paused),
            units=self.units,
        )

    def summary(self) -> SessionSummary:
        """The session's summary from the events so far (dsp.session_summary)."""
        return summarize_session(self.events)

    def _on_event(self, event: Event) -> None:
        if self.interactive:
            return
        if isinstance(event, StepStarted):
            band = event.band_n
            aim = f", aim {band[0]:g}-{band[1]:g} N" if band else ""
            p = self.progress.at(self.runner.state)
            self.console.print(
                f"[{event.t_s:7.1f} s] step {event.unit or event.step}: zone {event.zone}"
                f" (limit {event.limit_n:g} N{aim}); {p.done} of {p.count} steps done,"
                f" about {format_duration(p.left_s)} left"
            )
        elif isinstance(event, Stop | Fault | LinkLost):
            if event.cause is not None:
                what = describe_cause(event.cause)
            else:  # a fault of the loop itself
                what = (event.error if isinstance(event, Fault) else None) or str(event.kind)
            self.console.print(f"[{event.t_s:7.1f} s] STOP: {what}")
        elif isinstance(event, Rearmed):
            self.console.print(f"[{event.t_s:7.1f} s] going on")
        elif isinstance(event, StepPaused):
            self.console.print(f"[{event.t_s:7.1f} s] paused: {event.unit or event.step}")
        elif isinstance(event, StepFinished) and event.outcome not in (None, StepOutcome.COMPLETED):
            self.console.print(
                f"[{event.t_s:7.1f} s] step {event.unit or event.step}: NOT DONE: "
                f"{describe_outcome(event.outcome)}"
            )

    def _key(self, ch: str) -> None:
        if ch in (" ", "s", "S"):
            self.runner.user_stop()
        elif ch in ("p", "P"):
            self.runner.report_symptom()
        elif ch in ("r", "R"):
            self.runner.request_rearm()
        elif ch in ("w", "W"):
            if self.runner.paused:
                self.runner.resume()
            else:
                self.runner.pause()

    async def run(self, work: Callable[[], asyncio.Future]) -> RunSummary:
        """Run ``work()`` (the runner's ``run``) with the view on; returns its summary."""
        if not self.interactive:
            return await work()
        fd = sys.stdin.fileno()
        loop = asyncio.get_running_loop()
        with (
            _cbreak(fd),
            Live(
                self.frame(),
                console=self.console,
                auto_refresh=False,
                transient=False,
            ) as live,
        ):
            loop.add_reader(fd, lambda: self._key(os.read(fd, 1).decode(errors="ignore")))
            task = asyncio.ensure_future(work())
            try:
                while not task.done():
                    live.update(self.frame(), refresh=True)
                    await asyncio.wait({task}, timeout=REDRAW_S)
                live.update(self.frame(), refresh=True)
            finally:
                loop.remove_reader(fd)
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        return task.result()
