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
    with pytest.raises(KnownDevicesError, match=r"devices\[0\]: object missing required field"):
        store.devices()


def test_calibration_for_ble_urls_only():
    KnownDevices().put(_record(offset=12_500.0))
    cal = calibration_for("ble://MBALL")
    assert (cal.scale_counts_per_n, cal.offset_counts) == (1000.0, 12_500.0)
    assert calibration_for("ble://F3:4D:42:41:4C:4C?timeout=3").offset_counts == 12_500.0
    assert calibration_for("ble://NOBALL") is None
    assert calibration_for("sim://ball") is None


# ---- issue 14: bad files, concurrent writers, failing disks -------------------------------

_GOOD = {"name": "MBALL", "address": "F3:4D:42:41:4C:4C"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (json.dumps({"version": 1, "devices": [{**_GOOD, "address": 42}]}),
         r"devices\[0\]\.address: expected `str`, got `int`"),
        (json.dumps({"version": 1, "devices": [{**_GOOD, "name": ["MBALL"]}]}),
         r"devices\[0\]\.name: expected `str`, got `array`"),
        (json.dumps({"version": 1, "devices": {"MBALL": _GOOD}}),
         r"devices: expected `array`, got `object`"),
        (json.dumps({"version": 1, "devices": [{**_GOOD, "calibration": {
            "scale_counts_per_n": 0, "offset_counts": 0, "how": "tare", "when": ""}}]}),
         r"bad record: scale must be finite and non-zero"),
        (json.dumps({"version": 1, "devices": [{**_GOOD, "calibration": {
            "scale_counts_per_n": 1, "offset_counts": 0, "how": "guess", "when": ""}}]}),
         r"calibration\.how: invalid enum value 'guess'"),
        ('{"version": 1, "devices": [{"name": "M", "address": "A", "model": 1'
         + "0" * 400 + "}]}", r"devices\[0\]\.model: integer out of range"),
        ('{"version": 1, "devices": ' + "[" * 2000 + "]" * 2000 + "}", "nested too deep"),
        ('{"version": 1, "devices": [], "host": {"address": NaN, "irk_hex": "00"}}',
         "not valid JSON"),
        (json.dumps({"version": 1, "host": {"address": "C0:00:00:00:00:01"}}),
         r"host: object missing required field `irk_hex`"),
    ],
)  # fmt: skip
def test_a_record_of_the_wrong_shape_is_one_error_naming_the_field(text, message):
    store = KnownDevices()
    store.folder.mkdir(parents=True, exist_ok=True)
    store.path.write_text(text)
    with pytest.raises(KnownDevicesError, match=message):
        store.devices()
    with pytest.raises(KnownDevicesError, match=message):
        store.put(_record())
    assert store.path.read_text() == text  # never written over


def test_invalid_utf8_is_one_error_and_left_as_it_is():
    store = KnownDevices()
    store.folder.mkdir(parents=True, exist_ok=True)
    store.path.write_bytes(b'{"version": 1, "devices": [{"name": "\xff"}]}')
    with pytest.raises(KnownDevicesError, match="not UTF-8 text"):
        store.find("MBALL")
    assert store.path.read_bytes().endswith(b'"\xff"}]}')


def test_the_cli_reports_a_bad_known_devices_file_in_one_line(capsys):
    from ui.cli import main

    store = KnownDevices()
    store.folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"version": 1, "devices": [{"name": "M", "address": 3}]})
    store.path.write_text(text)
    for argv in (["devices"], ["forget", "M"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert str(store.path) in err and "devices[0].address" in err
    assert store.path.read_text() == text


def _writer(folder: str, worker: int, writes: int) -> None:
    store = KnownDevices(folder)
    for k in range(writes):
        store.put(_record(name=f"W{worker}-{k}", address=f"00:00:00:00:{worker:02X}:{k:02X}"))


def test_concurrent_writers_in_eight_processes_keep_every_record(tmp_path):
    """Issue 14: 8 processes x 25 writes kept 29 of 200 before the file lock."""
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")  # real processes, imports paid once
    ctx.set_forkserver_preload(["tests.test_known_devices"])
    workers = [ctx.Process(target=_writer, args=(str(tmp_path), w, 25)) for w in range(8)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=50)
    assert [p.exitcode for p in workers] == [0] * 8
    names = {d.name for d in KnownDevices(tmp_path).devices()}
    assert len(names) == 200
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


@pytest.mark.parametrize("errno_", [28, 13])  # ENOSPC, EACCES
def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(monkeypatch, errno_):
    store = KnownDevices()
    store.put(_record())
    before = store.path.read_text()

    def failing_replace(src, dst):
        raise OSError(errno_, os.strerror(errno_))

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(KnownDevicesError, match=os.strerror(errno_)):
        store.put(_record(name="OTHER", address="11:22:33:44:55:66"))
    assert store.path.read_text() == before
    assert [p.name for p in store.folder.iterdir() if p.suffix == ".tmp"] == []


def test_a_file_that_cannot_be_read_is_an_error_not_an_empty_store(monkeypatch):
    from pathlib import Path

    store = KnownDevices()
    store.put(_record())

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(KnownDevicesError, match="Permission denied"):
        store.devices()
    with pytest.raises(KnownDevicesError, match="Permission denied"):
        store.put(_record(name="OTHER", address="11:22:33:44:55:66"))


def test_records_hold_a_kind_and_old_records_read_as_balls():
    store = KnownDevices()
    store.folder.mkdir(parents=True, exist_ok=True)
    old = {"name": "MBALL", "address": "F3:4D:42:41:4C:4C"}  # written before the sensors
    store.path.write_text(json.dumps({"version": 1, "devices": [old]}))
    assert [d.kind for d in store.devices()] == ["ball"]
    sensor = _record(name="Progressor_7301", address="F3:4D:50:52:4F:47")
    sensor.kind = "progressor"
    store.put(sensor)
    again = KnownDevices()
    assert again.find("Progressor_7301").kind == "progressor"
    assert json.loads(again.path.read_text())["devices"][1]["kind"] == "progressor"
    store.path.write_text(json.dumps({"version": 1, "devices": [{**old, "kind": "toaster"}]}))
    with pytest.raises(KnownDevicesError, match=r"devices\[0\]\.kind: invalid enum value"):
        store.devices()
