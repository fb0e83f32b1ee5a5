"""Shared test setup: hypothesis profiles, an isolated config folder, Qt offscreen."""

from __future__ import annotations

import asyncio
import faulthandler
import os
import sys
import threading

import pytest
from hypothesis import HealthCheck, settings

from tests.virtual_time import FailFastLoop, VirtualTimeLoop

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
#: ``make test-long``: many more examples, not derandomized (long fuzzing)
settings.register_profile("long", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: ``make test-long`` (or MASSAGECTL_LONG=1): tests marked ``long`` run too.
LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long" or bool(os.environ.get("MASSAGECTL_LONG"))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``long`` (the full form of a test whose short form runs in ``make
    test``) are skipped unless LONG."""
    if LONG:
        return
    skip = pytest.mark.skip(reason="long: make test-long (or MASSAGECTL_LONG=1)")
    for item in items:
        if item.get_closest_marker("long") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path_factory, monkeypatch):
    """Every test gets its own MASSAGECTL_CONFIG_DIR: never the user's real config."""
    monkeypatch.setenv("MASSAGECTL_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))


def pytest_asyncio_loop_factories(config, item):
    """Tests marked ``virtual_time`` run on a loop whose clock is virtual (tests/virtual_time.py);
    every other asyncio test on an ordinary loop that lets a timeout end the test."""
    if item.get_closest_marker("virtual_time") is not None:
        return {"virtual_time": VirtualTimeLoop}
    return {"asyncio": FailFastLoop}


@pytest.fixture(autouse=True)
def _no_leaks(request):
    """Fail a test that leaves a device link open or (asyncio tests) a task running once its
    fixtures are gone (python-can's conftest does the same for buses)."""
    from device.links.base import OPEN_LINKS

    before = set(OPEN_LINKS)
    runner = None
    if request.node.get_closest_marker("asyncio") is not None:
        # set up before the test's async fixtures, so torn down after them, and before
        # pytest-asyncio closes the loop (which would cancel leftovers silently)
        runner = request.getfixturevalue("_function_scoped_runner")
    yield
    problems = []
    if runner is not None:
        loop = runner.get_loop()
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        if tasks:
            problems.append("tasks still running: " + ", ".join(t.get_name() for t in tasks))
    links = [link for link in OPEN_LINKS if link not in before]
    if links:
        problems.append("links left open: " + ", ".join(str(link.url) for link in links))
        for link in links:
            OPEN_LINKS.discard(link)  # reported once
    if problems:
        pytest.fail("leak: " + "; ".join(problems), pytrace=False)


#: Seconds past pytest-timeout's limit after which a test that is still running ends the
#: whole run with every thread's stack (a hang that the timeout's signal could not break,
#: e.g. inside Qt's C++ event loop). CI must never sit on a hung test.
HARD_STOP_GRACE_S = 30


@pytest.fixture(autouse=True)
def _hard_stop_on_hang(request):
    marker = request.node.get_closest_marker("timeout")
    timeout_s = float(marker.args[0]) if marker and marker.args else None
    if timeout_s is None:
        timeout_s = float(request.config.getoption("timeout", None) or 0)
    if timeout_s <= 0:
        yield
        return
    limit_s = timeout_s + HARD_STOP_GRACE_S

    def end_the_run() -> None:
        capman = request.config.pluginmanager.getplugin("capturemanager")
        if capman is not None:
            capman.suspend_global_capture(in_=True)
        sys.stderr.write(
            f"\n+++ {request.node.nodeid} still running {limit_s:g} s after it started "
            "(its timeout did not end it): ending the test run +++\n"
        )
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
        os._exit(1)

    watchdog = threading.Timer(limit_s, end_the_run)
    watchdog.daemon = True
    watchdog.start()
    yield
    watchdog.cancel()
