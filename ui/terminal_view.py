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
from device.routine.runner import RoutineRunner, RunSummary
from dsp.decisions import SafetyState
from dsp.events import Event, Fault, LinkLost, Rearmed, StepStarted, Stop, describe_cause
from dsp.pipeline import describe_rate

REDRAW_S = 0.125
GAUGE_WIDTH = 40
KEY_HELP = (
    "[space] STOP   [p] pain, dizziness or tingling   [r] go on after a stop   [w] pause/resume"
)


def _gauge(state: LiveState) -> Text:
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
    text.append(f"  {state.filtered_n:5.1f} N  (limit {limit:g} N", style="bold")
    if band:
        text.append(f", aim {band[0]:g}-{band[1]:g} N", style="cyan")
    text.append(")")
    return text


def render(state: LiveState, title: str) -> Panel:
    """One frame of the live panel."""
    unit = state.unit
    head = Text()
    if unit is not None:
        head.append(f"Step {state.unit_number}/{state.unit_count}: ", style="bold")
        head.append(f"{unit.step.title} ({unit.label})", style="bold")
        head.append(f"  zone {unit.zone_name}", style="dim")
    else:
        head.append("Starting...", style="bold")
    rows: list = [head, Text(state.instruction, style="italic")]
    if state.unit_deadline_t_s is not None:
        left = max(0.0, state.unit_deadline_t_s - state.t_s)
        rows.append(Text(f"Time left: {left:5.1f} s"))
    if state.hold_min_s:
        filled = round(GAUGE_WIDTH * min(1.0, state.hold_s / state.hold_min_s))
        bar = Text("━" * filled, style="green") + Text("━" * (GAUGE_WIDTH - filled), style="dim")
        rows.append(
            bar
            + Text(f"  hold {state.hold_s:4.1f} s of {state.hold_min_s:g}-{state.hold_max_s:g} s")
        )
    rows.append(_gauge(state))
    rows.append(Text(f"Vibration {state.vibration_pct:4.0f} %"))
    if state.alarm:
        rows.append(Text(f"STOPPED: {describe_cause(state.alarm)}", style="bold white on red"))
    elif state.safety is SafetyState.WARNING:
        rows.append(Text("Near the limit: ease off a little", style="bold black on yellow"))
    if state.prompt:
        rows.append(Text(state.prompt, style="bold"))
    battery = f"{state.battery_pct} %" if state.battery_pct is not None else "?"
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
    border = "red" if state.alarm else "yellow" if state.safety is SafetyState.WARNING else "blue"
    return Panel(Group(*rows), title=title, border_style=border)


def summary_table(summary: RunSummary) -> Table:
    """Per unit: holds and durations, time in band, peak, stops with causes."""
    table = Table(title=f"{summary.routine}: {summary.end.value}")
    for col in ("step", "zone", "holds (s)", "in band (s)", "peak (N)", "stops"):
        table.add_column(col)
    for u in summary.units:
        holds = ", ".join(f"{h['duration_s']:.1f}" for h in u.holds) or "-"
        stops = ", ".join(describe_cause(s["cause"]) for s in u.stops) or "-"
        table.add_row(
            u.label + ("" if u.completed else " (not completed)"),
            u.zone,
            holds,
            f"{u.time_in_band_s:.1f}" if u.band_n else "-",
            f"{u.peak_n:.1f}",
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

    def __init__(self, runner: RoutineRunner, console: Console | None = None) -> None:
        self.runner = runner
        self.console = console or Console()
        self.interactive = sys.stdin.isatty() and self.console.is_terminal
        self._last_unit = None
        runner.add_listener(self._on_event)

    def _on_event(self, event: Event) -> None:
        if self.interactive:
            return
        if isinstance(event, StepStarted):
            band = event.band_n
            aim = f", aim {band[0]:g}-{band[1]:g} N" if band else ""
            self.console.print(
                f"[{event.t_s:7.1f} s] step {event.unit or event.step}: zone {event.zone}"
                f" (limit {event.limit_n:g} N{aim})"
            )
        elif isinstance(event, Stop | Fault | LinkLost):
            if event.cause is not None:
                what = describe_cause(event.cause)
            else:  # a fault of the loop itself
                what = (event.error if isinstance(event, Fault) else None) or str(event.kind)
            self.console.print(f"[{event.t_s:7.1f} s] STOP: {what}")
        elif isinstance(event, Rearmed):
            self.console.print(f"[{event.t_s:7.1f} s] going on")

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
        title = f"massagectl: {self.runner.routine.title}"
        with (
            _cbreak(fd),
            Live(
                render(self.runner.state, title),
                console=self.console,
                auto_refresh=False,
                transient=False,
            ) as live,
        ):
            loop.add_reader(fd, lambda: self._key(os.read(fd, 1).decode(errors="ignore")))
            task = asyncio.ensure_future(work())
            try:
                while not task.done():
                    live.update(render(self.runner.state, title), refresh=True)
                    await asyncio.wait({task}, timeout=REDRAW_S)
                live.update(render(self.runner.state, title), refresh=True)
            finally:
                loop.remove_reader(fd)
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        return task.result()
