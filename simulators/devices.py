"""The simulated devices by name: ``ball`` (sensor ball) and ``handheld`` (vibrating
massager with a force sensor in its head)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from simulators.faults import DEVICE_KINDS
from simulators.firmware import BALL, HANDHELD, Firmware, FirmwareConfig
from simulators.scenario import MotorConfig, Scenario, load_scenario

DEVICES: dict[str, FirmwareConfig] = {"ball": BALL, "handheld": HANDHELD}
#: Which firmware runs the simulated device: the Python one (simulators.firmware) or the
#: reference C core (firmware_bridge/c, through simulators.c_firmware).
FIRMWARES = ("python", "c")

#: The handheld's motor when the scenario does not describe one: percussive, slows ~0.4 %
#: per newton pressed, leaks more into its sensor than the ball's.
HANDHELD_MOTOR = MotorConfig(
    leak_peak_n=3.0,
    detune_pct=-3.0,
    spinup_s=0.08,
    brake_s=0.05,
    default_hz=40,
    load_slowdown_pct_per_n=0.4,
)


def firmware_class(kind: str = "python"):
    """The firmware class of ``kind`` ("python" or "c"; the C core is built on first use and
    raises ``simulators.c_firmware.CFirmwareError`` when it cannot be)."""
    if kind == "python":
        return Firmware
    if kind == "c":
        from simulators.c_firmware import CFirmware

        return CFirmware
    raise ValueError(f"no firmware {kind!r} (known: {', '.join(FIRMWARES)})")


def make_firmware(
    name: str,
    scenario: Scenario | str | Path | None = None,
    rate_hz: int | None = None,
    firmware: str = "python",
    protocol_version: int | None = None,
) -> Firmware:
    """A fresh firmware for device ``name`` running ``scenario`` (a Scenario, a TOML path, or
    None for the default scenario). ``rate_hz`` (or the scenario's ``[adc] rate_hz``): the one
    rate its ADC runs at (DeviceInfo rate_min = rate_max), integrating at <= 80 Hz unless
    the scenario picks the ADC. ``firmware``: "python" or "c". ``protocol_version``: 2 for a
    device that does not play patterns (the default: 3)."""
    cls = firmware_class(firmware)
    if name not in DEVICES:
        raise ValueError(f"no simulated device {name!r} (known: {', '.join(DEVICES)})")
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if firmware == "c" and any(f.kind in DEVICE_KINDS for f in scenario.faults):
        from simulators.c_firmware import CFirmwareError

        raise CFirmwareError(
            "device faults (" + ", ".join(sorted({f.kind for f in scenario.faults})) + ") "
            "run on the Python firmware only; link faults work with both"
        )
    if name == "handheld" and scenario.motor == MotorConfig():
        scenario = replace(scenario, motor=HANDHELD_MOTOR)
    config = DEVICES[name]
    rate = rate_hz or scenario.adc.rate_hz
    if rate:
        if not 10 <= rate <= 2000:
            raise ValueError(f"a simulated ADC runs at 10-2000 Hz, not {rate}")
        scenario = replace(scenario, adc=replace(scenario.adc, rate_hz=int(rate)))
        config = replace(config, rate_min_hz=int(rate), rate_max_hz=int(rate))
    if protocol_version is not None:
        config = replace(config, protocol_version=protocol_version)
    return cls(scenario, config)
