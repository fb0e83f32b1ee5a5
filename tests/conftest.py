"""Shared test setup: hypothesis profiles, an isolated config folder, Qt offscreen."""

from __future__ import annotations

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
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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
