"""``massagectl doctor``: what is wrong with this setup, each line ok or a problem with its
fix in words (docs/doctor.md). ``--json`` prints one JSON document on stdout and nothing on
stderr.

Qt is probed in a child process: a platform plugin that fails to load aborts the process
that loads it (exit 134), which must not be doctor itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys

#: The child: start a QApplication on the platform this environment selects, say its name.
QT_PROBE = (
    "import sys\n"
    "from PySide6.QtWidgets import QApplication\n"
    "app = QApplication(sys.argv[:1])\n"
    "print(app.platformName())\n"
)
QT_PROBE_TIMEOUT_S = 30.0


def register(sub) -> None:
    p = sub.add_parser(
        "doctor",
        help="check this setup: Python and packages, Qt, BLE, serial ports, config, liblsl",
        description=(
            "Check what massagectl needs here and say, for each, ok or the problem and its "
            "fix: Python and package versions, whether Qt can open its platform (probed in a "
            "child process), the BLE backend (BlueZ on the system D-Bus, or the Bumble "
            "transport of --hci / MASSAGECTL_BLE), serial ports and whether you may open "
            "them, the config folder, liblsl. Exit 1 when a needed check has a problem."
        ),
    )
    p.add_argument("--hci", metavar="TRANSPORT", help="check this Bumble HCI transport")
    p.add_argument(
        "--json",
        action="store_true",
        help='print one JSON object {"checks": [...], "ok": bool} and nothing on stderr',
    )
    p.set_defaults(func=run)


def check_qt():
    """Start Qt in a child process with this environment; a problem when it fails or is
    killed (the fix from ui.qt_check where it knows one)."""
    from device.doctor import Check
    from device.errors import UsageError
    from ui.qt_check import check_window_can_open, qt_platform

    wanted = qt_platform()
    try:
        child = subprocess.run(
            [sys.executable, "-c", QT_PROBE],
            capture_output=True,
            text=True,
            timeout=QT_PROBE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return Check(
            "qt",
            False,
            f"Qt ({wanted}) did not start within {QT_PROBE_TIMEOUT_S:g} s",
            "check the display, or use QT_QPA_PLATFORM=offscreen",
        )
    if child.returncode == 0:
        return Check("qt", True, f"Qt opens its '{child.stdout.strip()}' platform")
    if child.returncode < 0:
        how = f"killed by {signal.Signals(-child.returncode).name}"
    else:
        how = f"exit {child.returncode}"
    lines = [ln.strip() for ln in child.stderr.splitlines() if ln.strip()]
    telling = [ln for ln in lines if "could not" in ln or "failed" in ln]
    last = (telling or lines or [""])[0]
    try:
        check_window_can_open()
        fix = (
            "install Qt's system libraries for this platform (README), or use "
            "QT_QPA_PLATFORM=offscreen for no window"
        )
    except UsageError as exc:
        fix = str(exc)
    return Check("qt", False, f"Qt ({wanted}) cannot start ({how}): {last[:200]}", fix)


@contextlib.contextmanager
def _quiet_stderr():
    """Nothing reaches file descriptor 2 (a library's C logging included) while checking."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with contextlib.redirect_stderr(open(os.devnull, "w")) as quiet:  # noqa: SIM115
            try:
                yield
            finally:
                quiet.close()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


async def gather(hci: str | None) -> list:
    from device.doctor import device_checks

    checks = await device_checks(hci)
    checks.insert(1, check_qt())
    return checks


async def run(args) -> int:
    if args.json:
        with _quiet_stderr():
            checks = await gather(args.hci)
    else:
        checks = await gather(args.hci)
    failed = [c for c in checks if not c.ok and not c.optional]
    if args.json:
        doc = {"checks": [c.to_dict() for c in checks], "ok": not failed}
        print(json.dumps(doc))
        return 1 if failed else 0
    for c in checks:
        print(f"{c.status:<8} {c.name:<9} {c.found}")
        if not c.ok:
            print(f"{'':<8} {'':<9} fix: {c.fix}")
    problems = sum(1 for c in checks if not c.ok)
    optional = problems - len(failed)
    tail = f", {optional} of them optional" if optional else ""
    print(f"{len(checks)} checks, {problems} problem(s){tail}")
    return 1 if failed else 0
