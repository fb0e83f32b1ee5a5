"""Device URLs: ``serial:///dev/ttyACM0``, ``ble://NAME`` or ``ble://AA:BB:CC:DD:EE:FF``,
``sim://ball?scenario=FILE&speed=K&rate=R``, ``sim://handheld``, ``replay://DIR?speed=K|max``.

Parsed by hand: a BLE address looks like host:port to ``urllib`` and is not one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from device.errors import BadUrlError, UsageError

SCHEMES = ("serial", "ble", "sim", "replay")
SIM_DEVICES = ("ball", "handheld", "progressor", "forceboard", "whc06")
#: Which firmware a simulated device runs (``firmware=``): the Python one or the C core.
SIM_FIRMWARES = ("python", "c")
#: what ``ble://ADDRESS?kind=K`` takes (a name picks its kind from the registry)
BLE_KINDS = ("ball", "progressor", "forceboard", "whc06")
_BLE_ADDRESS = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")


#: The fastest a simulator runs (device seconds per real second). Above it the simulators'
#: timers (the 500 ms deadman is 25 ms of real time at 20x) are shorter than a loaded
#: 2-core machine's scheduling delays: a run would stop on "lost contact" for no reason.
MAX_SIM_SPEED = 20.0


def check_sim_speed(speed: float, what: str = "--speed") -> float:
    """``speed`` if a simulator can honour it (0 < speed <= MAX_SIM_SPEED), else
    ``UsageError`` saying the bound."""
    if not (isinstance(speed, int | float) and math.isfinite(speed) and 0 < speed <= MAX_SIM_SPEED):
        raise UsageError(
            f"{what} must be a number above 0 and at most {MAX_SIM_SPEED:g} "
            f"(the simulators cannot keep their timers faster), got {speed!r}"
        )
    return float(speed)


@dataclass(frozen=True)
class DeviceUrl:
    scheme: str
    #: serial: the port path; ble: a name or an address; sim: "ball"/"handheld"; replay: a dir
    target: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def is_ble_address(self) -> bool:
        return self.scheme == "ble" and bool(_BLE_ADDRESS.match(self.target))

    @property
    def is_simulated(self) -> bool:
        return self.scheme in ("sim", "replay")

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.scheme}://{self.target}" + (f"?{query}" if query else "")


def parse_url(url: str) -> DeviceUrl:
    """Parse a device URL; raises BadUrlError with what is wrong."""
    if "://" not in url:
        raise BadUrlError(
            f"{url!r} is not a device URL (try serial:///dev/ttyACM0, ble://NAME, sim://ball)"
        )
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise BadUrlError(f"{url!r}: unknown scheme {scheme!r} (known: {', '.join(SCHEMES)})")
    target, _, query = rest.partition("?")
    target = unquote(target)
    params = dict(parse_qsl(query, keep_blank_values=True))
    if not target:
        raise BadUrlError(f"{url!r}: nothing after {scheme}://")
    if scheme == "sim":
        if target not in SIM_DEVICES:
            raise BadUrlError(f"{url!r}: simulated devices are {', '.join(SIM_DEVICES)}")
        unknown = set(params) - {"scenario", "speed", "user", "rate", "firmware", "protocol"}
        if unknown:
            raise BadUrlError(f"{url!r}: unknown parameter(s) {', '.join(sorted(unknown))}")
        if "speed" in params:
            try:
                check_sim_speed(float(params["speed"]), "speed")
            except ValueError as exc:
                raise BadUrlError(f"{url!r}: {exc}") from None
        if "rate" in params:
            rate = params["rate"]
            if not (rate.isdigit() and 10 <= int(rate) <= 2000):
                raise BadUrlError(f"{url!r}: rate must be a whole number of Hz, 10-2000")
        if params.get("firmware", "python") not in SIM_FIRMWARES:
            raise BadUrlError(f"{url!r}: firmware= is one of {', '.join(SIM_FIRMWARES)}")
        if params.get("user", "scripted") != "scripted":
            raise BadUrlError(f"{url!r}: user= takes one value, 'scripted'")
        if params.get("protocol", "3") not in ("2", "3"):
            raise BadUrlError(
                f"{url!r}: protocol= is 2 (a device that does not play patterns) or 3"
            )
    elif scheme == "replay":
        unknown = set(params) - {"speed"}  # replay only paces a file: no bound but > 0
        if unknown:
            raise BadUrlError(f"{url!r}: unknown parameter(s) {', '.join(sorted(unknown))}")
        speed = params.get("speed", "1")
        try:
            if speed.lower() != "max" and not float(speed) > 0:
                raise ValueError
        except ValueError:
            raise BadUrlError(f"{url!r}: speed must be a positive number or 'max'") from None
    elif scheme == "ble" and params.get("kind", "ball") not in BLE_KINDS:
        raise BadUrlError(f"{url!r}: kind= is one of {', '.join(BLE_KINDS)}")
    elif scheme == "ble" and ":" in target and not _BLE_ADDRESS.match(target):
        raise BadUrlError(f"{url!r}: a BLE address is six hex pairs, like AA:BB:CC:DD:EE:FF")
    return DeviceUrl(scheme, target, params)
