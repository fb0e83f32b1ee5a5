"""``massagectl export DIR --to edf|csv [-o FILE]``: a recording as files other tools read
(docs/export.md)."""

from __future__ import annotations

import sys
from pathlib import Path

from device.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export a recording as EDF+ (EDF viewers, MNE) or CSV",
        description=(
            "Write the recording in DIR as EDF+ (raw and filtered force in newtons, one EDF "
            "sample per recorded sample, every event as an annotation; needs the 'edf' "
            "extra) or as CSV (a samples table and an events table). docs/export.md says "
            "what each file holds."
        ),
    )
    p.add_argument("folder", metavar="DIR", help="a recording folder (--record's)")
    p.add_argument("--to", choices=("edf", "csv"), required=True, help="the file format")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help=(
            "where to write (default: beside DIR, DIR.edf, or DIR-samples.csv and "
            "DIR-events.csv); for csv FILE is the samples table and the events go to "
            "FILE's name with -events"
        ),
    )
    p.set_defaults(func=run)


def _outputs(folder: Path, to: str, output: str | None) -> tuple[Path, Path | None]:
    base = folder.resolve()
    if to == "edf":
        return (Path(output) if output else base.with_name(base.name + ".edf")), None
    samples = Path(output) if output else base.with_name(base.name + "-samples.csv")
    events = samples.with_name(samples.stem.removesuffix("-samples") + "-events.csv")
    if events == samples:
        raise UsageError(f"-o {output}: choose another name for the samples table")
    return samples, events


def run(args) -> int:
    from device.recording.export import export_csv, export_edf
    from device.recording.folder import read_recording
    from ui.event_words import describe_event

    folder = Path(args.folder)
    rec = read_recording(folder)
    for warning in rec.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    first, events = _outputs(folder, args.to, args.output)
    if args.to == "edf":
        written = export_edf(rec, first, words=describe_event)
        worst = max(s["resolution_n"] for s in written["signals"])
        print(
            f"wrote {first}: {written['samples']} samples at {written['rate_hz']} Hz, "
            f"{written['annotations']} annotations; 16-bit resolution {worst:.4f} N or finer"
        )
    else:
        assert events is not None
        written = export_csv(rec, first, events, words=describe_event)
        print(f"wrote {first} ({written['samples']} samples) and {events} "
              f"({written['events']} events)")  # fmt: skip
    return 0
