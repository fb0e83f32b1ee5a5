"""The dependency direction of DESIGN.md, checked by import-linter's contracts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
    "importlinter"
]
CONTRACT_NAMES = {c["id"]: c["name"] for c in CONFIG["contracts"] if "id" in c}
ALL_CONTRACT_NAMES = {c["name"] for c in CONFIG["contracts"]}


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports on the packages in ``cwd`` with the pyproject.toml there."""
    path = [str(cwd), *filter(None, [os.environ.get("PYTHONPATH")])]
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(path)),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _copy_sources(dest: Path) -> Path:
    """Copy the root packages and pyproject.toml into ``dest``; returns ``dest``."""
    for package in CONFIG["root_packages"]:
        shutil.copytree(
            ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_import_contracts_hold():
    result = subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_unmodified_copy_passes(tmp_path):
    """The baseline of the probes below: the copied tree is linted like the worktree."""
    result = _lint_imports(_copy_sources(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


# (contract id, module that gets the import appended, the import, importer -> imported)
PROBES = [
    ("hardware-io-in-device", "ui/terminal_view.py", "import bleak", "ui.terminal_view -> bleak"),
    (
        "bumble-in-device-and-simulators",
        "ui/commands/scan.py",
        "from bumble import hci",
        "ui.commands.scan -> bumble",
    ),
    (
        "device-no-qt-or-rich",
        "device/session/device_session.py",
        "from PySide6 import QtCore",
        "device.session.device_session -> PySide6",
    ),
    (
        "firmware-bridge-no-io",
        "firmware_bridge/messages.py",
        "import asyncio",
        "firmware_bridge.messages -> asyncio",
    ),
    (
        "device-layers",
        "device/links/base.py",
        "import device.routine.runner",
        "device.links.base -> device.routine.runner",
    ),
]


LAYER_OF = {"device.routine.runner": "device.routine"}


@pytest.mark.parametrize(
    ("contract_id", "module", "statement", "edge"), PROBES, ids=[p[0] for p in PROBES]
)
def test_contract_bites(tmp_path, contract_id, module, statement, edge):
    """A forbidden import appended to a copy of the sources breaks the named contract."""
    src = _copy_sources(tmp_path)
    path = src / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{statement}  # probe\n", "utf-8")

    result = _lint_imports(src)

    out = result.stdout + result.stderr
    name = CONTRACT_NAMES[contract_id]
    assert result.returncode != 0, out
    assert f"{name} BROKEN" in result.stdout, out
    # the probe's own import is reported, not just some other break of the same contract
    broken = result.stdout.split("Broken contracts", 1)[1]
    section = broken.split(f"\n{name}\n", 1)[1]
    for other in ALL_CONTRACT_NAMES - {name}:
        section = section.split(f"\n{other}\n", 1)[0]
    # a layers contract names the layer, a forbidden contract the module
    forbidden = LAYER_OF.get(edge.split(" -> ")[1], edge.split(" -> ")[1])
    assert f" is not allowed to import {forbidden}:" in section, out
    assert re.search(rf"-\s+{re.escape(edge)} \(l\.", section), out
