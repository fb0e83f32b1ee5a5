"""The reference C firmware core (``firmware_bridge/c``) in the simulator, through ctypes.

``CFirmware`` has the interface of ``simulators.firmware.Firmware`` (``handle(msg, t_s)``,
``advance(t_s)``, ``events``, the motor state...) with every decision taken by the C core;
the physics (motor, sensor, battery) stays Python and reaches the core through its HAL: the
ADC read steps the physics, the motor drive sets the physics' motor, transport writes are
decoded with ``firmware_bridge`` (so the C encoder is checked by the Python decoder on every
message).

The core is built with the system C compiler (``$CC`` or ``cc``) on first use into a cache
folder (platformdirs' user cache, or ``$MASSAGECTL_CFW_CACHE``), named by a hash of its
sources and flags: a changed source is rebuilt, an unchanged one is loaded as it is.
``build_tool`` builds the standalone test binaries (sanitizers on) the same way.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import firmware_bridge
from firmware_bridge.messages import (
    Message,
    NackCode,
    decode_message,
    encode_message,
)
from simulators.firmware import BALL, DEADMAN_S, EventLog, FirmwareConfig
from simulators.physics import BallPhysics
from simulators.scenario import Scenario

C_DIR = Path(firmware_bridge.__file__).resolve().parent / "c"
INCLUDE_DIR = C_DIR / "include"
SRC_DIR = C_DIR / "src"
STRICT_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1")
_MASK = 0xFFFFFFFF


class CFirmwareError(RuntimeError):
    """The C core cannot be built or loaded (no compiler, a compile error): one line."""


def core_sources() -> list[Path]:
    return sorted(SRC_DIR.glob("*.c"))


def find_cc() -> str:
    cc = os.environ.get("CC", "cc")
    path = shutil.which(cc)
    if path is None:
        raise CFirmwareError(
            f"the C firmware needs a C compiler and none was found ({cc!r} is not on PATH): "
            "install gcc or clang (Debian/Ubuntu: apt install build-essential), or set CC"
        )
    return path


def cache_dir() -> Path:
    override = os.environ.get("MASSAGECTL_CFW_CACHE")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("massagectl")) / "cfw"


def _digest(paths: list[Path], flags: tuple[str, ...], cc: str) -> str:
    h = hashlib.sha256()
    h.update(" ".join((cc, *flags)).encode())
    for p in sorted(paths):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def build_tool(
    name: str, sources: list[Path], flags: tuple[str, ...], *, shared: bool = False
) -> Path:
    """Compile ``sources`` (with the core's headers) into the cache, unless a build of the
    very same sources and flags is there already; returns its path."""
    cc = find_cc()
    headers = sorted(INCLUDE_DIR.glob("*.h"))
    extra = ("-shared", "-fPIC") if shared else ()
    all_flags = (*STRICT_FLAGS, *flags, *extra)
    digest = _digest([*sources, *headers], all_flags, cc)
    out_dir = cache_dir()
    out = out_dir / f"{name}-{digest}{'.so' if shared else ''}"
    if out.exists():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}-")
    os.close(fd)
    cmd = [cc, *all_flags, "-I", str(INCLUDE_DIR), *map(str, sources), "-o", tmp]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["(no output)"])[0]
            raise CFirmwareError(f"building the C firmware failed: {first}")
        os.replace(tmp, out)  # atomic: a concurrent build of the same digest is harmless
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


# ---- the library ------------------------------------------------------------------------

_ADC = ctypes.CFUNCTYPE(
    ctypes.c_int32, ctypes.c_void_p, ctypes.c_uint32, ctypes.POINTER(ctypes.c_bool)
)
_NOW = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_void_p)
_MOTOR = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint16, ctypes.c_uint16, ctypes.c_uint8)
_WRITE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint8), ctypes.c_size_t)
_BATTERY = ctypes.CFUNCTYPE(ctypes.c_uint8, ctypes.c_void_p)
_EVENT = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_int32, ctypes.c_int32
)


class _DeviceInfo(ctypes.Structure):
    _fields_ = [
        ("model", ctypes.c_char * 16),
        ("firmware", ctypes.c_char * 8),
        ("serial_number", ctypes.c_char * 16),
        ("protocol_version", ctypes.c_uint8),
        ("rate_min_hz", ctypes.c_uint16),
        ("rate_max_hz", ctypes.c_uint16),
        ("motor_kind", ctypes.c_uint8),
        ("motor_freq_min_hz", ctypes.c_uint16),
        ("motor_freq_max_hz", ctypes.c_uint16),
        ("cal_scale_counts_per_n", ctypes.c_float),
        ("cal_offset_counts", ctypes.c_int32),
        ("limit_max_mn", ctypes.c_uint32),
    ]


class _Config(ctypes.Structure):
    _fields_ = [
        ("info", _DeviceInfo),
        ("motor_default_hz", ctypes.c_uint16),
        ("deadman_us", ctypes.c_uint32),
        ("status_period_us", ctypes.c_uint32),
        ("idle_rate_hz", ctypes.c_uint16),
        ("ramp_permille_per_ms", ctypes.c_uint16),
    ]


class _Hal(ctypes.Structure):
    _fields_ = [
        ("ctx", ctypes.c_void_p),
        ("now_us", _NOW),
        ("adc_read", _ADC),
        ("motor_drive", _MOTOR),
        ("transport_write", _WRITE),
        ("battery_pct", _BATTERY),
        ("event", _EVENT),
    ]


# enum mb_field (include/mb_core.h)
GET = {
    "limit_mn": 1,
    "flags": 2,
    "rate_hz": 3,
    "samples_per_batch": 4,
    "zero_counts": 5,
    "motor_permille": 6,
    "motor_target_permille": 7,
    "motor_hz": 8,
    "last_accepted_us": 9,
    "commands": 10,
    "stops": 11,
    "duplicates": 12,
    "deadman_us": 13,
    "motor_deadline_set": 14,
    "pattern": 19,
    "pattern_step": 20,
}
OFF_CAUSES = {1: "stop", 2: "limit", 3: "deadman", 4: "duration", 5: "vibrate_zero", 6: "sensor"}

_lib: ctypes.CDLL | None = None


def load_library() -> ctypes.CDLL:
    """The core as a shared library (built without sanitizers), built on first use."""
    global _lib
    if _lib is not None:
        return _lib
    path = build_tool("libmbcore", core_sources(), ("-O2",), shared=True)
    lib = ctypes.CDLL(str(path))
    lib.mb_core_size.restype = ctypes.c_size_t
    lib.mb_config_size.restype = ctypes.c_size_t
    lib.mb_config_default.argtypes = [ctypes.POINTER(_Config)]
    lib.mb_core_init.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(_Config),
        ctypes.POINTER(_Hal),
        ctypes.c_uint32,
    ]
    lib.mb_core_poll.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    for fn in (lib.mb_core_rx_message, lib.mb_core_rx_serial):
        fn.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t]
    lib.mb_core_nack.argtypes = [ctypes.c_void_p, ctypes.c_uint16, ctypes.c_uint8, ctypes.c_uint8]
    lib.mb_core_set_deadman_us.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.mb_core_get.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.mb_core_get.restype = ctypes.c_int64
    if lib.mb_config_size() != ctypes.sizeof(_Config):
        raise CFirmwareError(
            f"the C firmware's mb_config_t is {lib.mb_config_size()} bytes, the binding "
            f"expects {ctypes.sizeof(_Config)}: simulators/c_firmware.py is out of date"
        )
    _lib = lib
    return lib


class CFirmware(EventLog):
    """One simulated device run by the C core. Drive it with ``handle(msg, t_s)`` and
    ``advance(t_s)``, as ``simulators.firmware.Firmware``."""

    kind = "c"

    def __init__(self, scenario: Scenario, config: FirmwareConfig = BALL) -> None:
        super().__init__()
        self._lib = load_library()
        self.scenario = scenario
        self.config = config
        self.physics = BallPhysics(scenario)
        self.scale = scenario.sensor.scale_counts_per_n
        self.t_s = 0.0
        self.true_force_n = 0.0
        self._out: list[Message] = []
        self._drift = 1.0 + scenario.clock.drift_ppm * 1e-6
        # the sim time and device time of the core call under way (to date its callbacks)
        self._call_t_s = 0.0
        self._call_us = self.device_us(0.0)
        self._phys_t_s = 0.0
        self._deadman_s = DEADMAN_S

        cfg = _Config()
        self._lib.mb_config_default(ctypes.byref(cfg))
        info = cfg.info
        info.model = config.model.encode("ascii")[:16]
        info.firmware = config.firmware.encode("ascii")[:8]
        info.serial_number = config.serial_number.encode("ascii")[:16]
        info.rate_min_hz = config.rate_min_hz
        info.rate_max_hz = config.rate_max_hz
        info.motor_kind = int(config.motor_kind)
        info.motor_freq_min_hz = config.motor_freq_min_hz
        info.motor_freq_max_hz = config.motor_freq_max_hz
        info.cal_scale_counts_per_n = self.scale
        info.cal_offset_counts = scenario.sensor.offset_counts
        info.limit_max_mn = config.limit_max_mn
        info.protocol_version = config.protocol_version
        cfg.motor_default_hz = scenario.motor.default_hz
        cfg.deadman_us = self._device_span_us(DEADMAN_S)
        cfg.idle_rate_hz = 1000
        # the physics models the motor's spin-up: no ramp on top (the C tests check the ramp)
        cfg.ramp_permille_per_ms = 0

        # keep the callbacks alive as long as the core
        self._callbacks = (
            _NOW(lambda _ctx: self._call_us),
            _ADC(self._adc_read),
            _MOTOR(self._motor_drive),
            _WRITE(self._write),
            _BATTERY(self._battery),
            _EVENT(self._event_cb),
        )
        hal = _Hal(None, *self._callbacks)
        self._core = ctypes.create_string_buffer(self._lib.mb_core_size())
        self._lib.mb_core_init(self._core, ctypes.byref(cfg), ctypes.byref(hal), self._call_us)

    # ---- clock ----------------------------------------------------------------------------

    def device_us(self, t_s: float) -> int:
        """Device clock at simulator time ``t_s``: drifts by ``drift_ppm`` and wraps at 2^32."""
        c = self.scenario.clock
        return (c.start_us + round(t_s * 1e6 * self._drift)) & _MASK

    def _device_span_us(self, span_s: float) -> int:
        return max(0, min(_MASK, round(span_s * 1e6 * self._drift)))

    def _sim_s(self, t_us: int) -> float:
        """Simulator time of device time ``t_us`` (at or before the call under way)."""
        return self._call_t_s - ((self._call_us - t_us) & _MASK) / 1e6 / self._drift

    def _enter(self, t_s: float) -> int:
        self._call_t_s = t_s
        self._call_us = self.device_us(t_s)
        return self._call_us

    def _get(self, name: str) -> int:
        return int(self._lib.mb_core_get(self._core, GET[name]))

    # ---- HAL ------------------------------------------------------------------------------

    def _adc_read(self, _ctx, t_us: int, ok) -> int:
        t_s = self._sim_s(t_us)
        dt_s = max(0.0, t_s - self._phys_t_s)
        self._phys_t_s = t_s
        self.t_s = max(self.t_s, t_s)
        self.true_force_n, raw = self.physics.step(t_s, dt_s)
        ok[0] = True
        return max(-(2**31), min(2**31 - 1, raw))

    def _motor_drive(self, _ctx, permille: int, hz: int, _waveform: int) -> None:
        m = self.physics.motor
        m.drive = permille / 1000.0
        if permille:
            m.commanded_hz = float(hz)

    def _write(self, _ctx, data, length: int) -> None:
        self._out.append(decode_message(ctypes.string_at(data, length)))

    def _battery(self, _ctx) -> int:
        return max(0, min(100, round(self.physics.battery_pct)))

    def _event_cb(self, _ctx, t_us: int, code: int, a: int, b: int) -> None:
        t_s = self._sim_s(t_us)
        if code == 1:
            self._event(t_s, "motor_off", cause=OFF_CAUSES.get(a, str(a)))
        elif code == 2:
            self._event(t_s, "vibrate", permille=a, hz=b)
        elif code == 3:
            self._event(t_s, "stop_received")
        elif code == 4:
            self._event(t_s, "set_limit", limit_mn=a)
        elif code == 5:
            self._event(t_s, "tare", offset_counts=a)
        elif code == 6:
            self._event(t_s, "nack", type=a, code=NackCode(b).name)
        elif code == 7:
            self._event(t_s, "duplicate", type=a, seq=b)
        elif code == 8:
            self._event(t_s, "limit_tripped", force_n=round(a / 1000.0, 3))
        elif code == 9:
            last_s = t_s - a / 1e6 / self._drift
            self._event(t_s, "deadman", last_command_s=round(last_s, 4))
        else:
            self._event(t_s, "sensor_fault")

    def _take_out(self) -> list[Message]:
        out, self._out = self._out, []
        return out

    # ---- the Firmware interface --------------------------------------------------------------

    def handle(self, msg: Message, t_s: float) -> list[Message]:
        """Process one command at simulator time ``t_s``: what the device sent up to ``t_s``,
        then its replies."""
        return self.handle_bytes(encode_message(msg), t_s)

    def handle_bytes(self, data: bytes, t_s: float) -> list[Message]:
        """One message as bytes (header + payload), decoded by the C core."""
        now_us = self._enter(t_s)
        self._lib.mb_core_rx_message(self._core, now_us, data, len(data))
        self.t_s = max(self.t_s, t_s)
        return self._take_out()

    def nack_undecodable(self, seq: int, mtype: int, code: NackCode) -> list[Message]:
        self._lib.mb_core_nack(self._core, seq, mtype, int(code))
        return self._take_out()

    def advance(self, t_s: float) -> list[Message]:
        """Run the device up to simulator time ``t_s``; returns messages it sends meanwhile."""
        now_us = self._enter(t_s)
        self._lib.mb_core_poll(self._core, now_us)
        self.t_s = max(self.t_s, t_s)
        return self._take_out()

    @property
    def motor_on(self) -> bool:
        """The motor runs, or a pattern plays (even in a step at 0)."""
        return self.physics.motor.drive > 0.0 or self.pattern_playing is not None

    @property
    def pattern_playing(self) -> int | None:
        pid = self._get("pattern")
        return None if pid < 0 else pid

    @property
    def deadman_s(self) -> float:
        return self._deadman_s

    @deadman_s.setter
    def deadman_s(self, value: float) -> None:
        self._deadman_s = value
        self._lib.mb_core_set_deadman_us(self._core, self._device_span_us(value))

    @property
    def rate_hz(self) -> int:
        return self._get("rate_hz")

    @property
    def samples_per_batch(self) -> int:
        return self._get("samples_per_batch")

    @property
    def limit_mn(self) -> int:
        return self._get("limit_mn")

    @property
    def flags(self) -> int:
        """Status flags, without MOTOR_ON (as ``Firmware.flags``)."""
        return self._get("flags") & ~0x08

    @property
    def zero_counts(self) -> int:
        return self._get("zero_counts")

    @property
    def commands_received(self) -> int:
        return self._get("commands")

    @property
    def stops_received(self) -> int:
        return self._get("stops")

    @property
    def duplicates_received(self) -> int:
        return self._get("duplicates")

    @property
    def last_command_s(self) -> float:
        return self._sim_s(self._get("last_accepted_us"))

    @property
    def motor_until_s(self) -> bool | None:
        return True if self._get("motor_deadline_set") else None
