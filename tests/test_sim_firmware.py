"""The simulated firmware, driven directly in simulated time (no clocks, no sleeps).

Back to back: every test runs against the Python firmware and against the reference C core
(firmware_bridge/c through simulators.c_firmware), with the same expectations."""

from __future__ import annotations

import pytest

from firmware_bridge.messages import (
    Ack,
    DeviceInfo,
    ForceBatch,
    Hello,
    Keepalive,
    Nack,
    NackCode,
    SetLimit,
    SetStream,
    Status,
    StatusFlags,
    Stop,
    Tare,
    TareResult,
    Vibrate,
)
from simulators.devices import FIRMWARES, firmware_class
from simulators.firmware import DEADMAN_S, Firmware
from simulators.scenario import PressPoint, Scenario, SensorConfig, parse_scenario
from tests.test_protocol import VECTORS, _build

_KIND = {"kind": "python"}


@pytest.fixture(autouse=True, params=FIRMWARES)
def firmware_kind(request):
    """Every test of this file runs on both firmwares."""
    _KIND["kind"] = request.param
    yield request.param
    _KIND["kind"] = "python"


def _make(scenario: Scenario) -> Firmware:
    return firmware_class(_KIND["kind"])(scenario)


def _fw(press=(), **kw) -> Firmware:
    return _make(Scenario(press=tuple(press), **kw))


def _batches(msgs):
    return [m for m in msgs if isinstance(m, ForceBatch)]


def test_hello_answers_device_info_with_calibration():
    fw = _fw()
    (info,) = [m for m in fw.handle(Hello(0), 0.0) if isinstance(m, DeviceInfo)]
    assert info.model == "MBALL-1"
    assert info.cal_scale_counts_per_n == 1000.0
    assert info.cal_offset_counts == 12_000


def test_streams_at_the_set_rate_with_consecutive_sequence_numbers():
    fw = _fw()
    fw.handle(SetStream(1, rate_hz=500, samples_per_batch=5), 0.0)
    batches = _batches(fw.advance(1.0))
    assert len(batches) == 100  # 500 Hz / 5 per batch, for 1 s
    assert [b.seq for b in batches] == list(range(100))
    assert all(b.rate_hz == 500 and len(b.samples) == 5 for b in batches)


def test_raw_counts_follow_the_scenario_force():
    fw = _fw([PressPoint(0.5, 20.0, 0.0)], sensor=SensorConfig(noise_n=0.0, drift_n_per_min=0))
    fw.handle(SetStream(1, 1000, 10), 0.0)
    batches = _batches(fw.advance(1.0))
    first, last = batches[0].samples[0], batches[-1].samples[-1]
    assert first == 12_000
    assert last == 12_000 + 20 * 1000


def test_clock_drift_and_wrap():
    sc = parse_scenario({"clock": {"drift_ppm": 100.0, "start_us": 2**32 - 500_000}})
    fw = _make(sc)
    fw.handle(SetStream(1, 1000, 10), 0.0)
    batches = _batches(fw.advance(1.0))
    stamps = [b.t_us for b in batches]
    assert any(a > b for a, b in zip(stamps, stamps[1:], strict=False))  # wrapped once
    span_us = (stamps[-1] - stamps[0]) % 2**32
    # the device samples on its own clock (as a board's timer does): 1 ms apart in device
    # time, which runs 100 ppm fast, so 1 s of simulator time holds 100 ppm more samples
    assert span_us == pytest.approx(990_000, abs=1)
    more = _batches(fw.advance(100.0))
    assert len(batches) + len(more) == pytest.approx(100.0 * 100 * (1 + 100e-6), abs=1)


def test_deadman_stops_the_motor_500ms_after_the_last_command():
    fw = _fw()
    fw.handle(SetStream(1, 1000, 10), 0.0)
    fw.handle(SetLimit(20, limit_mn=50_000), 0.0)
    fw.handle(Vibrate(2, 600, 100), 0.1)
    for i in range(1, 6):
        fw.handle(Keepalive(2 + i), 0.1 + i * 0.1)
    assert fw.motor_on
    last_command_s = 0.6
    fw.advance(last_command_s + DEADMAN_S - 0.002)
    assert fw.motor_on
    msgs = fw.advance(last_command_s + DEADMAN_S + 0.002)
    assert not fw.motor_on
    (off,) = [e for e in fw.events if e.name == "motor_off"]
    assert off.detail["cause"] == "deadman"
    assert off.t_s - last_command_s == pytest.approx(DEADMAN_S, abs=0.0011)
    status = [m for m in msgs if isinstance(m, Status)][-1]
    assert status.flags & StatusFlags.KEEPALIVE_LOST
    assert not status.flags & StatusFlags.MOTOR_ON


def test_set_limit_cuts_the_motor_within_one_sample_of_the_force_passing_it():
    fw = _fw(
        [PressPoint(0.2, 12.0, 1.0)],  # ramps 0 -> 12 N over 0.2-1.2 s
        sensor=SensorConfig(noise_n=0.0, drift_n_per_min=0.0),
    )
    fw.handle(SetStream(1, 1000, 10), 0.0)
    fw.handle(SetLimit(2, limit_mn=8000), 0.0)
    fw.handle(Vibrate(3, 300, 100), 0.0)
    t = 0.0
    seq = 4
    while t < 1.2:
        t += 0.1
        fw.handle(Keepalive(seq), t)  # each command has a seq of its own (repeats are retries)
        seq += 1
    (trip,) = [e for e in fw.events if e.name == "limit_tripped"]
    (off,) = [e for e in fw.events if e.name == "motor_off"]
    assert off.t_s == trip.t_s  # the same sample
    assert trip.detail["force_n"] > 8.0
    assert fw.flags & StatusFlags.LIMIT_TRIPPED
    # Vibrate is refused while tripped
    replies = fw.handle(Vibrate(9, 300, 100), t)
    (nack,) = [m for m in replies if isinstance(m, Nack)]
    assert nack.code == NackCode.LIMIT_TRIPPED


@pytest.mark.parametrize(
    "cmd",
    [
        Vibrate(5, intensity_permille=1001, frequency_hz=100),
        Vibrate(5, intensity_permille=500, frequency_hz=5000),
        Vibrate(5, intensity_permille=500, frequency_hz=100, waveform=9),
        SetStream(5, rate_hz=5, samples_per_batch=10),
        SetStream(5, rate_hz=1000, samples_per_batch=0),
        SetStream(5, rate_hz=1000, samples_per_batch=200),
    ],
)
def test_out_of_range_commands_get_a_nack_not_a_crash(cmd):
    fw = _fw()
    replies = fw.handle(cmd, 0.0)
    (nack,) = [m for m in replies if isinstance(m, Nack)]
    assert (nack.cmd_seq, nack.cmd_type, nack.code) == (5, cmd.TYPE, NackCode.OUT_OF_RANGE)
    assert not fw.motor_on


def test_tare_reports_the_new_offset():
    fw = _fw([PressPoint(0.0, 0.5)], sensor=SensorConfig(noise_n=0.0, drift_n_per_min=0.0))
    fw.handle(SetStream(1, 1000, 10), 0.0)
    fw.advance(0.2)
    (result,) = [m for m in fw.handle(Tare(7), 0.2) if isinstance(m, TareResult)]
    assert result.cmd_seq == 7
    assert result.offset_counts == 12_000 + 500


def test_stop_is_always_acknowledged_and_stops():
    fw = _fw()
    fw.handle(SetLimit(0, limit_mn=50_000), 0.0)
    fw.handle(Vibrate(1, 500, 100), 0.0)
    assert fw.motor_on
    assert any(isinstance(m, Ack) for m in fw.handle(Stop(2), 0.01))
    assert not fw.motor_on


# ---- protocol version 2: the firmware's own safety rules, retries ---------------------------


def _armed(limit_mn=50_000) -> Firmware:
    fw = _fw()
    fw.handle(Hello(0), 0.0)
    fw.handle(SetStream(1, 1000, 10), 0.0)
    fw.handle(SetLimit(2, limit_mn=limit_mn), 0.0)
    return fw


def test_no_vibration_without_a_limit():
    fw = _fw()
    fw.handle(Hello(0), 0.0)
    replies = fw.handle(Vibrate(1, intensity_permille=1000, frequency_hz=100), 0.0)
    (nack,) = [m for m in replies if isinstance(m, Nack)]
    assert nack.code == NackCode.NO_LIMIT
    assert not fw.motor_on
    fw.advance(0.1)
    assert not fw.motor_on
    # Vibrate 0 (motor off) needs no limit; after a SetLimit the same Vibrate runs
    assert any(isinstance(m, Ack) for m in fw.handle(Vibrate(2, 0, 100), 0.1))
    fw.handle(SetLimit(3, limit_mn=10_000), 0.1)
    assert any(isinstance(m, Ack) for m in fw.handle(Vibrate(4, 1000, 100), 0.1))
    assert fw.motor_on


def test_set_limit_zero_is_refused_and_a_huge_one_is_clamped_to_the_reported_ceiling():
    fw = _fw()
    (info,) = [m for m in fw.handle(Hello(0), 0.0) if isinstance(m, DeviceInfo)]
    assert info.limit_max_mn == fw.config.limit_max_mn == 150_000
    (nack,) = [m for m in fw.handle(SetLimit(1, limit_mn=0), 0.0) if isinstance(m, Nack)]
    assert nack.code == NackCode.OUT_OF_RANGE
    assert fw.limit_mn == 0
    assert any(isinstance(m, Ack) for m in fw.handle(SetLimit(2, limit_mn=0xFFFFFFFF), 0.0))
    assert fw.limit_mn == info.limit_max_mn
    # the ceiling is a real limit: 160 N trips it
    fw2 = _fw(
        [PressPoint(0.0, 160.0)],
        sensor=SensorConfig(noise_n=0.0, drift_n_per_min=0.0),
    )
    fw2.handle(SetStream(1, 1000, 10), 0.0)
    fw2.handle(SetLimit(2, limit_mn=0xFFFFFFFF), 0.0)
    fw2.advance(0.05)
    assert fw2.flags & StatusFlags.LIMIT_TRIPPED


def test_refused_commands_do_not_feed_the_deadman():
    fw = _armed()
    fw.handle(Vibrate(3, 600, 100), 0.1)
    assert fw.motor_on
    seq = 4
    t = 0.1
    while t < 1.0:  # a stream of commands the firmware refuses: no sign of life
        t += 0.05
        fw.handle(Vibrate(seq, intensity_permille=1001, frequency_hz=9999), t)
        seq += 1
    (off,) = [e for e in fw.events if e.name == "motor_off"]
    assert off.detail["cause"] == "deadman"
    assert off.t_s - 0.1 == pytest.approx(DEADMAN_S, abs=0.0011)


def test_a_repeated_command_is_answered_again_and_acted_on_once():
    fw = _armed()
    first = fw.handle(Vibrate(3, 600, 100), 0.1)
    (ack,) = [m for m in first if isinstance(m, Ack)]
    fw.handle(Stop(4), 0.2)
    assert not fw.motor_on
    # the host did not get the Ack of seq 3 and sends it again: same Ack, motor stays off
    again = fw.handle(Vibrate(3, 600, 100), 0.25)
    assert [m for m in again if isinstance(m, Ack)] == [ack]
    assert not fw.motor_on
    assert fw.duplicates_received == 1
    assert [e.name for e in fw.events].count("vibrate") == 1
    # Tare: the same TareResult, not a second tare
    fw.advance(0.3)
    (r1,) = [m for m in fw.handle(Tare(5), 0.3) if isinstance(m, TareResult)]
    (r2,) = [m for m in fw.handle(Tare(5), 0.4) if isinstance(m, TareResult)]
    assert r1 == r2
    assert [e.name for e in fw.events].count("tare") == 1
    # the same seq with other bytes is a new command
    fw.handle(Vibrate(3, 300, 100), 0.45)
    assert fw.motor_on


def test_a_repeated_keepalive_does_not_feed_the_deadman():
    fw = _armed()
    fw.handle(Vibrate(3, 600, 100), 0.1)
    fw.handle(Keepalive(4), 0.2)
    for i in range(1, 10):  # a relay replaying one old frame
        fw.handle(Keepalive(4), 0.2 + i * 0.1)
    (off,) = [e for e in fw.events if e.name == "motor_off"]
    assert off.detail["cause"] == "deadman"
    assert off.t_s - 0.2 == pytest.approx(DEADMAN_S, abs=0.0011)


def test_hello_forgets_the_replies_of_the_last_host():
    fw = _armed()
    fw.handle(Vibrate(3, 600, 100), 0.1)
    fw.handle(Stop(4), 0.2)
    fw.handle(Hello(0), 0.3)  # a new host numbers from 0 again
    fw.handle(SetLimit(2, limit_mn=50_000), 0.3)
    fw.handle(Vibrate(3, 600, 100), 0.3)  # the same bytes as the old host's seq 3: new
    assert fw.motor_on


@pytest.mark.parametrize(
    "exchange", VECTORS["firmware_rules"]["exchanges"], ids=lambda e: e["name"]
)
def test_the_firmware_follows_the_rule_vectors(exchange):
    fw = _fw()
    replies_of = []
    for k, step in enumerate(exchange["steps"]):
        t_s = 0.01 * (k + 1)
        replies = [
            m
            for m in fw.handle(_build(step["send"]), t_s)
            if not isinstance(m, Status | ForceBatch)
        ]
        replies_of.append(replies)
        if "same_reply_as" in step:
            assert replies == replies_of[step["same_reply_as"]]
        else:
            assert [type(m).__name__ for m in replies] == [e["type"] for e in step["expect"]]
            for m, e in zip(replies, step["expect"], strict=True):
                for name, value in e["fields"].items():
                    assert getattr(m, name) == value, (k, name)
        state = step.get("state", {})
        if "motor_on" in state:
            assert fw.motor_on == state["motor_on"], k
        if "limit_mn" in state:
            assert fw.limit_mn == state["limit_mn"], k
