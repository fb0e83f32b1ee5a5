"""Reading the files people hand massagectl (routines, profiles, answers, known devices,
recordings): text, TOML and JSON whose every failure is one error naming the file.

The standard parsers fail in ways a caller does not expect: invalid UTF-8 is a
``UnicodeDecodeError``, nesting 2000 levels deep a ``RecursionError``, and a 400-digit
integer parses fine and then overflows the first ``float()`` it meets. Here each becomes an
``InputFileError`` (or the caller's subclass) with the file's name, and parsed data is
checked once for depth and integer range, so the per-file validation that follows only has
to deal with ordinary values. Sits under every layer of ``device/``, like ``errors``.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from device.errors import InputFileError

#: Deeper nesting than this is no file of ours (the deepest, a recording's session.json,
#: nests 5 levels).
MAX_DEPTH = 32
#: Integers beyond a signed 64-bit range are no value of ours either (and some overflow a
#: float): rejected with the key that holds them.
MAX_INT = 2**63 - 1

ErrorFactory = Callable[[str], Exception]


def read_text(path: str | Path, error: ErrorFactory = InputFileError, what: str = "") -> str:
    """The UTF-8 text of ``path``; ``error("PATH: ...")`` for a missing file, a folder, an
    unreadable file or bytes that are not UTF-8."""
    p = Path(path)
    label = f" {what}" if what else ""
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise error(f"{p}: no such{label} file") from None
    except IsADirectoryError:
        raise error(f"{p}: is a folder, not a{label} file") from None
    except OSError as exc:
        raise error(f"{p}: cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{p}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None


def _where(path: list[str]) -> str:
    return "".join(path).lstrip(".") or "top level"


def check_plain(data: Any, origin: str, error: ErrorFactory = InputFileError) -> Any:
    """``data`` (parsed TOML or JSON) unchanged, after checking it nests at most
    ``MAX_DEPTH`` levels and holds no integer beyond 64 bits."""
    stack: list[tuple[Any, int, list[str]]] = [(data, 0, [])]
    while stack:
        value, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            raise error(f"{origin}: nested more than {MAX_DEPTH} levels deep at {_where(path)}")
        if isinstance(value, dict):
            stack.extend((v, depth + 1, [*path, f".{k}"]) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, depth + 1, [*path, f"[{i}]"]) for i, v in enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            raise error(
                f"{origin}: {_where(path)}: integer out of range ({len(str(abs(value)))} digits)"
            )
    return data


def _parse(
    parse: Callable[[str], Any],
    text: str,
    origin: str,
    kind: str,
    error: ErrorFactory,
    lines: bool = True,
) -> Any:
    try:
        data = parse(text)
    except RecursionError:
        raise error(f"{origin}: not valid {kind}: nested too deep") from None
    except json.JSONDecodeError as exc:
        line = f"line {exc.lineno}: " if lines else ""
        raise error(f"{origin}: {line}not valid JSON ({exc.msg})") from None
    except ValueError as exc:  # TOMLDecodeError, a NaN in strict JSON
        raise error(f"{origin}: not valid {kind} ({exc})") from None
    return check_plain(data, origin, error)


def loads_toml(text: str, origin: str, error: ErrorFactory = InputFileError) -> dict[str, Any]:
    """Parse TOML ``text``; ``error("ORIGIN: ...")`` for bad syntax, too deep a nesting or an
    integer out of range."""
    return _parse(tomllib.loads, text, origin, "TOML", error)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _strict_json(text: str) -> Any:
    return json.loads(text, parse_constant=_no_constants)


def loads_json(
    text: str,
    origin: str,
    error: ErrorFactory = InputFileError,
    *,
    allow_nan: bool = False,
    lines: bool = True,
) -> Any:
    """Parse JSON ``text`` (strict: NaN and Infinity are refused unless ``allow_nan``);
    ``error("ORIGIN: ...")`` as ``loads_toml``; ``lines``: name the line of a syntax error
    (not for a one-line text whose origin already names its line)."""
    parse = json.loads if allow_nan else _strict_json
    return _parse(parse, text, origin, "JSON", error, lines)


def finite(value: Any) -> bool:
    """True for a real number (not a boolean) that is finite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def validation_message(exc: msgspec.ValidationError) -> str:
    """msgspec's message with its ``$.a.b`` path written as ``a.b`` first:
    ``devices[0].address: expected `str`, got `int```."""
    text = str(exc)
    message, sep, where = text.rpartition(" - at `$")
    if not sep:
        return text[:1].lower() + text[1:]
    where = where.rstrip("`").lstrip(".")
    return f"{where}: {message[:1].lower() + message[1:]}"
