"""``massagectl report DIR [--png FILE] [--json]``: what happened in a recorded session.

Per step: holds and their durations, time in the target band, peak pressing force (the
filtered force: motor vibration leaking into the sensor is not pressing), and stops with
their causes. Those figures have one owner: the analysis of the recording's forces and
timeline (``device.routine.timeline.analyze_recording``, what ``massagectl analyze DIR``
prints), so report and analyze cannot disagree; the time between steps is listed when
something happened in it. How each step ended (completed, its outcome, restarts) comes from
the run summary the recorder saved at the end (``session.json``), when there is one (not
after a killed process, nor for a ``stream`` recording). Stops and faults are also listed
from the recorded events as they happened.
``--png`` draws force against the zone limits over time with holds and stops marked.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

from device.errors import InputFileError
from device.recording.folder import Recording, RecordingWarning, read_recording
from device.routine.timeline import analyze_recording
from dsp.events import Fault, StepOutcome, Stop, describe_outcome
from dsp.session_summary import summarize_session


def register(sub) -> None:
    p = sub.add_parser(
        "report",
        help="summarise a recording (per step: holds, time in band, peaks, stops) and plot it",
        description=(
            "Summarise a recording folder (made with --record): per step the holds and their "
            "durations, time in the target band, peak force and stops with their causes. "
            "With --png, also draw force (raw thin, filtered bold) against the zone limits "
            "over time with holds and stops marked. Format: docs/recording.md."
        ),
    )
    p.add_argument("folder", metavar="DIR", help="a recording folder")
    p.add_argument("--png", metavar="FILE", help="write a plot of the session to FILE (PNG)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--csv",
        metavar="FILE",
        help="write the session summary (one row per step: holds, time in band, peak, stops; "
        "the summary the terminal and the window show) as CSV to FILE ('-': standard output)",
    )
    p.set_defaults(func=run)


BETWEEN_STEPS = "(between steps)"


def _steps(analysis: dict[str, Any], summary: Any) -> list[dict[str, Any]]:
    """Per step, the analysis's figures; how it ended from the live summary's unit of the
    same label, if any."""
    units = summary.get("units", []) if isinstance(summary, dict) else []
    ended = {u.get("label"): u for u in units if isinstance(u, dict)}
    steps = []
    for st in analysis["steps"]:
        if st["label"] is None and not st["holds"] and not st["stops"]:
            continue
        unit = ended.get(st["label"]) if st["label"] is not None else None
        steps.append(
            {
                "label": st["label"] or BETWEEN_STEPS,
                "zone": st["zone"],
                "limit_n": st["limit_n"],
                "band_n": st["band_n"],
                "started_t_s": st["start_s"],
                "ended_t_s": st["end_s"],
                "completed": None if unit is None else unit.get("completed"),
                "outcome": None if unit is None else unit.get("outcome") or None,
                "restarts": None if unit is None else unit.get("restarts"),
                "holds_s": [h["duration_s"] for h in st["holds"]],
                "time_in_band_s": st["time_in_band_s"],
                "peak_n": st["peak_n"],
                "peak_raw_n": st["peak_raw_n"],
                "stops": [{"cause": e["cause"], "t_s": e["t_s"]} for e in st["stops"]],
            }
        )
    return steps


def build_report(rec: Recording, analysis: dict[str, Any]) -> dict[str, Any]:
    """The report as plain data (the --json output)."""
    meta = rec.meta
    summary = meta.get("summary")
    live = isinstance(summary, dict) and bool(summary.get("units"))
    device = meta.get("device") or {}
    stops = [
        {
            "kind": str(e.kind),
            "cause": None if e.cause is None else str(e.cause),
            "t_s": e.t_s,
            "unit": e.unit,
            "force_n": e.force_n if math.isfinite(e.force_n) else None,
        }
        for e in rec.events
        if isinstance(e, Stop | Fault)
    ]
    return {
        "folder": str(rec.folder),
        "started_at": meta.get("started_at"),
        "finished_at": meta.get("finished_at"),
        "complete": rec.complete,
        "device": {k: device.get(k) for k in ("model", "firmware", "serial_number")},
        "routine": (meta.get("routine") or {}).get("name"),
        "end": summary.get("end") if isinstance(summary, dict) else None,
        "message": summary.get("message") if isinstance(summary, dict) else None,
        "advice": summary.get("advice") if isinstance(summary, dict) else None,
        "samples": int(rec.t_s.size),
        "duration_s": analysis["summary"]["duration_s"],
        "source": (
            "analysis of the recording; how steps ended from the live summary"
            if live
            else "analysis of the recording"
        ),
        "steps": _steps(analysis, summary),
        "units_not_reached": summary.get("units_not_reached")
        if isinstance(summary, dict)
        else None,
        "stops": stops,
        "peak_n": analysis["summary"]["peak_n"],
        "peak_raw_n": analysis["summary"]["peak_raw_n"],
        "time_in_band_s": analysis["summary"]["time_in_band_s"],
        "warnings": list(rec.warnings),
    }


def run(args) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecordingWarning)  # reported below, on stderr
        rec = read_recording(args.folder)
    for text in rec.warnings:
        print(f"massagectl report: warning: {text}", file=sys.stderr)
    if args.csv:
        text = summarize_session(rec.events).csv_text()
        if args.csv == "-":
            sys.stdout.write(text)
            return 0
        try:
            Path(args.csv).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputFileError(f"{args.csv}: cannot write the CSV: {exc.strerror}") from exc
    analysis = analyze_recording(rec)
    report = build_report(rec, analysis)
    if args.csv:
        report["csv"] = args.csv
    if args.png:
        from ui.report_plot import write_png

        title = f"{report['routine'] or 'stream'} - {report['started_at'] or ''}"
        report["png"] = str(write_png(args.png, rec, analysis, title=title))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0


def _print(r: dict[str, Any]) -> None:
    dev = r["device"]
    state = "complete" if r["complete"] else "INCOMPLETE: the recorder did not finish"
    print(
        f"{r['routine'] or 'stream'} on {dev['model'] or '?'} (sn {dev['serial_number'] or '?'}), "
        f"started {r['started_at']}, {r['duration_s']:g} s of device time ({state})"
    )
    if r["end"]:
        print(f"ended: {r['end']}" + (f" ({r['message']})" if r["message"] else ""))
    print(f"per step, from the {r['source']}:")
    for st in r["steps"]:
        band = "" if not st["band_n"] else f" band {st['band_n'][0]:g}-{st['band_n'][1]:g} N"
        parts = [f"peak {st['peak_n']:.1f} N"]
        if st["time_in_band_s"] is not None:
            parts.append(f"in band {st['time_in_band_s']:.1f} s")
        if st["holds_s"]:
            parts.append("holds " + ", ".join(f"{h:.1f} s" for h in st["holds_s"]))
        for s in st["stops"]:
            parts.append(f"STOP {s['cause']} at {s['t_s']:.2f} s")
        if st.get("outcome") and st["outcome"] != StepOutcome.COMPLETED:
            parts.append(f"NOT DONE: {describe_outcome(st['outcome'])}")
        head = f"  {st['label']}: {st['zone']} (limit {st['limit_n']:g} N){band}"
        print(f"{head}; " + "; ".join(parts))
    if r["stops"]:
        print("stops and faults:")
        for s in r["stops"]:
            print(f"  {s['t_s']:9.3f} s  {s['kind']} {s['cause']}  ({s['unit'] or '-'})")
    else:
        print("no stops or faults")
    if r["advice"]:
        print(r["advice"])
    if r.get("png"):
        print(f"plot written to {r['png']}")
    if r.get("csv"):
        print(f"summary written to {r['csv']}")
