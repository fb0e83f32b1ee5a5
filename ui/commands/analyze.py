"""``massagectl analyze FILE|DIR``: run a force trace (CSV) or a recording folder through the
live pipeline. A recording brings its own zones, bands and motor frequency (its events);
the zone and band options are for CSV traces only."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from device.config.profiles import load_zones
from device.errors import UsageError
from device.recording.trace_io import read_force_csv
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
            "newtons; other columns are ignored), or a recording folder (--record), whose "
            "events give the zone, band and motor frequency over time. Output schema: "
            "docs/analyze.md and docs/recording.md."
        ),
    )
    p.add_argument(
        "file", metavar="FILE", help="CSV with columns t_s,force_n, or a recording folder"
    )
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
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="zone profile (TOML) that lowers limits (default: profile.toml in the config "
        "folder when present; docs/profiles.md)",
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


_TRACE_ONLY = ("zone", "limit_n", "profile", "band", "hold_min", "hold_max", "motor_hz")


def run(args) -> int:
    if Path(args.file).is_dir():
        return _run_recording(args)
    zones, profile_warnings = load_zones(args.profile)
    for text in profile_warnings:
        print(f"massagectl analyze: warning: {text}", file=sys.stderr)
    try:
        zone = get_zone(args.zone, zones)
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


def _run_recording(args) -> int:
    """Analyze a recording folder: its own timeline sets zone, band and vibration."""
    from device.recording.folder import RecordingWarning, read_recording
    from device.routine.timeline import analyze_recording

    given = [n for n in _TRACE_ONLY if getattr(args, n) is not None]
    if given:
        names = ", ".join("--" + n.replace("_", "-") for n in given)
        raise UsageError(
            f"{names}: a recording's zones, limits, bands and motor frequency come from its "
            "events; these options are for CSV traces"
        )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecordingWarning)  # reported below, on stderr
        rec = read_recording(args.file)
    for text in rec.warnings:
        print(f"massagectl analyze: warning: {text}", file=sys.stderr)
    report = analyze_recording(rec)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_recording(report)
    return 0


def _print_recording(report: dict) -> None:
    s = report["summary"]
    r = report["recording"]
    state = "complete" if r["complete"] else "incomplete (the recorder did not finish)"
    print(
        f"recording {r['folder']} ({state}): {s['samples']} samples at {s['rate_hz']:g} Hz, "
        f"{s['duration_s']:g} s; routine {r['routine'] or '-'}"
    )
    print(f"{'step':<44} {'zone':<18} {'band_n':>9} {'in band':>8} {'peak':>7}  holds / stops")
    for st in report["steps"]:
        if st["label"] is None and not st["holds"] and not st["stops"]:
            continue
        band = "-" if st["band_n"] is None else f"{st['band_n'][0]:g}:{st['band_n'][1]:g}"
        in_band = "-" if st["time_in_band_s"] is None else f"{st['time_in_band_s']:.1f} s"
        holds = ", ".join(f"hold {h['duration_s']:.1f} s" for h in st["holds"])
        stops = ", ".join(f"{e['type']} {e['cause']} at {e['t_s']:.2f} s" for e in st["stops"])
        print(
            f"{(st['label'] or '(between steps)')[:44]:<44} {st['zone']:<18} {band:>9} "
            f"{in_band:>8} {st['peak_n']:>5.1f} N  " + "; ".join(x for x in (holds, stops) if x)
        )
    band = "-" if s["time_in_band_s"] is None else f"{s['time_in_band_s']:g} s"
    print(
        f"peak {s['peak_n']:g} N filtered ({s['peak_raw_n']:g} N raw) at {s['peak_t_s']:g} s; "
        f"time in band {band}; time over the limit {s['time_over_limit_s']:g} s"
    )
    print("counts: " + ", ".join(f"{k} {v}" for k, v in s["counts"].items()))
