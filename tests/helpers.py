"""Helpers for tests that run massagectl as real processes."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MASSAGECTL = str(Path(sys.executable).with_name("massagectl"))


def _as_from_a_terminal() -> None:
    """In the child: SIGINT and SIGQUIT back to their defaults. A suite started in the
    background by a non-interactive shell inherits them ignored, and a child whose Ctrl-C is
    ignored cannot be tested for what Ctrl-C does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def spawn(*args: str, **kw) -> subprocess.Popen:
    """Start a process with line-buffered text pipes (stdout; stderr to stdout unless given),
    signals as a terminal would give them."""
    kw.setdefault("preexec_fn", _as_from_a_terminal)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.STDOUT)
    return subprocess.Popen(
        list(args),
        stdin=subprocess.DEVNULL,
        text=True,
        bufsize=1,
        cwd=ROOT,
        # faulthandler: a child that hangs can be made to print every thread's stack (SIGABRT)
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"},
        **kw,
    )


class LineReader:
    """Reads a child's stdout line by line with a deadline, keeping every line seen.

    A thread drains the pipe into a queue: select() on a buffered file misses lines that
    arrived together with an earlier one.
    """

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        proc.line_reader = self  # stop() joins the thread instead of closing the pipe under it
        self.thread.start()

    def _pump(self) -> None:
        with self.proc.stdout:
            for line in self.proc.stdout:
                self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def read_line(self, timeout_s: float) -> str | None:
        try:
            line = self._queue.get(timeout=max(0.0, timeout_s))
        except queue.Empty:
            return None
        if line is None:
            self._queue.put(None)  # stay at end of file
            return None
        self.lines.append(line)
        return line

    def wait_for(self, pattern: str, timeout_s: float = 15.0) -> re.Match:
        """The first new line matching ``pattern`` (regex), or AssertionError at the deadline."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            line = self.read_line(left)
            if line is None:
                if self.proc.poll() is not None:
                    break
                continue
            if m := rx.search(line):
                return m
        raise AssertionError(f"no line matching {pattern!r}; saw:\n" + "\n".join(self.lines))


def wait_or_dump(proc: subprocess.Popen, reader: LineReader, timeout_s: float) -> int:
    """``proc.wait(timeout_s)``; a child still running then is made to print its stacks
    (SIGABRT with PYTHONFAULTHANDLER, see ``spawn``) and the test fails with its output."""
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(6)  # SIGABRT: faulthandler prints every thread's stack
        proc.wait(5)
        reader.thread.join(5)
        while reader.read_line(0.1) is not None:
            pass
        raise AssertionError(
            f"still running {timeout_s:g} s later; its output and stacks:\n"
            + "\n".join(reader.lines)
        ) from None


def stop(proc: subprocess.Popen) -> None:
    """Terminate (then kill) a child and reap it; safe on a stopped or dead process."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, 18)  # SIGCONT, in case a test stopped it
        except ProcessLookupError:
            pass
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    reader = getattr(proc, "line_reader", None)
    if reader is not None:
        reader.thread.join(5)
    elif proc.stdout:
        proc.stdout.close()


def person_screening():
    """A passed screening answered by a person (not the simulated user): what a face hands
    in before a real device (a ``ble://`` peripheral on the software radio counts as one) may
    vibrate."""
    from device.screening.gate import evaluate, simulated_user_answers

    return evaluate(simulated_user_answers(), source="test")


async def collect_batches(session, until_s: float) -> list:
    """Batches from ``session`` until one reaches ``until_s`` of device time."""
    out = []
    async for batch in session.batches():
        out.append(batch)
        if batch.t_s[-1] >= until_s:
            return out
    raise AssertionError("stream ended early")


def vibrate_args(**options):
    """The parsed options of ``massagectl vibrate`` (defaults: 20 % constant for 5 s on
    sim://ball, zone upper_back), for tests that call ``ui.commands.vibrate.run``."""
    import argparse

    defaults = dict(
        url="sim://ball",
        intensity=20.0,
        duration=5.0,
        pattern="constant",
        zone="upper_back",
        hz=0,
        screening=None,
        profile=None,
        record=None,
        speed=None,
        reconnect_timeout=30.0,
    )
    return argparse.Namespace(**{**defaults, **options})


class FullDiskFile:
    """Wraps an open file: writes fail as on a full disk (ENOSPC); flush, fileno and close
    still work. Put in place of a recorder's file to test what a failed write does."""

    def __init__(self, real) -> None:
        self.real = real

    def write(self, _text: str) -> int:
        raise OSError(28, "No space left on device")

    def flush(self) -> None:
        self.real.flush()

    def fileno(self) -> int:
        return self.real.fileno()

    def close(self) -> None:
        self.real.close()
