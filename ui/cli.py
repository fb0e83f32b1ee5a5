"""The ``massagectl`` command line.

Each command lives in its own module under ``ui/commands/`` exposing
``register(subparsers) -> None``; the parser it adds sets ``func(args) -> int`` (or a
coroutine function). Errors that massagectl raises on purpose become one line on stderr and
exit code 2; Ctrl-C exits with 130. Never a traceback for the user's mistakes.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import sys
from importlib.metadata import PackageNotFoundError, version

from device.errors import MassagectlError

#: Command modules, in the order ``--help`` lists them.
COMMAND_MODULES = [
    "ui.commands.demo",
    "ui.commands.routine",
    "ui.commands.vibrate",
    "ui.commands.stream",
    "ui.commands.sim",
    "ui.commands.scan",
    "ui.commands.pairing",
    "ui.commands.screen",
    "ui.commands.routines",
    "ui.commands.analyze",
    "ui.commands.report",
    "ui.commands.recordings",
    "ui.commands.plot",
]


def _version() -> str:
    try:
        return version("massagectl")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="massagectl",
        description=(
            "Controller for sensorized massage devices (a force-sensing massage ball and a "
            "handheld massager) over BLE and serial, with simulators built in. "
            "Run 'massagectl COMMAND --help' for a command's options."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Device URLs: serial:///dev/ttyACM0, ble://NAME or ble://AA:BB:CC:DD:EE:FF, "
            "sim://ball[?scenario=FILE], sim://handheld, replay://DIR."
        ),
    )
    parser.add_argument("--version", action="version", version=f"massagectl {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        if inspect.iscoroutinefunction(func):
            return int(asyncio.run(func(args)) or 0)
        return int(func(args) or 0)
    except MassagectlError as exc:
        print(f"massagectl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error of ours; exit quietly.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
