"""The live window's faces check that Qt can open a window before Qt starts (Qt aborts the
process otherwise: exit 134 on a machine without a display or without its xcb libraries)."""

from __future__ import annotations

import ctypes.util
import os
import subprocess

import pytest

from tests.helpers import MASSAGECTL
from ui.cli import main


def _headed_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}


@pytest.mark.parametrize("command", [["plot", "sim://ball"], ["demo", "--gui"]])
def test_no_display_is_one_line_and_exit_2(command):
    """Failed before: Qt aborted the process (exit 134) with its own multi-line message."""
    env = _headed_env()
    env.pop("WAYLAND_DISPLAY", None)
    result = subprocess.run(
        [MASSAGECTL, *command], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 2, result.stderr
    assert "no display to show the window on" in result.stderr
    assert "QT_QPA_PLATFORM=offscreen" in result.stderr
    assert result.stderr.count("\n") == 1


def test_missing_xcb_libraries_are_named_with_their_packages(monkeypatch, capsys):
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":99")
    real = ctypes.util.find_library
    gone = {"xcb-cursor", "xcb-icccm", "xcb-keysyms"}
    monkeypatch.setattr(ctypes.util, "find_library", lambda n: None if n in gone else real(n))
    assert main(["plot", "sim://ball"]) == 2
    err = capsys.readouterr().err
    assert "sudo apt install" in err
    for package in ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1"):
        assert package in err
    assert err.count("\n") == 1
