"""Force sensors that speak their own protocols (docs/devices.md): Tindeq Progressor,
PitchSix Force Board, WH-C06 scale.

The decoding tests use byte strings written by hand from the public protocol descriptions
(not produced by our simulators); the rest runs each device's simulator in process."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from device.links import open_link
from device.links.drivers import kind_for_name, kind_of
from device.links.drivers.base import Reply, Samples
from device.links.drivers.forceboard import ForceBoardDriver
from device.links.drivers.progressor import ProgressorDriver
from device.links.drivers.whc06 import WhC06Driver
from device.recording.folder import read_recording
from device.session.device_session import DeviceSession
from dsp.events import EventKind
from firmware_bridge.messages import MotorKind
from tests.test_routine_cli import ONE_SQUEEZE, _run

# ---- Progressor: [kind][len][payload]; weight = (f32 LE kg, u32 LE us) per sample ----------

# 1.5 kg is 0x3FC00000; -0.25 kg is 0xBE800000
WEIGHT_TWO = bytes.fromhex("01 10 0000c03f e8030000 000080be d0070000".replace(" ", ""))


def test_progressor_weight_samples_in_milligrams_with_device_times():
    d = ProgressorDriver()
    assert d.decode("", WEIGHT_TWO) == [Samples((1_500_000, -250_000), (1000, 2000))]
    # 1 kg-force in newtons: the calibration gives 9.80665 N for 1e6 counts
    assert 1_000_000 / d.scale_counts_per_n == pytest.approx(9.80665)


@pytest.mark.parametrize(
    "value, counter",
    [
        (b"", "bad_lengths"),
        (b"\x01", "bad_lengths"),
        (bytes.fromhex("0110") + bytes(8), "bad_lengths"),  # len 16, 8 bytes follow
        (bytes.fromhex("0105") + bytes(5), "bad_lengths"),  # not whole 8-byte samples
        (bytes.fromhex("0900"), "unknown_kinds"),
        (bytes.fromhex("0108 0000c07f 00000000".replace(" ", "")), "bad_values"),  # NaN kg
    ],
)
def test_progressor_bad_values_are_counted_never_raised(value, counter):
    d = ProgressorDriver()
    assert d.decode("", value) == []
    assert getattr(d.stats, counter) == 1


def test_progressor_responses_battery_firmware_and_low_power():
    d = ProgressorDriver()
    d.info_writes()  # asks firmware, then battery
    assert d.decode("", b"\x00\x051.2.3") == [Reply("firmware", "1.2.3")]
    # 3750 mV = 0x00000EA6: half way between 3300 and 4200 mV
    assert d.decode("", bytes.fromhex("0004a60e0000")) == [Reply("battery_pct", 50)]
    assert d.decode("", b"\x04\x00") == [Reply("low_power", True)]
    assert d.stats.low_power_warnings == 1


# ---- Force Board: u16 BE count, then 3-byte samples read b0*32768 + b1*256 + b2 pounds ------


def test_forceboard_samples_in_pounds():
    d = ForceBoardDriver()
    value = bytes.fromhex("000300000a000100010000")
    assert d.decode("", value) == [Samples((10, 256, 32768))]
    # one count is one pound-force
    assert 1 / d.scale_counts_per_n == pytest.approx(4.4482216, rel=1e-6)


@pytest.mark.parametrize(
    "value", [b"", b"\x00", bytes.fromhex("0002000001"), bytes.fromhex("000100")]
)
def test_forceboard_bad_lengths_are_counted(value):
    d = ForceBoardDriver()
    assert d.decode("", value) == []
    assert d.stats.bad_lengths == 1


# ---- WH-C06: manufacturer data after the company id; weight at 10-11, flags at 14 -----------


def test_whc06_weight_stable_flag_and_unit():
    d = WhC06Driver()
    data = bytes(10) + bytes.fromhex("04d2") + bytes(2) + b"\x11" + bytes(1)  # 12.34 kg, stable
    assert d.decode("", data) == [Samples((1234,))]
    assert d.stable is True
    assert 1234 / d.scale_counts_per_n == pytest.approx(12.34 * 9.80665)


@pytest.mark.parametrize(
    "data, counter",
    [
        (bytes(14), "bad_lengths"),
        (bytes(14) + b"\x09", "unknown_kinds"),  # unit 9
        (bytes(14) + b"\x02", "bad_values"),  # lb, while the link was opened in kg
    ],
)
def test_whc06_bad_advertisements_are_counted(data, counter):
    d = WhC06Driver()
    assert d.decode("", data) == []
    assert getattr(d.stats, counter) == 1


def test_registry_picks_the_driver_from_the_advertisement():
    assert kind_of("Progressor_1234", []) == "progressor"
    assert kind_of(None, ["9A88D67F-8DF2-4AFE-9E0D-C2BBBE773DD0"]) == "forceboard"
    assert kind_of("IF_B7", [], {0x0100: bytes(16)}) == "whc06"
    assert kind_of("IF_B7", [], {0x0075: bytes(16)}) is None
    assert kind_of("MBALL", ["7e0f1a00-5b2c-4f6e-9d3a-6d617373a9e0"]) == "ball"
    assert kind_of("Headphones", []) is None
    assert kind_for_name("Force Board") == "forceboard"
    assert kind_for_name("MBALL") is None


# ---- through the link and the session (in process) ----------------------------------------


@pytest.mark.parametrize("kind", ["progressor", "forceboard", "whc06"])
async def test_the_session_streams_newtons_and_says_no_motor(kind):
    link = open_link(f"sim://{kind}", speed=10)
    async with DeviceSession(link) as session:
        assert session.info is not None and session.info.motor_kind == MotorKind.NONE
        assert not session.has_motor
        n = 0
        async for batch in session.batches():
            n += len(batch.raw_counts)
            # a value that does not decode is counted by the driver, never raised here
            link._on_value("x", b"\x07")
            if batch.t_s[-1] > 1.0:
                break
        assert link.driver.stats.bad_lengths + link.driver.stats.unknown_kinds > 0
        assert n >= link.driver.rate_hz * 0.9


@pytest.mark.parametrize("kind", ["progressor", "forceboard", "whc06"])
def test_routine_runs_in_monitor_mode(tmp_path, kind):
    routine = tmp_path / "one.toml"
    routine.write_text(ONE_SQUEEZE)  # it vibrates at 20 %: this device cannot
    rec = tmp_path / "rec"
    url = f"sim://{kind}?user=scripted"
    result = _run("routine", str(routine), "--device", url, "--speed", "10", "--record", str(rec))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "routine completed" in result.stdout
    recording = read_recording(rec)
    stops = [e for e in recording.events if e.kind is EventKind.STOP]
    assert [str(e.cause) for e in stops] == ["over_limit"]
    assert stops[0].to_dict()["detail"]["motor"] == "none"
    commands = [e.command for e in recording.events if e.kind is EventKind.COMMAND_SENT]
    # nothing pretends a motor was driven or stopped (the host's auto-zero is no motor)
    assert "vibrate" not in commands and "stop" not in commands
    holds = [e for e in recording.events if e.kind is EventKind.HOLD_ENDED]
    # (the Force Board reads whole pounds, 4.45 N a count: its one-count steps are no longer
    # taken for a jab, so it holds too; failed before with stops for rate_of_rise)
    assert holds and max(e.duration_s for e in holds) >= 3.0
    assert np.all(np.isfinite(recording.force_n))


def test_vibrate_refuses_a_device_without_a_motor():
    result = _run("vibrate", "sim://progressor", "constant", "--intensity", "20", "--duration", "1")
    assert result.returncode == 2
    assert "has no motor" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_progressor_sample_in_the_recording_keeps_its_raw_value(tmp_path):
    rec = tmp_path / "rec"
    result = _run("stream", "sim://progressor?speed=5", "--duration", "1", "--record", str(rec))
    assert result.returncode == 0, result.stdout + result.stderr
    r = read_recording(rec)
    # raw counts are milligrams: force_n = raw / (1e6 / g) (offset 0)
    assert np.allclose(r.force_n, r.raw_counts * 9.80665e-6, atol=1e-3)
    assert struct.calcsize("<fI") == 8


def test_scan_results_get_their_kind_and_unknown_devices_only_with_all():
    from device.ble.discovery import FoundDevice
    from device.links.drivers import with_kinds
    from firmware_bridge.gatt import SERVICE_UUID

    heard = [
        FoundDevice("MBALL", "F3:4D:42:41:4C:4C", -50, (SERVICE_UUID,)),
        FoundDevice("Progressor_1234", "C0:00:00:00:00:01", -60),
        FoundDevice("IF_B7", "C0:00:00:00:00:02", -70, (), (0x0100,)),
        FoundDevice("IF_B7", "C0:00:00:00:00:03", -70, (), (0x0059,)),  # another company
        FoundDevice("Headphones", "C0:00:00:00:00:04", -40),
    ]
    known = with_kinds(heard)
    assert [(d.name, d.kind) for d in known] == [
        ("MBALL", "ball"),
        ("Progressor_1234", "progressor"),
        ("IF_B7", "whc06"),
    ]
    assert [d.url for d in known] == [
        "ble://F3:4D:42:41:4C:4C",
        "ble://C0:00:00:00:00:01?kind=progressor",
        "ble://C0:00:00:00:00:02?kind=whc06",
    ]
    everything = with_kinds(heard, include_unknown=True)
    assert [d.kind for d in everything] == ["ball", "progressor", "whc06", None, None]
