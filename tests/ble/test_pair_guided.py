"""Pairing that guides (issue 17): the wait for an unloaded ball shows a live reading and a
countdown, without a terminal it counts down in plain lines and asks nothing, ``sim ble``'s
default scenario lets the ball lie at rest long enough to pair, and a software radio held by
another process is said as such."""

from __future__ import annotations

import io
import os
import socket
import subprocess

import pytest

from device.config.known_devices import KnownDevices
from device.links import open_link
from device.pairing.pair import WaitReading, pair_device
from firmware_bridge import gatt
from simulators.ble_radio import SoftwareRadio
from simulators.devices import make_firmware
from simulators.scenario import Scenario, SensorConfig, load_scenario
from tests.ble.test_pair_zero import Hand
from tests.helpers import MASSAGECTL, LineReader, spawn, stop
from ui.commands.pairing import WaitView
from ui.commands.sim import SIM_BLE_REST_S

SPEED = 4.0
#: ``make test`` pairs once against a fresh ``sim ble``; ``make test-long`` ten times.
PAIR_RUNS = 10 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 1


def _run(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MASSAGECTL_BLE"}
    return subprocess.run(
        [MASSAGECTL, *args],
        capture_output=True,  # no terminal: stderr is a pipe, stdin is empty
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=timeout_s,
        env=env,
    )


async def test_the_wait_shows_the_reading_and_counts_down_until_let_go():
    scenario = Scenario(name="held", sensor=SensorConfig(drift_n_per_min=0.0))
    radio = SoftwareRadio(make_firmware("ball", scenario), speed=SPEED, log=lambda _t: None)
    await radio.start()
    hand = Hand(4.0)
    radio.firmware.physics.force_source = hand
    readings: list[WaitReading] = []

    def watch(reading: WaitReading) -> None:
        readings.append(reading)
        loaded = [r for r in readings if r.state == "loaded"]
        if len(loaded) >= 40:  # about 2.5 s of device time: the person lets go
            hand.force_n = 0.0

    try:
        link = open_link(
            f"ble://{gatt.BALL_ADVERTISED_NAME}", hci=radio.transport_spec, speed=SPEED
        )
        await pair_device(link, tare_timeout_s=20.0, watch=watch)
    finally:
        await radio.stop()
    loaded = [r for r in readings if r.state == "loaded"]
    assert len(loaded) >= 40
    assert all(3.7 < r.force_n < 4.3 for r in loaded), [r.force_n for r in loaded]
    lefts = [r.left_s for r in loaded]
    assert lefts == sorted(lefts, reverse=True), "the countdown goes down"
    assert 17.0 < lefts[0] <= 20.0 and lefts[-1] < lefts[0] - 1.5
    assert readings[-1].state == "ready" and abs(readings[-1].force_n) < 0.5
    assert KnownDevices().find(gatt.BALL_ADVERTISED_NAME) is not None


def _readings(state: str, force_n: float, lefts: list[float]) -> list[WaitReading]:
    return [WaitReading(state, force_n, left, 30.0) for left in lefts]


def test_without_a_terminal_the_wait_is_a_countdown_line_every_5_s():
    out = io.StringIO()  # not a terminal
    view = WaitView(out)
    for reading in _readings("loaded", 6.0, [30.0 - 0.25 * i for i in range(60)]):
        view.show(reading)
    view.show(WaitReading("ready", 0.1, 15.0, 30.0))
    lines = out.getvalue().splitlines()
    assert lines == [
        "waiting for the ball: +6.0 N, let go of the ball; 30 s left of 30 s",
        "waiting for the ball: +6.0 N, let go of the ball; 25 s left of 30 s",
        "waiting for the ball: +6.0 N, let go of the ball; 20 s left of 30 s",
    ]
    assert "\r" not in out.getvalue() and "?" not in out.getvalue()


def test_on_a_terminal_the_wait_is_one_line_rewritten():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    view = WaitView(out)
    for reading in _readings("moving", 2.0, [30.0, 29.9, 29.8]):
        view.show(reading)
    view.clear()
    text = out.getvalue()
    assert text.count("\r\x1b[2K") == 4 and "\n" not in text
    assert "+2.0 N, keep the ball still; 30 s left" in text


def test_sim_ble_default_scenario_rests_long_enough_to_pair_then_presses():
    default = load_scenario(None)
    rested = Scenario(press=default.press, repeat_s=default.repeat_s, start_s=SIM_BLE_REST_S)
    assert SIM_BLE_REST_S >= 20.0
    assert max(rested.force_at(t / 10) for t in range(int(SIM_BLE_REST_S * 10))) == 0.0
    assert max(rested.force_at(SIM_BLE_REST_S + t / 10) for t in range(160)) == 6.0
    assert max(default.force_at(t / 10) for t in range(160)) == 6.0


@pytest.mark.timeout(40 + 30 * PAIR_RUNS)
def test_pair_with_no_terminal_against_a_fresh_sim_ble_succeeds_without_waiting():
    """Failed before: the default scenario pressed 6 N from its first second, so a pair
    started right after the simulator said "let go" (and, before the wait, failed 6 in 10)."""
    outcomes = []
    for _run_no in range(PAIR_RUNS):
        sim = spawn(MASSAGECTL, "sim", "ble", "--quiet")
        try:
            hci = LineReader(sim).wait_for(r"^READY hci=(tcp-client:127\.0\.0\.1:\d+)$", 30)
            paired = _run("pair", gatt.BALL_ADVERTISED_NAME, "--hci", hci.group(1))
        finally:
            stop(sim)
        outcomes.append((paired.returncode, paired.stderr))
        assert paired.returncode == 0, paired.stderr
        assert "let go" not in paired.stderr, paired.stderr
        assert "tare: zero at" in paired.stderr
        KnownDevices().remove(gatt.BALL_ADVERTISED_NAME)
    assert [code for code, _ in outcomes] == [0] * PAIR_RUNS


def test_pair_while_another_process_holds_the_radio_says_so():
    sim = spawn(MASSAGECTL, "sim", "ble", "--quiet")
    try:
        hci = LineReader(sim).wait_for(r"^READY hci=(tcp-client:127\.0\.0\.1:(\d+))$", 30)
        with socket.create_connection(("127.0.0.1", int(hci.group(2)))):  # the other process
            paired = _run("pair", gatt.BALL_ADVERTISED_NAME, "--hci", hci.group(1))
    finally:
        stop(sim)
    assert paired.returncode == 2
    assert "another process holds the radio" in paired.stderr, paired.stderr
    assert "did not power up" not in paired.stderr and "Traceback" not in paired.stderr
    assert len(paired.stderr.strip().splitlines()) == 1, paired.stderr
