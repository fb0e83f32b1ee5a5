"""``massagectl analyze FILE``: run a recorded force trace through the live pipeline."""

from __future__ import annotations

import json
import sys

from device.errors import UsageError
from device.trace_io import read_force_csv
from dsp.analysis import DEFAULT_RELEASE_MIN_S, analyze_trace
from dsp.zones import DEFAULT_ZONES, UnknownZoneError, get_zone, with_limit


def register(sub) -> None:
    p = sub.add_parser(
        "analyze",
        help="analyze a force trace (CSV) for over-limits, warnings, stops and holds",
        description=(
            "Run a force trace through the same filters, safety supervisor and hold timing "
            "as a live session, and report over-limits, warnings, stops, faults, holds and "
            "fast releases. FILE is a CSV with a header and columns t_s,force_n (seconds, "
            "newtons; other columns are ignored). Output schema: docs/analyze.md."
        ),
    )
    p.add_argument("file", metavar="FILE", help="CSV with columns t_s,force_n")
    p.add_argument(
        "--zone",
        choices=sorted(DEFAULT_ZONES),
        default=None,
        metavar="Z",
        help="body zone whose limits apply (default: neck_back)",
    )
    p.add_argument(
        "--limit-n", type=float, metavar="X", help="zone limit in N (capped at its ceiling)"
    )
    p.add_argument("--band", metavar="LO:HI", help="hold band in N, e.g. 4:7")
    p.add_argument("--hold-min", type=float, metavar="S", help="minimum hold (s)")
    p.add_argument("--hold-max", type=float, metavar="S", help="maximum hold (s)")
    p.add_argument(
        "--release-min",
        type=float,
        default=DEFAULT_RELEASE_MIN_S,
        metavar="S",
        help=f"shortest allowed release (s; default {DEFAULT_RELEASE_MIN_S:g})",
    )
    p.add_argument(
        "--motor-hz", type=float, metavar="F", help="motor was vibrating at F Hz (notched)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def _band(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        lo_s, hi_s = text.split(":")
        lo, hi = float(lo_s), float(hi_s)
    except ValueError:
        raise UsageError(f"--band must be LO:HI in newtons, got {text!r}") from None
    if not 0 < lo < hi:
        raise UsageError(f"--band needs 0 < LO < HI, got {text!r}")
    return lo, hi


def run(args) -> int:
    try:
        zone = get_zone(args.zone)
    except UnknownZoneError as exc:
        raise UsageError(str(exc.args[0])) from None
    if args.limit_n is not None:
        try:
            zone, warning = with_limit(zone, args.limit_n)
        except ValueError as exc:
            raise UsageError(f"--limit-n: {exc}") from None
        if warning:
            print(f"massagectl analyze: warning: {warning}", file=sys.stderr)
    band = _band(args.band)
    for name in ("hold_min", "hold_max", "release_min", "motor_hz"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {value:g}")
    if band is None and (args.hold_min is not None or args.hold_max is not None):
        raise UsageError("--hold-min/--hold-max need --band LO:HI")
    if band is not None and band[1] > zone.band_max_n:
        print(
            f"massagectl analyze: warning: band top {band[1]:g} N is over 80 % of the "
            f"{zone.name} limit ({zone.band_max_n:g} N)",
            file=sys.stderr,
        )
    trace = read_force_csv(args.file)
    try:
        report = analyze_trace(
            trace.t_s,
            trace.force_n,
            zone,
            band_n=band,
            hold_min_s=args.hold_min,
            hold_max_s=args.hold_max,
            release_min_s=args.release_min,
            motor_hz=args.motor_hz,
        )
    except ValueError as exc:  # e.g. a sample rate too low for the filters
        raise UsageError(f"{args.file}: {exc}") from exc
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)
    return 0


def _print_table(report: dict) -> None:
    s = report["summary"]
    print(
        f"zone {s['zone']} (limit {s['limit_n']:g} N), {s['samples']} samples at "
        f"{s['rate_hz']:g} Hz, {s['duration_s']:g} s"
    )
    print(f"{'type':<13} {'time_s':>9}  details")
    for e in report["events"]:
        when = e.get("t_s", e.get("start_s"))
        details = ", ".join(f"{k}={v}" for k, v in e.items() if k not in ("type", "t_s"))
        print(f"{e['type']:<13} {when:>9.3f}  {details}")
    if not report["events"]:
        print("(no events)")
    band = "-" if s["time_in_band_s"] is None else f"{s['time_in_band_s']:g} s"
    print(
        f"peak {s['peak_n']:g} N filtered ({s['peak_raw_n']:g} N raw) at {s['peak_t_s']:g} s; "
        f"time in band {band}; time over the limit {s['time_over_limit_s']:g} s"
    )
    print("counts: " + ", ".join(f"{k} {v}" for k, v in s["counts"].items()))
