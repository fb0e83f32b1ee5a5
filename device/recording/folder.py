"""Session recordings: a folder that survives a crash and can be re-analysed on its own.

Layout (docs/recording.md has the full format)::

    DIR/session.json   what was recorded: device info, calibration, profile, routine,
                       screening, versions, start time; at the end the run summary
    DIR/samples.csv    seq,t_s,t_host_s,raw_counts,force_n,filtered_n (one row per sample)
    DIR/events.jsonl   one JSON object per event (steps, holds, stops, commands...), which
                       also carries the zone / band / motor-frequency timeline

Writing: ``Recorder.create(folder, meta)``, then ``on_batch(batch, result)`` and
``on_event(event)`` (the runner's two listener hooks; events are ``dsp.events`` types, written
as their ``to_dict()``), then ``finish(summary)``. Samples are
buffered in memory and written as whole lines at least every ``FLUSH_INTERVAL_S`` of host
time (on the next batch, or from a timer on the running asyncio loop when batches stop), so a
killed process loses at most the last second. Events are written and flushed at once: a stop
is the row one most wants to survive.

Reading: ``read_recording(folder) -> Recording``. A killed writer (or a full disk) can leave an
unterminated last line: readers skip it with a ``RecordingWarning`` (and list it in
``Recording.warnings``). Any other damage is an ``InputFileError`` naming file and line.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any

import msgspec
import numpy as np

from device.datafile import MAX_INT, loads_json, validation_message
from device.datafile import read_text as _read_file_text
from device.errors import InputFileError, MassagectlError, UsageError
from dsp.events import Event, EventFormatError, event_from_dict

FORMAT_NAME = "massagectl-recording"
FORMAT_VERSION = 1
SAMPLES_FILE = "samples.csv"
EVENTS_FILE = "events.jsonl"
SESSION_FILE = "session.json"
SAMPLE_COLUMNS = ("seq", "t_s", "t_host_s", "raw_counts", "force_n", "filtered_n")
SAMPLES_HEADER = ",".join(SAMPLE_COLUMNS) + "\n"
#: Host seconds between flushes of buffered samples. Half the promised second, so that a
#: late timer or a slow batch still keeps within it.
FLUSH_INTERVAL_S = 0.5


#: The largest magnitude of seq, t_s, t_host_s (seconds: about 31 years) and raw_counts (i32).
_SAMPLE_BOUNDS = np.array([2.0**53, 1e9, 1e9, 2.0**31 - 1])


class RecordingWarning(UserWarning):
    """A recording was read with something skipped (an unterminated last line)."""


def _versions() -> dict[str, str]:
    try:
        ours = version("massagectl")
    except PackageNotFoundError:
        ours = "unknown"
    return {"massagectl": ours, "python": platform.python_version(), "numpy": np.__version__}


def _jsonable(value: Any) -> Any:
    """Plain JSON data: numpy scalars and arrays become numbers and lists, NaN/inf become None
    (strict JSON has no NaN), enums their string values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def session_meta(
    session,
    *,
    url: str | None = None,
    routine=None,
    profile: dict | None = None,
    screening: dict | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The ``meta`` for ``Recorder.create`` from an open ``DeviceSession``: device info,
    the initial calibration (the one the pipeline starts from; its later zeroes are in the
    samples and the auto_zero events), stream rate, link, and the routine (name, origin),
    profile and screening record when there are any. ``extra`` keys are added as they are."""
    info = session.info
    cal = session.calibration
    meta: dict[str, Any] = {
        "url": str(url if url is not None else session.link.url),
        "link_kind": session.link.kind,
        "rate_hz": session.rate_hz,
        "samples_per_batch": session.samples_per_batch,
        "device": None
        if info is None
        else {
            "model": info.model,
            "firmware": info.firmware,
            "serial_number": info.serial_number,
            "protocol_version": info.protocol_version,
            "rate_min_hz": info.rate_min_hz,
            "rate_max_hz": info.rate_max_hz,
            "motor_kind": int(info.motor_kind),
            "motor_freq_min_hz": info.motor_freq_min_hz,
            "motor_freq_max_hz": info.motor_freq_max_hz,
            "cal_scale_counts_per_n": info.cal_scale_counts_per_n,
            "cal_offset_counts": info.cal_offset_counts,
        },
        "calibration": None
        if cal is None
        else {"scale_counts_per_n": cal.scale_counts_per_n, "offset_counts": cal.offset_counts},
    }
    if routine is not None:
        meta["routine"] = {"name": routine.name, "origin": routine.origin}
    if profile is not None:
        meta["profile"] = profile
    if screening is not None:
        meta["screening"] = screening
    meta.update(extra)
    return meta


def check_record_folder(folder: str | Path) -> None:
    """Raise UsageError now (before connecting) if ``folder`` cannot take a new recording:
    it exists and is not a folder, or it is a folder that holds anything."""
    path = Path(folder)
    if path.exists():
        _prepare_folder(path)


def _prepare_folder(folder: Path) -> None:
    """Create ``folder``; refuse one that already holds anything (never overwrite)."""
    if folder.exists():
        if not folder.is_dir():
            raise UsageError(f"{folder}: exists and is not a folder; give a new folder to record")
        try:
            if any(folder.iterdir()):
                raise UsageError(
                    f"{folder}: folder is not empty; recordings never overwrite, give a new "
                    "or empty folder"
                )
        except OSError as exc:
            raise InputFileError(f"{folder}: cannot read: {exc.strerror or exc}") from exc
        return
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        raise InputFileError(f"{folder}: cannot create: {exc.strerror or exc}") from exc


def _write_json_atomic(path: Path, data: dict) -> None:
    """Write ``path`` via a temporary file and a rename, so it is never half-written."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(_jsonable(data), fh, indent=2)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Recorder:
    """Writes one recording folder. Use ``Recorder.create``; hook ``on_batch`` and
    ``on_event`` to a runner (or call them yourself); call ``finish`` at the end (twice is
    safe). Host times in both files are seconds since the recorder was created."""

    def __init__(self, folder: Path, meta: dict[str, Any]) -> None:
        self.folder = folder
        self.meta = meta
        self.t0_host_s = time.monotonic()
        self.samples = 0
        self.batches = 0
        self.events = 0
        self.finished = False
        self._pending: list[str] = []
        try:
            #: flush timing on the event loop's clock (its timers drive the flushes)
            self._clock = asyncio.get_running_loop().time
        except RuntimeError:
            self._clock = time.monotonic
        self._last_flush_s = self._clock()
        self._timer: asyncio.TimerHandle | None = None
        #: Called with the error when a timed flush fails (outside any caller's code): the
        #: supervised run stops vibration and ends. Without one, the error is raised.
        self.on_error: Callable[[MassagectlError], None] | None = None
        try:
            self._samples_fh = (folder / SAMPLES_FILE).open("w", encoding="utf-8", newline="")
            self._events_fh = (folder / EVENTS_FILE).open("w", encoding="utf-8", newline="")
            self._samples_fh.write(SAMPLES_HEADER)
            self._samples_fh.flush()
            _write_json_atomic(folder / SESSION_FILE, self.meta)
        except OSError as exc:
            raise InputFileError(f"{folder}: cannot write the recording: {exc}") from exc
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self._timer = loop.call_later(FLUSH_INTERVAL_S, self._on_timer)

    @classmethod
    def create(cls, folder: str | Path, meta: dict[str, Any] | None = None) -> Recorder:
        """Start a recording in ``folder`` (created; refused if it holds anything).

        ``meta``: what to keep in session.json (see ``session_meta``); the format name and
        version, massagectl/python/numpy versions and the start time are added."""
        path = Path(folder)
        _prepare_folder(path)
        full = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "started_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "versions": _versions(),
            **(meta or {}),
            "finished_at": None,
            "complete": False,
            "summary": None,
        }
        return cls(path, full)

    # ---- hooks ----------------------------------------------------------------------------

    def on_batch(self, batch, result) -> None:
        """One ``SampleBatch`` (raw counts, times) and the pipeline's ``BatchResult`` for it:
        force_n and filtered_n are the pipeline's, the forces the supervisor judged."""
        if self.finished:
            return
        t_host = f"{batch.t_host_s - self.t0_host_s:.6f}"
        seq = batch.seq
        rows = [
            f"{seq},{t:.6f},{t_host},{r},{f:.6f},{g:.6f}\n"
            for t, r, f, g in zip(
                batch.t_s.tolist(),
                batch.raw_counts.tolist(),
                np.asarray(result.force_n).tolist(),
                np.asarray(result.filtered_n).tolist(),
                strict=True,
            )
        ]
        self._pending.extend(rows)
        self.samples += len(rows)
        self.batches += 1
        if self._clock() - self._last_flush_s >= FLUSH_INTERVAL_S:
            self.flush()

    def on_event(self, event: Event) -> None:
        """One event, written at once as its ``to_dict()`` (kind, cause, t_s,
        detection_delay_s, force_n, detail, unit) with ``t_host_s`` restamped to the
        recorder's clock."""
        if self.finished:
            return
        row = {**event.to_dict(), "t_host_s": round(time.monotonic() - self.t0_host_s, 6)}
        line = json.dumps(_jsonable(row), separators=(",", ":")) + "\n"
        try:
            self._events_fh.write(line)
            self._events_fh.flush()
        except OSError as exc:
            raise InputFileError(f"{self.folder / EVENTS_FILE}: write failed: {exc}") from exc
        self.events += 1

    # ---- flushing and the end -------------------------------------------------------------

    def flush(self) -> None:
        """Write buffered samples as whole lines (one write) and hand them to the OS."""
        self._last_flush_s = self._clock()
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        try:
            self._samples_fh.write(text)
            self._samples_fh.flush()
        except OSError as exc:
            raise InputFileError(f"{self.folder / SAMPLES_FILE}: write failed: {exc}") from exc

    def _on_timer(self) -> None:
        self._timer = None
        if self.finished:
            return
        if self._clock() - self._last_flush_s >= FLUSH_INTERVAL_S * 0.9:
            try:
                self.flush()
            except MassagectlError as exc:
                if self.on_error is None:
                    raise
                self.on_error(exc)
                return
        self._timer = asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self._on_timer)

    def finish(self, summary: dict[str, Any] | None = None, **extra: Any) -> None:
        """Flush, close the files and complete session.json (end time, counts, ``summary``,
        and any ``extra`` keys). Safe to call twice (the second call does nothing)."""
        if self.finished:
            return
        self.finished = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            self.flush()
        finally:
            for fh in (self._samples_fh, self._events_fh):
                try:
                    fh.flush()
                    os.fsync(fh.fileno())
                finally:
                    fh.close()
        self.meta.update(
            {
                "finished_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "complete": True,
                "samples": self.samples,
                "batches": self.batches,
                "events": self.events,
                "summary": summary,
                **extra,
            }
        )
        try:
            _write_json_atomic(self.folder / SESSION_FILE, self.meta)
        except OSError as exc:
            raise InputFileError(f"{self.folder / SESSION_FILE}: write failed: {exc}") from exc

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.finish()


# ---- reading ----------------------------------------------------------------------------

# What readers (analyze, report, the replay link, the timeline) take from session.json, as
# types: a recording whose session.json has these wrong is refused when it is read, with the
# field named, instead of failing deep inside a reader. Unknown fields are allowed (newer
# writers add facts); a NaN was written as null, so measured numbers may be null.
_Finite = Annotated[float, msgspec.Meta(ge=-1e300, le=1e300)]
_Int = Annotated[int, msgspec.Meta(ge=-MAX_INT, le=MAX_INT)]
_Scale = Annotated[float, msgspec.Meta(ge=-1e300, le=1e300)]


class _DeviceMeta(msgspec.Struct):
    model: str = ""
    firmware: str = ""
    serial_number: str = ""
    protocol_version: _Int = 0
    rate_min_hz: Annotated[int, msgspec.Meta(ge=0, le=65535)] | None = None
    rate_max_hz: Annotated[int, msgspec.Meta(ge=0, le=65535)] | None = None
    motor_kind: _Int = 0
    motor_freq_min_hz: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    motor_freq_max_hz: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    cal_scale_counts_per_n: _Scale | None = None
    cal_offset_counts: _Finite | None = None


class _CalibrationMeta(msgspec.Struct):
    scale_counts_per_n: _Scale
    offset_counts: _Finite


class _RoutineMeta(msgspec.Struct):
    name: str | None = None
    origin: str | None = None


class _HoldMeta(msgspec.Struct):
    duration_s: _Finite | None = None


class _StopMeta(msgspec.Struct):
    cause: str | None = None
    t_s: _Finite | None = None


class _UnitMeta(msgspec.Struct):
    label: str
    zone: str
    limit_n: _Finite | None = None
    band_n: tuple[_Finite, _Finite] | None = None
    started_t_s: _Finite | None = None
    ended_t_s: _Finite | None = None
    completed: bool | None = None
    holds: list[_HoldMeta] = []
    time_in_band_s: _Finite | None = None
    peak_n: _Finite | None = None
    stops: list[_StopMeta] = []


class _SummaryMeta(msgspec.Struct):
    end: str | None = None
    message: str | None = None
    advice: str | None = None
    units: list[_UnitMeta] = []


class _SessionMeta(msgspec.Struct):
    format: str
    format_version: _Int = FORMAT_VERSION
    rate_hz: Annotated[float, msgspec.Meta(gt=0, le=65535)] | None = None  # u16 on the wire
    samples_per_batch: _Int | None = None
    url: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    complete: bool = False
    device: _DeviceMeta | None = None
    calibration: _CalibrationMeta | None = None
    routine: _RoutineMeta | None = None
    summary: _SummaryMeta | None = None
    profile: dict[str, Any] | None = None
    screening: dict[str, Any] | None = None


def _check_meta(path: Path, meta: dict[str, Any]) -> None:
    try:
        checked = msgspec.convert(meta, _SessionMeta)
    except msgspec.ValidationError as exc:
        raise InputFileError(f"{path}: {validation_message(exc)}") from None
    cal, dev = checked.calibration, checked.device
    scales = (
        ("calibration.scale_counts_per_n", cal.scale_counts_per_n if cal else None),
        ("device.cal_scale_counts_per_n", dev.cal_scale_counts_per_n if dev else None),
    )
    for where, scale in scales:
        if scale is not None and scale == 0:
            raise InputFileError(f"{path}: {where}: must not be 0 (raw = force_n * scale + offset)")


@dataclass
class Recording:
    """A recording read back. Arrays are one entry per sample (seq and raw_counts int64, the
    rest float64; filtered_n is NaN where no pipeline ran); ``events`` are the typed events
    (``dsp.events``) in file order; ``warnings`` lists what was skipped."""

    folder: Path
    meta: dict[str, Any]
    seq: np.ndarray
    t_s: np.ndarray
    t_host_s: np.ndarray
    raw_counts: np.ndarray
    force_n: np.ndarray
    filtered_n: np.ndarray
    events: list[Event] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def rate_hz(self) -> float:
        """The stream rate in session.json, else the median sample interval's inverse."""
        rate = self.meta.get("rate_hz")
        if rate:
            return float(rate)
        if self.t_s.size >= 2:
            return float(1.0 / np.median(np.diff(self.t_s)))
        return 0.0

    @property
    def complete(self) -> bool:
        """True when the writer finished (False: it was killed or crashed)."""
        return bool(self.meta.get("complete"))

    def batch_bounds(self) -> np.ndarray:
        """Start indices of the recorded batches (rows with one seq), plus the end index."""
        if self.seq.size == 0:
            return np.zeros(1, dtype=np.int64)
        starts = np.flatnonzero(np.diff(self.seq) != 0) + 1
        return np.concatenate(([0], starts, [self.seq.size])).astype(np.int64)


def is_recording(folder: str | Path) -> bool:
    """True when ``folder`` is a folder with a session.json."""
    p = Path(folder)
    return p.is_dir() and (p / SESSION_FILE).is_file()


def _read_text(path: Path) -> str:
    if not path.exists():
        raise InputFileError(f"{path}: missing (not a complete recording folder)")
    return _read_file_text(path)


def _complete_lines(path: Path, text: str, skipped: list[str]) -> str:
    """``text`` without an unterminated last line (warned about and listed in ``skipped``)."""
    if not text or text.endswith("\n"):
        return text
    cut = text.rfind("\n") + 1
    line_no = text.count("\n", 0, cut) + 1
    msg = (
        f"{path}: line {line_no} is unterminated (the writer stopped mid-line); "
        f"skipped {len(text) - cut} bytes"
    )
    skipped.append(msg)
    warnings.warn(msg, RecordingWarning, stacklevel=3)
    return text[:cut]


def _read_samples(path: Path, skipped: list[str]) -> np.ndarray:
    text = _complete_lines(path, _read_text(path), skipped)
    header, _, body = text.partition("\n")
    if header.strip() != SAMPLES_HEADER.strip():
        raise InputFileError(
            f"{path}: line 1: header is {header.strip()!r}, expected {SAMPLES_HEADER.strip()!r}"
        )
    if not body.strip():
        return np.empty((0, len(SAMPLE_COLUMNS)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "empty input" is handled above
            table = np.loadtxt(io.StringIO(body), delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise InputFileError(f"{path}: malformed sample row: {_first_line(exc)}") from exc
    if table.shape[1] != len(SAMPLE_COLUMNS):
        raise InputFileError(
            f"{path}: rows have {table.shape[1]} values, expected {len(SAMPLE_COLUMNS)}"
        )
    # seq, t_s, t_host_s and raw_counts are always measured: finite and within what they can
    # be (times within MAX_TIME_S, raw counts an i32 as on the wire, seq a whole number);
    # force_n and filtered_n may be NaN.
    measured = table[:, :4]
    with np.errstate(invalid="ignore"):
        whole = measured == np.round(measured)
        bad = ~np.isfinite(measured) | (np.abs(measured) > _SAMPLE_BOUNDS)
        bad[:, 0] |= ~whole[:, 0]
        bad[:, 3] |= ~whole[:, 3]
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        value = float(measured[row, col])
        if not math.isfinite(value):
            what = "finite"
        elif abs(value) > _SAMPLE_BOUNDS[col]:
            what = f"within +-{_SAMPLE_BOUNDS[col]:g}"
        else:
            what = "a whole number"
        raise InputFileError(
            f"{path}: line {row + 2}: {SAMPLE_COLUMNS[col]} must be {what}, got {value!r}"
        )
    return table


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _read_events(path: Path, skipped: list[str]) -> list[Event]:
    text = _complete_lines(path, _read_text(path), skipped)
    events = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        event = loads_json(line, f"{path}: line {line_no}", allow_nan=True, lines=False)
        if not isinstance(event, dict) or "kind" not in event:
            raise InputFileError(f"{path}: line {line_no}: an event needs an object with 'kind'")
        try:
            events.append(event_from_dict(event))
        except EventFormatError as exc:
            raise InputFileError(f"{path}: line {line_no}: {exc}") from None
    return events


def read_meta(folder: str | Path) -> dict[str, Any]:
    """session.json of the recording in ``folder``; InputFileError if it is not one."""
    p = Path(folder)
    if not p.is_dir():
        raise InputFileError(f"{p}: not a folder (a recording is a folder with {SESSION_FILE})")
    path = p / SESSION_FILE
    if not path.is_file():
        raise InputFileError(f"{p}: not a recording (no {SESSION_FILE})")
    meta = loads_json(_read_text(path), str(path))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise InputFileError(f"{path}: not a massagectl recording (format is not {FORMAT_NAME})")
    version = meta.get("format_version", FORMAT_VERSION)
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise InputFileError(
            f"{path}: format version {meta['format_version']} is newer than this massagectl "
            f"reads ({FORMAT_VERSION}); upgrade massagectl"
        )
    _check_meta(path, meta)
    return meta


def read_recording(folder: str | Path) -> Recording:
    """Read the recording in ``folder``. Skips an unterminated last line of samples.csv or
    events.jsonl with a RecordingWarning; raises InputFileError for anything else wrong."""
    p = Path(folder)
    meta = read_meta(p)
    skipped: list[str] = []
    table = _read_samples(p / SAMPLES_FILE, skipped)
    events = _read_events(p / EVENTS_FILE, skipped)
    return Recording(
        folder=p,
        meta=meta,
        seq=table[:, 0].astype(np.int64),
        t_s=table[:, 1].copy(),
        t_host_s=table[:, 2].copy(),
        raw_counts=table[:, 3].astype(np.int64),
        force_n=table[:, 4].copy(),
        filtered_n=table[:, 5].copy(),
        events=events,
        warnings=skipped,
    )


@dataclass(frozen=True)
class RecordingInfo:
    """A recording at a glance (``massagectl recordings``): no samples read but the last."""

    folder: Path
    started_at: str | None
    routine: str | None
    command: str | None
    duration_s: float | None
    stops: int
    complete: bool
    error: str | None = None


def _last_t_s(path: Path) -> float | None:
    """t_s of the last whole line of samples.csv (read from its end)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 4096))
            tail = f.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    lines = tail.split("\n")[:-1]  # the last piece is unterminated (or empty)
    for line in reversed(lines):
        cells = line.split(",")
        if len(cells) == len(SAMPLE_COLUMNS):
            try:
                return float(cells[1])
            except ValueError:
                return None
    return None


def recording_info(folder: str | Path) -> RecordingInfo:
    """The glance at one recording folder; a damaged one has ``error`` set."""
    p = Path(folder)
    try:
        meta = read_meta(p)
    except InputFileError as exc:
        return RecordingInfo(p, None, None, None, None, 0, False, error=str(exc))
    skipped: list[str] = []
    try:
        events = _read_events(p / EVENTS_FILE, skipped)
        error = None
    except InputFileError as exc:
        events, error = [], str(exc)
    stops = sum(1 for e in events if str(e.kind) in ("stop", "fault"))
    routine = meta.get("routine") or {}
    command = meta.get("command")
    if command is None:  # vibrate and stream name themselves in their step_started
        kinds = [getattr(e, "step_kind", None) for e in events if str(e.kind) == "step_started"]
        command = kinds[0] if kinds and kinds[0] in ("vibrate", "stream") else None
    return RecordingInfo(
        folder=p,
        started_at=meta.get("started_at"),
        routine=routine.get("name") if isinstance(routine, dict) else None,
        command=command,
        duration_s=_last_t_s(p / SAMPLES_FILE),
        stops=stops,
        complete=bool(meta.get("complete")),
        error=error,
    )


def list_recordings(parent: str | Path) -> list[RecordingInfo]:
    """Every recording folder directly in ``parent``, oldest first (by start time, then
    name); [] when ``parent`` does not exist."""
    p = Path(parent)
    if not p.is_dir():
        return []
    infos = [recording_info(d) for d in sorted(p.iterdir()) if is_recording(d)]
    return sorted(infos, key=lambda i: (i.started_at or "", i.folder.name))


def default_folder_name(what: str, when: datetime | None = None) -> str:
    """A new recording folder's name: local date and time, then what ran
    (``20260301-142501-neck-relief``)."""
    stamp = (when or datetime.now()).strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in what).strip("-") or "session"
    return f"{stamp}-{safe}"
