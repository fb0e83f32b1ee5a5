"""Backend choice (DESIGN.md Conventions) and who may import bleak and Bumble."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from device.ble import factory
from device.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("firmware_bridge", "device", "dsp", "ui", "simulators")


def test_os_backend_by_default(monkeypatch):
    monkeypatch.delenv(factory.ENV_VAR, raising=False)
    assert factory.bumble_transport() is None
    assert factory.backends() == (None, None)
    assert factory.describe() == "os"


def test_environment_selects_bumble(monkeypatch):
    monkeypatch.setenv(factory.ENV_VAR, "bumble:tcp-client:127.0.0.1:9000")
    assert factory.bumble_transport() == "tcp-client:127.0.0.1:9000"
    scanner_cls, client_cls = factory.backends()
    assert scanner_cls.transport_spec == client_cls.transport_spec == "tcp-client:127.0.0.1:9000"
    assert factory.backends() == (scanner_cls, client_cls)  # one class pair per transport


def test_hci_option_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv(factory.ENV_VAR, "bumble:tcp-client:127.0.0.1:9000")
    assert factory.bumble_transport("usb:0") == "usb:0"
    assert factory.bumble_transport("bumble:tcp-client:127.0.0.1:1") == "tcp-client:127.0.0.1:1"
    assert factory.bumble_transport("os") is None


@pytest.mark.parametrize("value", ["bluez", "tcp-client:127.0.0.1:9000", "bumble:"])
def test_a_bad_environment_value_is_a_usage_error(monkeypatch, value):
    monkeypatch.setenv(factory.ENV_VAR, value)
    with pytest.raises(UsageError, match=factory.ENV_VAR):
        factory.bumble_transport()


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_ble_link_imports_nothing_of_bumble():
    imports = _imports(ROOT / "device" / "links" / "ble.py")
    assert not [name for name in imports if name.split(".")[0] == "bumble"]
    assert "device.ble.bumble_backend" not in imports


def test_opening_a_ble_link_on_the_os_backend_does_not_load_bumble():
    code = (
        "import sys; from device.links import open_link; "
        "link = open_link('ble://MBALL'); "
        "assert link.backend == 'os', link.backend; "
        "loaded = [m for m in sys.modules if m.split('.')[0] == 'bumble']; "
        "assert not loaded, loaded"
    )
    env = {"PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_only_device_imports_bleak_and_only_the_backend_and_simulators_import_bumble():
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            roots = {name.split(".")[0] for name in _imports(path)}
            if "bleak" in roots:
                assert rel.startswith("device/"), f"{rel} imports bleak"
            if "bumble" in roots:
                assert rel.startswith(("device/ble/", "simulators/")), f"{rel} imports bumble"
