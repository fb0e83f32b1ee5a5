"""The simulated devices by name: ``ball`` (sensor ball) and ``handheld`` (vibrating massager
with a force sensor in its head)."""

from __future__ import annotations

from pathlib import Path

from simulators.firmware import BALL, Firmware
from simulators.scenario import Scenario, load_scenario

DEVICES = {"ball": BALL}


def make_firmware(name: str, scenario: Scenario | str | Path | None = None) -> Firmware:
    """A fresh firmware for device ``name`` running ``scenario`` (a Scenario, a TOML path, or
    None for the default scenario)."""
    if name not in DEVICES:
        raise ValueError(f"no simulated device {name!r} (known: {', '.join(DEVICES)})")
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    return Firmware(scenario, DEVICES[name])
