"""An asyncio event loop on virtual time, for tests of simulated devices in this process.

``loop.time()`` is a virtual clock. When the loop has nothing ready to run and no I/O is
ready, it does not wait: it moves the clock to the next timer and runs it. Sleeps, timeouts,
keepalives, supervisor ticks and the in-process simulator's steps (which follow the loop's
clock through the run's time base) therefore run in order and in exact virtual time, as fast
as the CPU allows and independent of how loaded the machine is: a test of a ten-minute
routine asserts in device time and cannot be made late by another process.

Only for code whose every actor lives in this loop (``sim://``). Real I/O with another
process or thread still works (ready file descriptors are served first, and the loop
blocks when no timer is pending), but virtual time does not wait for it: a timeout around a
reply from a real process would expire at once. Tests that talk to a real pseudo-terminal,
a subprocess or the Bumble radio stay on the ordinary loop.

Select it with ``@pytest.mark.virtual_time`` (see tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import selectors

#: Where virtual time starts (any value; not 0 so that code treating 0 as "unset" is safe).
START_S = 1000.0


def _reraise_base_exception(task: asyncio.Task) -> None:
    if not task.cancelled():
        exc = task.exception()
        if exc is not None and not isinstance(exc, Exception):
            raise exc  # through call_exception_handler below: out of the loop


def _task_factory(loop, coro, **kwargs):
    task = asyncio.Task(coro, loop=loop, **kwargs)
    task.add_done_callback(_reraise_base_exception)
    return task


class FailFastLoop(asyncio.SelectorEventLoop):
    """An ordinary selector loop, except that a BaseException that is not an Exception
    (pytest's timeout failure, raised by a signal in whatever code runs) ends the run instead
    of being logged and forgotten by asyncio's callback wrapper, or kept in a background task
    nobody awaits: a hung test then ends at its timeout."""

    def __init__(self, selector=None) -> None:
        super().__init__(selector)
        self.set_task_factory(_task_factory)

    def call_exception_handler(self, context: dict) -> None:
        exc = context.get("exception")
        if exc is not None and not isinstance(exc, Exception):
            raise exc
        super().call_exception_handler(context)


class _FastForwardSelector(selectors.DefaultSelector):
    """Polls real I/O without blocking; when nothing is ready and a timer is due within
    ``timeout``, moves the loop's virtual clock forward by ``timeout`` instead of waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None):
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # no timer at all: only real I/O can wake us
            return super().select(None)
        assert self.loop is not None
        self.loop.advance(timeout)
        return []


class VirtualTimeLoop(FailFastLoop):
    """A selector event loop whose ``time()`` is virtual (see the module docstring)."""

    def __init__(self) -> None:
        selector = _FastForwardSelector()
        super().__init__(selector)
        selector.loop = self
        self._virtual_s = START_S

    def time(self) -> float:
        return self._virtual_s

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self._virtual_s += seconds


def run_virtual(coro):
    """``asyncio.run(coro)`` on a virtual-time loop (for synchronous fixtures)."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(coro)
