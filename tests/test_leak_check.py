"""The suite's leak check bites: a test that leaves a link open or a task running fails."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT


def test_a_leaked_link_or_task_fails_its_test():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/probes/leaky.py",
            "-p",
            "no:cacheprovider",
            "-o",
            "python_files=leaky.py",
            "-q",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "links left open: sim://ball" in out, out
    assert "leak: tasks still running: forgotten" in out, out
    assert "2 errors" in out and "3 passed" in out, out
