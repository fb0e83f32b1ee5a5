"""A recording folder as files other tools read (docs/export.md): EDF+ (EDF viewers, MNE,
EEGLAB) through pyedflib, and CSV (a table of samples, a table of events).

EDF+: signal 0 is the raw force (``force_n``), signal 1 the filtered force (``filtered_n``),
both in newtons at the recording's rate, one EDF sample per recorded sample in file order
(no resampling; a gap in the stream is not filled, so after a gap EDF time runs behind the
device's by the gap). EDF stores 16-bit integers: each signal's physical range is its
recorded minimum and maximum widened to whole 0.1 N, and its resolution
(``edf_resolution_n``) is that range / 65535. The last data record is completed by
repeating the last sample (EDF has whole records of ``RECORD_S``); the recorded count is in
the header's recording field ("samples=N"). A filtered value that is NaN (no pipeline ran)
is written as 0 N. Every event is an annotation at its device time from the first sample
(in time order): its text is the event's kind and, for a stop or fault, its cause (the
enum's names, e.g. ``stop over_limit``) then its words, cut to the 40 characters edflib
writes; the CSV keeps the whole text.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from device.errors import UsageError
from device.recording.folder import Recording
from dsp.events import Event, describe_cause

#: EDF data record length (seconds): pyedflib's, one second.
RECORD_S = 1.0
#: edflib writes at most this many characters of an annotation's text.
EDF_ANNOTATION_CHARS = 40
#: edflib's most annotation signals (so annotations in one data record).
EDF_MAX_ANNOTATION_SIGNALS = 64
EDF_DIGITAL_MIN = -32768
EDF_DIGITAL_MAX = 32767
SIGNALS = (("force_raw", "force_n"), ("force_filtered", "filtered_n"))


class MissingExtraError(UsageError):
    """An optional extra that a command needs is not installed."""


def event_label(event: Event, words: Callable[[Event], str] | None = None) -> str:
    """``kind[ cause]: words``: the enum's names first (what a script matches on), then
    what a person reads (the cause in words, ``dsp.events.describe_cause``, for an event
    with a cause; else ``words(event)``)."""
    cause = getattr(event, "cause", None)
    head = str(event.kind) + ("" if cause is None else f" {cause}")
    text = ""
    if cause is not None:
        text = describe_cause(cause)
    elif words is not None:
        text = words(event)
    return f"{head}: {text}" if text else head


def edf_resolution_n(physical_min: float, physical_max: float) -> float:
    """One EDF digital step in newtons for a signal with this physical range."""
    return (physical_max - physical_min) / (EDF_DIGITAL_MAX - EDF_DIGITAL_MIN)


def _physical_range(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return -1.0, 1.0
    low = math.floor(float(finite.min()) * 10 - 1) / 10
    high = math.ceil(float(finite.max()) * 10 + 1) / 10
    return low, high


def _rate_hz(rec: Recording) -> int:
    rate = rec.rate_hz
    if not rate > 0 or abs(rate - round(rate)) > 1e-6:
        raise UsageError(
            f"{rec.folder}: the recording's rate ({rate:g} Hz) is not a whole number of "
            "samples a second; EDF needs one"
        )
    return int(round(rate))


def export_edf(
    rec: Recording, path: str | Path, words: Callable[[Event], str] | None = None
) -> dict:
    """Write ``rec`` as EDF+ to ``path``; returns what was written (ranges, resolution,
    counts) for the command to report."""
    try:
        import pyedflib
    except ImportError:
        raise MissingExtraError(
            "EDF export needs pyedflib: pip install 'massagectl[edf]'"
        ) from None
    if rec.t_s.size == 0:
        raise UsageError(f"{rec.folder}: the recording has no samples to export")
    rate = _rate_hz(rec)
    per_record = int(round(rate * RECORD_S))
    n = int(rec.t_s.size)
    padded = -(-n // per_record) * per_record
    columns = []
    headers: list[dict[str, str | int | float | None]] = []
    written: dict = {"samples": n, "rate_hz": rate, "signals": []}
    for label, attr in SIGNALS:
        values = np.asarray(getattr(rec, attr), dtype=np.float64)
        values = np.where(np.isfinite(values), values, 0.0)
        low, high = _physical_range(values)
        tail = np.full(padded - n, values[-1])
        columns.append(np.concatenate((values, tail)))
        headers.append(
            {
                "label": label,
                "dimension": "N",
                "sample_frequency": rate,
                "physical_min": low,
                "physical_max": high,
                "digital_min": EDF_DIGITAL_MIN,
                "digital_max": EDF_DIGITAL_MAX,
                "transducer": "force sensor",
                "prefilter": "" if attr == "force_n" else "massagectl pipeline",
            }
        )
        written["signals"].append(
            {"label": label, "physical_min_n": low, "physical_max_n": high,
             "resolution_n": edf_resolution_n(low, high)}
        )  # fmt: skip
    out = Path(path)
    try:
        writer = pyedflib.EdfWriter(str(out), len(SIGNALS), file_type=pyedflib.FILETYPE_EDFPLUS)
    except OSError as exc:
        raise UsageError(f"{out}: cannot write: {exc}") from None
    # edflib writes as many annotations in a data record as there are annotation signals
    # (the rest were dropped at close): enough of them for the events, in time order
    records = padded // per_record
    per_record_events = -(-len(rec.events) // records) + 1
    try:
        if per_record_events > EDF_MAX_ANNOTATION_SIGNALS:
            raise UsageError(
                f"{rec.folder}: {len(rec.events)} events in {records} s is more than EDF+ "
                f"through edflib holds ({EDF_MAX_ANNOTATION_SIGNALS} a second): export --to csv"
            )
        writer.set_number_of_annotation_signals(per_record_events)
        writer.setSignalHeaders(headers)
        writer.setEquipment("massagectl")
        writer.setRecordingAdditional(f"samples={n}")
        writer.writeSamples(columns)
        t0 = float(rec.t_s[0])
        labels = []
        for event in sorted(rec.events, key=lambda e: e.t_s):  # stable: file order at a tie
            onset = max(0.0, event.t_s - t0)
            text = event_label(event, words)[:EDF_ANNOTATION_CHARS]
            writer.writeAnnotation(onset, -1, text)
            labels.append((onset, text))
        written["annotations"] = len(labels)
    finally:
        writer.close()
    return written


SAMPLE_COLUMNS = ("seq", "t_s", "t_host_s", "raw_counts", "force_n", "filtered_n")
EVENT_COLUMNS = ("t_s", "t_host_s", "kind", "cause", "unit", "force_n", "text", "detail")


def export_csv(
    rec: Recording,
    samples_path: str | Path,
    events_path: str | Path,
    words: Callable[[Event], str] | None = None,
) -> dict:
    """Write the samples and the events of ``rec`` as two CSV files (comma, header row,
    '.' decimals; an empty cell where a value is missing)."""
    try:
        with open(samples_path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(SAMPLE_COLUMNS)
            for i in range(rec.t_s.size):
                w.writerow(
                    (
                        int(rec.seq[i]),
                        repr(float(rec.t_s[i])),
                        _cell(rec.t_host_s[i]),
                        int(rec.raw_counts[i]),
                        _cell(rec.force_n[i]),
                        _cell(rec.filtered_n[i]),
                    )
                )
        with open(events_path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(EVENT_COLUMNS)
            for event in rec.events:
                d = event.to_dict()
                w.writerow(
                    (
                        repr(float(event.t_s)),
                        "" if event.t_host_s is None else repr(float(event.t_host_s)),
                        d["kind"],
                        d["cause"] or "",
                        d.get("unit") or "",
                        _cell(event.force_n),
                        event_label(event, words),
                        json.dumps(_nan_to_none(d.get("detail") or {}), default=str),
                    )
                )
    except OSError as exc:
        raise UsageError(f"cannot write the CSV: {exc}") from None
    return {"samples": int(rec.t_s.size), "events": len(rec.events)}


def _cell(value: float) -> str:
    value = float(value)
    return repr(value) if math.isfinite(value) else ""


def _nan_to_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(v) for v in value]
    return value
