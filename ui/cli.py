"""The ``massagectl`` command line.

Each command lives in its own module under ``ui/commands/`` exposing
``register(subparsers) -> None``; the parser it adds sets ``func(args) -> int`` (or a
coroutine function). Errors that massagectl raises on purpose become one line on stderr and
exit code 2; Ctrl-C exits with 130. Never a traceback for the user's mistakes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import logging
import os
import signal
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
    "ui.commands.export",
    "ui.commands.doctor",
    "ui.commands.plot",
]


#: The commands that talk to a device: each takes ``--log FILE``.
DEVICE_COMMANDS = ("demo", "routine", "vibrate", "stream", "sim", "scan", "pair", "plot")
#: The loggers of the debug log (device/: massagectl.session, massagectl.events).
LOG_NAME = "massagectl"


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
    for name in DEVICE_COMMANDS:
        sub.choices[name].add_argument(
            "--log",
            metavar="FILE",
            help=(
                "append a debug log to FILE: links opened, lost and closed, every command "
                "sent and reply received (not keepalives or force batches), every event, "
                "faults (docs/architecture.md, 'The debug log')"
            ),
        )
    return parser


class _OneLineFormatter(logging.Formatter):
    """Log records as one line each: a library's logged exception (Bumble logs one when its
    controller goes away) shows as its last line, not a traceback. MASSAGECTL_DEBUG=1 keeps
    the tracebacks."""

    def formatException(self, ei) -> str:  # noqa: N802 - logging's name
        exc = ei[1]
        return f"  ({type(exc).__name__}: {exc})" if exc is not None else ""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", " ")


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("MASSAGECTL_DEBUG"):
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(_OneLineFormatter("%(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    # our own log is the debug log: it never reaches stderr (the faces say what matters)
    ours = logging.getLogger(LOG_NAME)
    ours.propagate = False
    ours.setLevel(logging.DEBUG)
    ours.handlers[:] = [logging.NullHandler()]


@contextlib.contextmanager
def _debug_log(path: str | None, argv: list[str]):
    """``--log FILE``: our log at DEBUG and the libraries' warnings, appended to FILE."""
    if not path:
        yield
        return
    from device.errors import UsageError

    try:
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--log {path}: cannot write: {exc.strerror or exc}") from None
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S"
        )
    )
    ours, root = logging.getLogger(LOG_NAME), logging.getLogger()
    ours.addHandler(handler)
    root.addHandler(handler)
    ours.info("massagectl %s: %s", _version(), " ".join(argv))
    try:
        yield
    finally:
        ours.removeHandler(handler)
        root.removeHandler(handler)
        handler.close()


class Terminated(Exception):
    """SIGTERM arrived: the command was cancelled like Ctrl-C (Stop sent on the way out)."""


def _run_async(func, args) -> int:
    """Run an async command. SIGTERM cancels it as Ctrl-C does (asyncio.run's own SIGINT
    handling), so every ``finally`` on the way out runs: Stop is sent, recordings complete."""
    terminated = False

    async def body():
        nonlocal terminated
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_sigterm() -> None:
            nonlocal terminated
            terminated = True
            task.cancel()

        try:
            loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        except (RuntimeError, ValueError):
            pass  # not the main thread (a test calling main): SIGTERM is not ours to handle
        try:
            return await func(args)
        finally:
            with contextlib.suppress(RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGTERM)

    try:
        return int(asyncio.run(body()) or 0)
    except asyncio.CancelledError:
        if terminated:
            raise Terminated() from None
        raise


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging()
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        with _debug_log(getattr(args, "log", None), sys.argv[1:] if argv is None else argv):
            try:
                if inspect.iscoroutinefunction(func):
                    return _run_async(func, args)
                return int(func(args) or 0)
            except MassagectlError as exc:
                logging.getLogger(LOG_NAME).error("%s: error: %s", args.command, exc)
                raise
    except MassagectlError as exc:
        print(f"massagectl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("terminated", file=sys.stderr)
        return 143
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error of ours; exit quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
