"""``massagectl demo``: the neck routine on the built-in simulated ball, end to end."""

from __future__ import annotations

from device.routine.routines import load_routine
from ui.commands.recordings import add_record_option, record_folder
from ui.session_setup import prepare

DEMO_URL = "sim://ball?user=scripted"
DEMO_ROUTINE = "neck-relief"
#: neck-relief is about 8.5 minutes of routine time: at 5x the demo takes under two.
DEFAULT_SPEED = 5.0


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run the neck routine on the built-in simulated ball",
        description=(
            "Run the neck-relief routine on the built-in simulated sensor ball, pressed by a "
            "simulated person who follows each step (and once presses too hard near the "
            "neck, to show the safety stop). No hardware needed. The simulated person also "
            "answers the screening questions, and says so."
        ),
    )
    p.add_argument("--gui", action="store_true", help="show the live pressure window")
    add_record_option(p)
    p.add_argument(
        "--speed",
        type=float,
        default=DEFAULT_SPEED,
        metavar="K",
        help=f"simulation speed (default {DEFAULT_SPEED:g}: done in under two minutes)",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    args.record = record_folder(args.record, DEMO_ROUTINE)
    if args.gui:
        from ui.qt_check import check_window_can_open

        check_window_can_open()  # before Qt, which would abort the process
    prepared = prepare(DEMO_URL, speed=args.speed, simulated_user=True, record_dir=args.record)
    if args.gui:
        from ui.live_window import run_window

        return run_window(
            DEMO_URL,
            routine=DEMO_ROUTINE,
            speed=args.speed,
            unattended=True,
            record_dir=args.record,
            screening=prepared.screening,
            close_when_done=False,
            zones=prepared.zones,
        )
    import asyncio

    from ui.commands.routine import run_routine

    return asyncio.run(
        run_routine(
            load_routine(DEMO_ROUTINE, zones=prepared.zones),
            prepared,
            record_dir=args.record,
            unattended=True,
        )
    )
