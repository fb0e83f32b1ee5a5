"""``massagectl routines``: list the built-in routines, show one, check a routine file.

Tables are drawn with rich in a terminal and as plain aligned text otherwise (pipes, tests).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from device.config.profiles import load_profile
from device.routine.routines import (
    Routine,
    Step,
    StepKind,
    builtin_names,
    fill_instruction,
    load_routine,
    profile_scale,
)
from dsp.zones import Zone


def register(sub) -> None:
    p = sub.add_parser(
        "routines",
        help="list, show and check guided routines",
        description=(
            "Without an action, list the built-in routines. 'show NAME|FILE' prints a "
            "routine's steps with zones, limits, bands and times; 'check FILE...' validates "
            "routine files (format: docs/routines.md)."
        ),
    )
    p.set_defaults(func=run_list)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    ls = actions.add_parser("list", help="list the built-in routines (the default)")
    ls.set_defaults(func=run_list)
    show = actions.add_parser("show", help="print a routine's steps")
    show.add_argument("routine", metavar="NAME|FILE", help="a built-in name or a TOML file")
    show.add_argument(
        "-i", "--instructions", action="store_true", help="also print each step's instruction"
    )
    show.add_argument(
        "--profile",
        metavar="FILE",
        help="show the routine under this zone profile (lowered zones scale their bands)",
    )
    show.set_defaults(func=run_show)
    check = actions.add_parser("check", help="validate routine files")
    check.add_argument("files", metavar="FILE", nargs="+", help="routine TOML files")
    check.set_defaults(func=run_check)


def format_duration(t_s: float) -> str:
    """``t_s`` as "8 min 20 s", "45 s"."""
    total = round(t_s)
    minutes, seconds = divmod(total, 60)
    if minutes == 0:
        return f"{seconds} s"
    return f"{minutes} min {seconds:02d} s" if seconds else f"{minutes} min"


def _range(lo: float | None, hi: float | None, unit: str) -> str:
    if lo is None or hi is None:
        return "-"
    return f"{lo:g}-{hi:g} {unit}" if lo != hi else f"{lo:g} {unit}"


def _kind(step: Step) -> str:
    return f"{step.kind.value} ({step.technique.value})" if step.technique else step.kind.value


def _resume(step: Step) -> str:
    if not step.applies_pressure and step.kind is not StepKind.STRETCH:
        return "-"
    r = step.resume
    return f"{r.kind.value} {r.after_s:g} s" if r.after_s is not None else r.kind.value


def step_rows(routine: Routine, zones: Mapping[str, Zone] | None = None) -> list[list[str]]:
    """One row per step, and per position of a pressure step (limits from ``zones``)."""
    rows: list[list[str]] = []
    for step in routine.steps:
        base = [str(step.index), step.id, _kind(step)]
        if step.kind in (StepKind.CUE, StepKind.AFTERCARE):
            rows.append([*base, "-", "-", "-", "-", "-", f"{step.duration_s:g} s", "-", "-", "-"])
            continue
        sides = step.sides.value
        if step.repetitions > 1:
            sides += f" x{step.repetitions}"
        hold = _range(step.hold_min_s, step.hold_max_s, "s")
        release = f"{step.release_s:g} s" if step.release_s is not None else "-"
        if step.kind is StepKind.STRETCH:
            zone = step.zone or "-"
            rows.append(
                [*base, sides, "-", zone, "-", "no pressure", hold, release, "off", _resume(step)]
            )
            continue
        # The first side's first sweep visits every position once, in order.
        first_sweep = step.units(zones)[: len(step.positions)]
        for i, (pos, unit) in enumerate(zip(step.positions, first_sweep, strict=True)):
            band = _range(*(unit.band_n or (None, None)), "N")
            vib = unit.vibration
            vibration = f"{vib.pattern} {vib.intensity_pct:g} %" if vib.is_on else "off"
            rows.append(
                [
                    *(base if i == 0 else ["", "", ""]),
                    sides if i == 0 else "",
                    pos.name or "-",
                    unit.zone_name,
                    f"{unit.limit_n:g} N",
                    band,
                    hold,
                    release,
                    vibration,
                    _resume(step) if i == 0 else "",
                ]
            )
    return rows


HEADERS = [
    "#",
    "step",
    "kind",
    "sides",
    "position",
    "zone",
    "limit",
    "band",
    "time",
    "release",
    "vibration",
    "resume",
]


def _plain_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [headers, *rows]
    ]
    return "\n".join(lines)


def _print_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for h in headers:
            table.add_column(h)
        for r in rows:
            table.add_row(*r)
        Console().print(table)
    else:
        print(title)
        print(_plain_table(headers, rows))


def run_list(args) -> int:
    rows = []
    for name in builtin_names():
        r = load_routine(name)
        rows.append(
            [name, r.title, r.mode.value, str(len(r.steps)), format_duration(r.approx_duration_s())]
        )
    _print_table(
        "Built-in routines ('massagectl routines show NAME' for the steps)",
        ["name", "title", "mode", "steps", "about"],
        rows,
    )
    return 0


def run_show(args) -> int:
    zones = None
    if args.profile is not None:
        profile = load_profile(args.profile)
        zones = profile.zones
    routine = load_routine(args.routine, zones=zones)
    print(f"{routine.title} [{routine.name}] from {routine.origin}")
    if zones is not None:
        scaled = [
            f"{name} x{profile_scale(zone):.2f}"
            for name, zone in zones.items()
            if profile_scale(zone) < 1.0
        ]
        print(
            f"profile {args.profile}: bands and limits scaled by the lowered limit over the "
            f"default one ({', '.join(scaled) or 'no zone lowered'}); vibration at most each "
            "zone's cap"
        )
    print(
        f"mode: {routine.mode.value}; {len(routine.steps)} steps; about "
        f"{format_duration(routine.approx_duration_s())} of routine time"
    )
    if routine.summary:
        print(routine.summary)
    _print_table("Steps (forces in N, times in s)", HEADERS, step_rows(routine, zones))
    if args.instructions:
        for step in routine.steps:
            print(f"\n{step.index}. {step.title} ({step.id})\n   {step.display_instruction()}")
            for pos in step.positions:
                if pos.instruction:
                    text = fill_instruction(pos.instruction, step.sides)
                    print(f"   - {pos.name}: {text}")
    return 0


def run_check(args) -> int:
    for path in args.files:
        routine = load_routine(path if ("/" in path or path.endswith(".toml")) else f"./{path}")
        n_units = sum(1 for _ in routine.units())
        print(
            f"{path}: ok: {routine.name}, {len(routine.steps)} steps, {n_units} units, about "
            f"{format_duration(routine.approx_duration_s())}"
        )
    return 0
