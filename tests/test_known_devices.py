"""The known-devices file: records, atomic writes with a backup, a corrupt file never lost,
and the calibration sessions pick up. Always in the per-test MASSAGECTL_CONFIG_DIR."""

from __future__ import annotations

import json
import os

import pytest

from device.config.known_devices import (
    FILE_NAME,
    KnownDevice,
    KnownDevices,
    KnownDevicesError,
    StoredCalibration,
    calibration_for,
    config_dir,
)
from device.errors import UsageError


def _record(name="MBALL", address="f3:4d:42:41:4c:4c", offset=12_000.0) -> KnownDevice:
    return KnownDevice(
        name=name,
        address=address,
        model="MBALL-1",
        serial_number="SIM-BALL-0001",
        firmware="1.2.0",
        calibration=StoredCalibration(1000.0, offset, "tare", "2025-01-01T00:00:00+00:00"),
        paired_at="2025-01-01T00:00:00+00:00",
    )


def test_the_config_folder_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MASSAGECTL_CONFIG_DIR", str(tmp_path))
    assert config_dir() == tmp_path
    assert KnownDevices().path == tmp_path / FILE_NAME


def test_put_find_by_name_or_address_and_remove():
    store = KnownDevices()
    assert store.devices() == []
    store.put(_record())
    assert store.find("MBALL").address == "F3:4D:42:41:4C:4C"
    assert store.find("f3:4d:42:41:4c:4c").name == "MBALL"
    store.put(_record(offset=12_345.0))  # same address: replaced, not duplicated
    assert [d.calibration.offset_counts for d in store.devices()] == [12_345.0]
    assert store.remove("MBALL").name == "MBALL"
    assert store.devices() == []
    with pytest.raises(UsageError, match="no known device"):
        store.remove("MBALL")


def test_bond_keys_stay_with_the_record_and_go_with_forget():
    store = KnownDevices()
    store.set_bond("F3:4D:42:41:4C:4C/P", {"keys": {"ltk": {"value": "00" * 16}}}, None)
    assert store.bond_keys("f3:4d:42:41:4c:4c") == {"ltk": {"value": "00" * 16}}
    store.put(_record())  # pair fills in the record started by the key store
    (device,) = store.devices()
    assert device.name == "MBALL" and device.bonded
    store.remove("MBALL")
    assert store.bond_keys("F3:4D:42:41:4C:4C") is None


def test_writes_are_atomic_and_keep_the_previous_file_as_backup():
    store = KnownDevices()
    store.put(_record())
    first = store.path.read_text()
    store.put(_record(name="OTHER", address="11:22:33:44:55:66"))
    assert store.backup_path.read_text() == first
    assert [p.name for p in store.folder.iterdir() if p.suffix == ".tmp"] == []
    assert os.stat(store.path).st_mode & 0o077 == 0  # bonding keys are secrets


def test_a_corrupt_file_is_a_clear_error_and_is_never_overwritten():
    store = KnownDevices()
    store.put(_record())
    store.put(_record(offset=1.0))
    store.path.write_text('{"version": 1, "devices": [{"name": ')  # a half-written file
    with pytest.raises(KnownDevicesError, match=r"not valid JSON.*last good copy"):
        store.devices()
    with pytest.raises(KnownDevicesError):
        store.put(_record())
    with pytest.raises(KnownDevicesError):
        calibration_for("ble://MBALL")
    assert store.path.read_text().endswith('"name": ')  # left as it was
    assert json.loads(store.backup_path.read_text())["devices"][0]["name"] == "MBALL"


def test_a_bad_record_names_what_is_wrong():
    store = KnownDevices()
    store.folder.mkdir(parents=True, exist_ok=True)
    store.path.write_text(json.dumps({"version": 1, "devices": [{"name": "X"}]}))
    with pytest.raises(KnownDevicesError, match="needs a name and an address"):
        store.devices()


def test_calibration_for_ble_urls_only():
    KnownDevices().put(_record(offset=12_500.0))
    cal = calibration_for("ble://MBALL")
    assert (cal.scale_counts_per_n, cal.offset_counts) == (1000.0, 12_500.0)
    assert calibration_for("ble://F3:4D:42:41:4C:4C?timeout=3").offset_counts == 12_500.0
    assert calibration_for("ble://NOBALL") is None
    assert calibration_for("sim://ball") is None
