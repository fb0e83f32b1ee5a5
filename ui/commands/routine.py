"""``massagectl routine``: run a guided routine on a device, with the live terminal view."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

from rich.console import Console

from device.routine.routines import load_routine
from device.routine.runner import RoutineRunner, RunEnd
from device.session.reconnect import DEFAULT_RECONNECT_TIMEOUT_S
from dsp.pipeline import describe_rate
from ui.commands.recordings import add_record_option, record_folder
from ui.link_notice import LinkNotice, add_reconnect_option, check_reconnect_timeout
from ui.session_setup import (
    add_lsl_options,
    check_lsl_options,
    open_run,
    prepare,
    zone_table,
)
from ui.terminal_view import TerminalView, summary_table
from ui.units import add_units_option

EXIT_CODES = {RunEnd.COMPLETED: 0, RunEnd.SYMPTOM: 3}
EPILOG = """\
keys while it runs (in a terminal):
  space   STOP now (the session ends)
  p       stop: pain, dizziness or tingling (ends the session with advice)
  r       go on after a stop, once you have eased off
  w       pause / resume (vibration stops at once; the step starts over)

exit codes: 0 routine completed; 1 ended early (a stop whose step ends the session, STOP,
lost link); 2 error or screening refused; 3 you reported pain, dizziness or tingling.
"""


def register(sub) -> None:
    p = sub.add_parser(
        "routine",
        help="run a guided routine on a device",
        description=(
            "Run a guided routine (a built-in name, see 'massagectl routines', or a routine "
            "file) on a device, step by step, with vibration per step and the safety "
            "supervisor watching every sample. A real device needs the screening questions "
            "answered first (in the terminal, or --screening FILE)."
        ),
        epilog=EPILOG,
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    p.add_argument("routine", metavar="NAME|FILE", help="built-in routine name or TOML file")
    p.add_argument("--device", required=True, metavar="URL", help="e.g. serial:///dev/ttyACM0")
    add_record_option(p)
    add_lsl_options(p)
    add_units_option(p)
    p.add_argument("--screening", metavar="FILE", help="screening answers (TOML or JSON)")
    add_reconnect_option(p)
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="zone profile that lowers limits (default: profile.toml in the config folder, "
        "if there is one; see docs/profiles.md)",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=None,
        metavar="K",
        help="simulation speed (sim:// and replay:// only)",
    )
    p.add_argument(
        "--unattended",
        action="store_true",
        help="resume after a stop by itself once force has reset (implied without a terminal)",
    )
    p.set_defaults(func=run)


async def run(args) -> int:
    check_reconnect_timeout(args.reconnect_timeout)
    check_lsl_options(args)
    args.record = record_folder(args.record, Path(str(args.routine)).stem)
    load_routine(args.routine, zones=zone_table(args.profile)[0])  # refuse bad input first
    prepared = prepare(
        args.device,
        speed=args.speed,
        screening_file=args.screening,
        record_dir=args.record,
        profile_path=args.profile,
    )
    routine = load_routine(args.routine, zones=prepared.zones)
    return await run_routine(
        routine,
        prepared,
        record_dir=args.record,
        unattended=args.unattended,
        reconnect_timeout_s=args.reconnect_timeout,
        lsl=args.lsl,
        lsl_wait_s=args.lsl_wait,
        units=args.units,
    )


async def run_routine(
    routine,
    prepared,
    *,
    record_dir=None,
    unattended=False,
    reconnect_timeout_s: float = DEFAULT_RECONNECT_TIMEOUT_S,
    lsl: bool = False,
    lsl_wait_s: float = 0.0,
    units: str = "N",
) -> int:
    # a pipe or a log gets full-width lines rather than 80-column wraps
    console = Console() if sys.stdout.isatty() else Console(width=160)
    notice = LinkNotice(reconnect_timeout_s)
    async with open_run(
        prepared,
        record_dir=record_dir,
        reconnect_timeout_s=reconnect_timeout_s,
        lsl=lsl,
        lsl_wait_s=lsl_wait_s,
        routine=routine,
    ) as run:
        interactive = sys.stdin.isatty() and console.is_terminal
        runner = RoutineRunner(
            run.session,
            routine,
            run.pipeline,
            zones=prepared.zones,
            unattended=unattended or not interactive,
            screening=prepared.screening.to_record() if prepared.screening else None,
            live=run.live,
        )
        # what the sensor's rate means for safety, once, before anything runs
        console.print(describe_rate(run.session.rate_hz))
        for note in run.pipeline.notes():
            console.print(f"  {note}", style="dim")
        if runner.unattended and not unattended:
            console.print(
                "No terminal: after a stop the routine goes on by itself once force has eased off."
            )
        runner.add_listener(notice.on_event)
        countdown = asyncio.get_running_loop().create_task(notice.run(), name="link-notice")
        view = TerminalView(runner, console, units=units)
        try:
            summary = await view.run(runner.run)
        except asyncio.CancelledError:
            # Ctrl-C: the runner stopped the motor and closed its steps; say what was done
            _print_summary(console, view, runner.summary, record_dir)
            raise
        finally:
            countdown.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await countdown
            run.finish(runner.summary.to_dict())
    _print_summary(console, view, summary, record_dir)
    return EXIT_CODES.get(summary.end, 1)


def _print_summary(console: Console, view: TerminalView, summary, record_dir) -> None:
    title = f"{summary.routine}: {summary.end.value}"
    console.print(summary_table(view.summary(), title))
    console.print(
        f"{summary.message}; vibration {summary.vibration_s:.0f} s, {summary.stops} stop(s)."
    )
    if summary.advice:
        console.print(summary.advice, style="bold")
    if record_dir:
        console.print(f"recorded to {record_dir}")
    if summary.end is RunEnd.COMPLETED:
        console.print("Afterwards, warmth helps: a warm compress or a warm shower.")
