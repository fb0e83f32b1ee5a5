"""``massagectl plot [URL]``: the live pressure window (ui/live_window.py)."""

from __future__ import annotations

from device.errors import UsageError
from device.routine.routines import load_routine
from device.timebase import check_face_speed
from device.urls import parse_url
from ui.session_setup import add_lsl_options, check_lsl_options


def register(sub) -> None:
    p = sub.add_parser(
        "plot",
        help="live pressure window: plots, alarms, controls, routines",
        description=(
            "Open the live pressure window on a device: raw and filtered force over a rolling "
            "window, the zone's limit and warning band, hold progress, status, a large force "
            "readout, vibration and routine controls, and a STOP button (Space or Esc). "
            "Without URL the window opens with its Connect dialog."
        ),
    )
    p.add_argument("url", nargs="?", metavar="URL", help="device URL, e.g. sim://ball")
    p.add_argument(
        "--window-s", type=float, default=10.0, metavar="S", help="seconds shown (default 10)"
    )
    p.add_argument(
        "--speed",
        type=float,
        default=None,
        metavar="K",
        help="simulation speed (sim:// and replay:// only; default: the URL's, else 1)",
    )
    p.add_argument(
        "--fps", type=int, default=30, metavar="N", help="redraws per second (1-60, default 30)"
    )
    p.add_argument("--routine", metavar="NAME", help="start this routine once connected")
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="zone profile (TOML) lowering limits and caps (default: profile.toml in the "
        "config folder, if present)",
    )
    add_lsl_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ui.live_window import MAX_FPS, MIN_WINDOW_S, run_window
    from ui.qt_check import check_window_can_open
    from ui.session_setup import zone_table

    if args.window_s < MIN_WINDOW_S:
        raise UsageError(f"--window-s must be at least {MIN_WINDOW_S:g}")
    check_face_speed(parse_url(args.url), args.speed)  # refuse a bad speed before Qt starts
    if not 1 <= args.fps <= MAX_FPS:
        raise UsageError(f"--fps must be 1-{MAX_FPS}")
    zones, _profile = zone_table(args.profile)
    check_window_can_open()  # before Qt, which would abort the process
    if args.routine is not None:
        load_routine(args.routine, zones=zones)  # refuse a bad routine before Qt starts
    check_lsl_options(args)
    outlets = None
    if args.lsl:
        from device.recording.lsl import LslOutlets
        from device.timebase import TimeBase

        if args.url is None:
            raise UsageError("--lsl needs the device URL on the command line")
        outlets = LslOutlets(
            rate_hz=1000,
            source_id=f"massagectl:{args.url}",
            speed=TimeBase.for_url(parse_url(args.url), args.speed).speed,
        )
        if args.lsl_wait > 0:
            outlets.wait_for_consumers(args.lsl_wait)
    return run_window(
        args.url,
        routine=args.routine,
        speed=args.speed,
        window_s=args.window_s,
        fps=args.fps,
        zones=zones,
        lsl=outlets,
    )
