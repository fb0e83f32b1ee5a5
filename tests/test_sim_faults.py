"""Fault injection in the simulators: ``[[fault]]`` tables and ``sim --fault`` flags parsed
and checked, and each fault doing what it says to the simulated firmware and its link."""

from __future__ import annotations

import os
import subprocess
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.framing import FrameDecoder, encode_frame
from firmware_bridge.messages import (
    Hello,
    Keepalive,
    SetLimit,
    SetStream,
    Status,
    StatusFlags,
    Vibrate,
)
from simulators.devices import make_firmware
from simulators.faults import (
    ADC_RAIL_COUNTS,
    FAULT_KINDS,
    FaultSpec,
    FaultSpecError,
    LinkFaults,
    parse_fault_flag,
)
from simulators.runtime import SimulatorRunner
from simulators.scenario import Scenario, ScenarioError, parse_scenario

SCENARIO = """
name = "faulty"
[[fault]]
kind = "corrupt"
at_s = 5.0
for_s = 2.0
pct = 3.5
direction = "to_host"

[[fault]]
kind = "disconnect"
at_s = 12

[[fault]]
kind = "brownout"
at_s = 1.0
ms = 250
"""


def test_fault_tables_are_read_from_a_scenario():
    sc = parse_scenario(tomllib.loads(SCENARIO), "faulty.toml")
    corrupt, disconnect, brownout = sc.faults
    assert corrupt == FaultSpec("corrupt", 5.0, 2.0, pct=3.5, direction="to_host")
    assert corrupt.active(6.9) and not corrupt.active(7.0) and not corrupt.hits("to_device")
    assert disconnect.kind == "disconnect" and disconnect.end_s() == float("inf")
    assert brownout.end_s() == pytest.approx(1.25)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"kind": "fire"}, r"fault\[0\]\.kind: 'fire' is not a fault \(known: stall, "),
        ({"kind": "corrupt", "pct": 101}, r"fault\[0\]\.pct: 101 is outside 0 to 100"),
        ({"kind": "corrupt", "pct": float("nan")}, r"fault\[0\]\.pct: nan is outside"),
        ({"kind": "stall", "ms": "300"}, r"fault\[0\]\.ms: expected a number, got '300'"),
        ({"kind": "stall", "at_s": True}, r"fault\[0\]\.at_s: expected a number"),
        ({"kind": "flatline", "pct": 3}, r"fault\[0\]\.pct: not a field of a flatline fault"),
        ({"kind": "drop", "direction": "up"}, r"fault\[0\]\.direction: 'up' is not one of"),
    ],
)
def test_a_bad_fault_table_is_an_error_naming_the_field(table, message):
    with pytest.raises(ScenarioError, match=r"^x\.toml: " + message):
        parse_scenario({"fault": [table]}, "x.toml")


def test_fault_flags():
    assert parse_fault_flag("disconnect@12") == FaultSpec("disconnect", 12.0)
    assert parse_fault_flag("corrupt@5:pct=2,for_s=10,direction=to_device") == FaultSpec(
        "corrupt", 5.0, 10.0, pct=2.0, direction="to_device"
    )
    assert parse_fault_flag("keepalive_ignored") == FaultSpec("keepalive_ignored")
    with pytest.raises(FaultSpecError, match="--fault stall:ms: .*not FIELD=VALUE"):
        parse_fault_flag("stall:ms")
    with pytest.raises(FaultSpecError, match="not a number"):
        parse_fault_flag("stall@soon")


def _firmware(*faults: FaultSpec):
    fw = make_firmware("ball", Scenario(faults=faults))
    fw.handle(Hello(seq=0), 0.0)
    fw.handle(SetStream(seq=1, rate_hz=1000, samples_per_batch=10), 0.0)
    fw.handle(SetLimit(seq=2, limit_mn=100_000), 0.0)
    return fw


def _raw(messages):
    return [x for m in messages if hasattr(m, "samples") for x in m.samples]


def test_saturation_and_flatline_change_what_the_adc_reads():
    fw = _firmware(FaultSpec("saturation", 0.5, 0.2), FaultSpec("flatline", 1.0))
    before = _raw(fw.advance(0.5))
    assert ADC_RAIL_COUNTS not in before
    during = _raw(fw.advance(0.7))
    # the device samples on its own (drifting) clock: the edge sample may fall either side
    assert during.count(ADC_RAIL_COUNTS) >= len(during) - 1 and during[-1] == ADC_RAIL_COUNTS
    _raw(fw.advance(1.0))
    stuck = _raw(fw.advance(1.5))
    assert len(stuck) == 500 and len(set(stuck[1:])) == 1  # noise and all: one value


def test_battery_low_shows_in_status():
    fw = _firmware(FaultSpec("battery_low", 0.45, battery_pct=4.0))
    out = [m for t in range(1, 7) for m in fw.advance(t / 10)]
    statuses = [m for m in out if isinstance(m, Status)]
    assert statuses[0].battery_pct == 96 and statuses[-1].battery_pct == 4


def test_keepalive_ignored_lets_the_deadman_stop_the_motor():
    fw = _firmware(FaultSpec("keepalive_ignored", 0.2))
    fw.handle(Vibrate(seq=3, intensity_permille=400, frequency_hz=150), 0.0)
    for i, t in enumerate((0.1, 0.2, 0.3, 0.4, 0.5, 0.6)):
        fw.handle(Keepalive(seq=4 + i), t)
    fw.advance(0.7)
    (deadman,) = [e for e in fw.events if e.name == "deadman"]
    # the keepalive at 0.1 s counted, the ones from 0.2 s on did not
    # (the deadman is checked on the device's samples, on its own drifting clock)
    assert deadman.detail["last_command_s"] == 0.1
    assert deadman.t_s == pytest.approx(0.6, abs=0.002)
    assert fw.flags & StatusFlags.KEEPALIVE_LOST


def test_a_brownout_cuts_the_motor_goes_silent_and_reboots_blank():
    fw = _firmware(FaultSpec("brownout", 0.5, ms=200))
    fw.handle(Vibrate(seq=3, intensity_permille=400, frequency_hz=150), 0.0)
    assert fw.advance(0.49)
    replies = fw.handle(SetLimit(seq=4, limit_mn=5000), 0.55)
    assert not [m for m in replies if not hasattr(m, "samples")]  # dead: nothing answers
    assert fw.limit_mn == 0  # reset by the brown-out; the SetLimit sent while dead is lost
    assert fw.advance(0.69) == []
    assert not fw.motor_on and [e.name for e in fw.events][-2:] == ["motor_off", "brownout"]
    after = fw.advance(1.0)
    assert after and not _raw(after)  # status again, but no stream: a blank device
    assert fw.limit_mn == 0 and fw.rate_hz == 0


def test_motor_slow_to_stop_brakes_slowly():
    def level_after_stop(*faults):
        fw = _firmware(*faults)
        fw.handle(Vibrate(seq=3, intensity_permille=1000, frequency_hz=150), 0.0)
        fw.advance(0.5)
        fw.handle(Vibrate(seq=4, intensity_permille=0, frequency_hz=150), 0.5)
        fw.advance(0.6)
        return fw.physics.motor.level

    assert level_after_stop() < 0.1
    assert level_after_stop(FaultSpec("motor_slow_stop", 0.0, brake_s=1.0)) > 0.85


def test_a_clock_jump_moves_the_device_clock():
    fw = _firmware(FaultSpec("clock_jump", 0.5, jump_s=-1.0))
    step_us = (fw.device_us(0.6) - fw.device_us(0.4)) & 0xFFFFFFFF
    assert step_us == pytest.approx(2**32 - 800_000, abs=10)


def test_link_faults_in_the_runner_stall_then_release_and_disconnect():
    fw = make_firmware(
        "ball", Scenario(faults=(FaultSpec("stall", 0.1, ms=100), FaultSpec("disconnect", 0.5)))
    )

    class Clock:
        t = 0.0

        def now_s(self):
            return self.t

        def advance(self):
            return self.t

    clock, out, unplugged = Clock(), [], []
    runner = SimulatorRunner(
        fw, lambda b: out.append(b) or True, clock=clock, on_disconnect=lambda: unplugged.append(1)
    )
    runner.feed(
        encode_frame(Hello(seq=0))
        + encode_frame(SetStream(seq=1, rate_hz=1000, samples_per_batch=10))
    )
    for step in range(1, 70):
        clock.t = step * 0.01
        n = len(out)
        runner.step()
        if 0.1 < clock.t < 0.2:
            assert len(out) == n, "nothing passes during the stall"
        if 0.2 <= clock.t < 0.21:
            decoded = FrameDecoder().feed(b"".join(out[n:]))
            assert len(decoded) >= 10  # the stalled batches, late and in order
    assert unplugged == [1] and runner.disconnected
    assert not LinkFaults((FaultSpec("battery_low"),))  # device faults are not the link's


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["serial", "--fault", "corrupt:pct=200"],
            "massagectl sim: error: --fault corrupt:pct=200.pct: 200.0 is outside 0 to 100",
        ),
        (
            ["ble", "--fault", "stall@1"],
            "massagectl sim: error: fault stall: not on BLE (its link layer checks, orders "
            "and retransmits every packet); BLE takes disconnect and the device faults: "
            "saturation, flatline, battery_low, brownout, motor_slow_stop, "
            "keepalive_ignored, clock_jump",
        ),
    ],
)
def test_a_bad_fault_flag_is_one_clear_line(args, message, capsys):
    from ui.cli import main

    assert main(["sim", *args]) == 2
    err = capsys.readouterr().err
    assert err.strip() == message and err.count("\n") == 1


LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long" or bool(os.environ.get("MASSAGECTL_LONG"))


@pytest.mark.skipif(not LONG, reason="real processes, 5 s: make test-long (or MASSAGECTL_LONG=1)")
def test_sim_serial_disconnect_fault_ends_the_host_with_one_line():
    """``--fault disconnect@T`` closes the pseudo-terminal at T: the host's stream ends with
    one line naming the lost port, never a traceback."""
    from tests.helpers import MASSAGECTL, LineReader, spawn, stop, wait_or_dump

    sim = spawn(MASSAGECTL, "sim", "serial", "--fault", "disconnect@25", "--speed", "5")
    reader = LineReader(sim)
    host = None
    try:
        url = reader.wait_for(r"^READY (serial://\S+)$").group(1)
        host = spawn(
            MASSAGECTL, "stream", url, "--json", "--duration", "60", stderr=subprocess.PIPE
        )
        out = LineReader(host)
        out.wait_for(r'^\{"seq"', timeout_s=4.0)  # streaming before the cable is pulled
        reader.wait_for(r"EVENT t_s=\S+ disconnect", timeout_s=15)
        assert wait_or_dump(host, out, 15) != 0
        err = host.stderr.read()
    finally:
        stop(sim)
        if host is not None:
            stop(host)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert url.removeprefix("serial://") in lines[0]


@settings(max_examples=50 if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci" else 2000)
@given(st.text(max_size=60))
def test_a_fault_flag_of_any_text_is_a_fault_or_one_clear_error(text):
    try:
        spec = parse_fault_flag(text)
    except FaultSpecError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("--fault ")
        return
    assert spec.kind in FAULT_KINDS and spec.end_s() >= spec.at_s
