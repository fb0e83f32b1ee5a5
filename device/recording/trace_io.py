"""Reading force traces for offline analysis: a CSV with a header and ``t_s``, ``force_n``.

Other columns are ignored. Errors name the file row (1 = the header) and raise
InputFileError, which the CLI prints as one line.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.errors import InputFileError

REQUIRED_COLUMNS = ("t_s", "force_n")


@dataclass(frozen=True)
class ForceTrace:
    """Device times (s, strictly increasing) and forces (N) of one trace."""

    t_s: np.ndarray
    force_n: np.ndarray

    @property
    def rate_hz(self) -> float:
        """Sample rate from the median interval of ``t_s``."""
        return float(1.0 / np.median(np.diff(self.t_s)))


def read_force_csv(path: str | Path) -> ForceTrace:
    """Read ``path``; raises InputFileError for a folder, a missing file, a missing column,
    a non-numeric value, time not strictly increasing, or fewer than 2 samples."""
    p = Path(path)
    if p.is_dir():
        raise InputFileError(f"{p}: is a folder; give a CSV (read recordings with read_recording)")
    try:
        fh = p.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputFileError(f"{p}: cannot open: {exc.strerror or exc}") from exc
    with fh:
        try:
            return _parse(p, fh)
        except UnicodeDecodeError as exc:
            raise InputFileError(f"{p}: not a text CSV file ({exc.reason})") from exc


def _parse(p: Path, fh) -> ForceTrace:
    reader = csv.reader(fh)
    header = next(reader, None)
    if header is None or not any(cell.strip() for cell in header):
        raise InputFileError(f"{p}: empty file (expected a header with t_s,force_n)")
    names = [h.strip() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise InputFileError(
            f"{p}: row 1: missing column {', '.join(missing)} (header: {','.join(names)})"
        )
    it, fi = names.index("t_s"), names.index("force_n")
    need = max(it, fi)
    t_list: list[float] = []
    f_list: list[float] = []
    for row_no, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) <= need:
            raise InputFileError(f"{p}: row {row_no}: has {len(row)} values, expected {len(names)}")
        try:
            t = float(row[it])
            f = float(row[fi])
        except ValueError:
            bad = row[it] if not _is_number(row[it]) else row[fi]
            col = "t_s" if not _is_number(row[it]) else "force_n"
            raise InputFileError(f"{p}: row {row_no}: {col} is not a number: {bad!r}") from None
        if not (np.isfinite(t) and np.isfinite(f)):
            raise InputFileError(f"{p}: row {row_no}: t_s and force_n must be finite")
        if t_list and t <= t_list[-1]:
            raise InputFileError(
                f"{p}: row {row_no}: time not increasing (t_s {t:g} after {t_list[-1]:g})"
            )
        t_list.append(t)
        f_list.append(f)
    if len(t_list) < 2:
        raise InputFileError(
            f"{p}: row {len(t_list) + 2}: need at least 2 samples, found {len(t_list)}"
        )
    return ForceTrace(np.asarray(t_list), np.asarray(f_list))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
