"""``massagectl doctor`` (issue 17): each problem injected (no D-Bus, an unreadable port, a
config folder that cannot be written, Qt that aborts, no liblsl) is a problem line with its
fix; ``--json`` is one JSON document on stdout and nothing on stderr. Injected by patching
what a check reads (tests run as root: chmod would not bite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo

from device import doctor
from tests.helpers import MASSAGECTL
from ui.commands.doctor import check_qt


def _env(**more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MASSAGECTL_BLE"}
    return {**env, **more}


def test_json_is_one_document_on_stdout_and_nothing_on_stderr(tmp_path):
    result = subprocess.run(
        [MASSAGECTL, "doctor", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(QT_QPA_PLATFORM="offscreen", MASSAGECTL_CONFIG_DIR=str(tmp_path)),
    )
    assert result.stderr == ""
    doc = json.loads(result.stdout)  # exactly one document: json.loads refuses trailing data
    assert isinstance(doc, dict) and isinstance(doc["checks"], list)
    names = [c["name"] for c in doc["checks"]]
    assert {"versions", "qt", "ble", "serial", "config", "lsl"} <= set(names)
    for c in doc["checks"]:
        assert c["status"] in ("ok", "problem") and c["found"]
        assert c["status"] == "ok" or c["fix"]
    qt = next(c for c in doc["checks"] if c["name"] == "qt")
    assert qt["status"] == "ok" and "offscreen" in qt["found"]
    failed = [c for c in doc["checks"] if c["status"] == "problem" and not c["optional"]]
    assert result.returncode == (1 if failed else 0)


def test_qt_that_aborts_is_probed_in_a_child_and_is_a_problem(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.delenv("DISPLAY", raising=False)
    check = check_qt()  # Qt aborts the process that loads the plugin: ours survives
    assert not check.ok and "SIGABRT" in check.found
    assert "DISPLAY" in check.fix


def test_qt_offscreen_is_ok(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    check = check_qt()
    assert check.ok and "offscreen" in check.found


async def test_no_dbus_is_a_problem_naming_the_ways_out(monkeypatch):
    monkeypatch.delenv("MASSAGECTL_BLE", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/dbus/system_bus")
    check = await doctor.check_ble()
    assert not check.ok
    assert "/nonexistent/dbus/system_bus" in check.found and "D-Bus" in check.found
    assert "--hci" in check.fix and "bluetooth" in check.fix


async def test_a_bumble_transport_that_opens_and_one_that_does_not(monkeypatch):
    from simulators.ble_radio import SoftwareRadio
    from simulators.devices import make_firmware

    monkeypatch.delenv("MASSAGECTL_BLE", raising=False)
    radio = SoftwareRadio(make_firmware("ball"), log=lambda _t: None)
    spec = await radio.start()
    try:
        check = await doctor.check_ble(spec)
        assert check.ok and spec in check.found
    finally:
        await radio.stop()
    monkeypatch.setenv("MASSAGECTL_BLE", f"bumble:{spec}")  # the radio is gone now
    check = await doctor.check_ble()
    assert not check.ok and "MASSAGECTL_BLE" in check.found and "sim ble" in check.fix


def _ports(monkeypatch, *devices: str) -> None:
    monkeypatch.setattr(list_ports, "comports", lambda: [ListPortInfo(d) for d in devices])


def test_an_unreadable_port_is_a_problem_with_the_dialout_fix(monkeypatch):
    _ports(monkeypatch, "/dev/ttyACM7", "/dev/ttyUSB3")
    monkeypatch.setattr(os, "access", lambda p, _mode: p != "/dev/ttyACM7")
    monkeypatch.setattr(doctor, "_in_group", lambda _name: False)
    monkeypatch.setattr(sys, "platform", "linux")
    acm, usb = doctor.check_serial()
    assert not acm.ok and "/dev/ttyACM7" in acm.found and "dialout" in acm.found
    assert "usermod -aG dialout" in acm.fix
    assert usb.ok and "/dev/ttyUSB3" in usb.found


def test_a_port_this_user_may_open_is_ok(monkeypatch):
    _ports(monkeypatch, "/dev/ttyACM7")
    monkeypatch.setattr(os, "access", lambda _p, _mode: True)
    (check,) = doctor.check_serial()
    assert check.ok and "may open it" in check.found


def test_no_ports_is_ok(monkeypatch):
    _ports(monkeypatch)
    (check,) = doctor.check_serial()
    assert check.ok and "no serial ports" in check.found


def test_a_file_where_the_config_folder_should_be(tmp_path, monkeypatch):
    spot = tmp_path / "cfg"
    spot.write_text("not a folder")
    monkeypatch.setenv("MASSAGECTL_CONFIG_DIR", str(spot))
    check = doctor.check_config_folder()
    assert not check.ok and "is a file" in check.found and "MASSAGECTL_CONFIG_DIR" in check.fix


def test_a_config_folder_this_user_may_not_write(tmp_path, monkeypatch):
    monkeypatch.setenv("MASSAGECTL_CONFIG_DIR", str(tmp_path))
    assert doctor.check_config_folder().ok
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode)
    )
    check = doctor.check_config_folder()
    assert not check.ok and "cannot be written" in check.found


def test_a_missing_config_folder_is_judged_by_its_parent(tmp_path, monkeypatch):
    monkeypatch.setenv("MASSAGECTL_CONFIG_DIR", str(tmp_path / "a" / "b"))
    assert doctor.check_config_folder().ok
    monkeypatch.setattr(os, "access", lambda _p, _mode: False)
    check = doctor.check_config_folder()
    assert not check.ok and str(tmp_path) in check.found


def test_no_liblsl_is_an_optional_problem(monkeypatch):
    monkeypatch.setitem(sys.modules, "mne_lsl", None)
    check = doctor.check_lsl()
    assert not check.ok and check.optional and "massagectl[lsl]" in check.fix


def test_liblsl_found():
    pytest.importorskip("mne_lsl")
    check = doctor.check_lsl()
    assert check.ok and "liblsl" in check.found


def test_the_text_output_says_ok_or_problem_and_the_fix(tmp_path):
    spot = tmp_path / "cfg"
    spot.write_text("x")
    result = subprocess.run(
        [MASSAGECTL, "doctor"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(QT_QPA_PLATFORM="offscreen", MASSAGECTL_CONFIG_DIR=str(spot)),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    config = next(i for i, ln in enumerate(lines) if ln.split()[1:2] == ["config"])
    assert lines[config].startswith("problem") and "is a file" in lines[config]
    assert "fix:" in lines[config + 1]
    assert "Traceback" not in result.stderr
