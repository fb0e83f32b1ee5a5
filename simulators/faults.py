"""Fault injection on a framed byte stream: corrupt, drop, duplicate and reorder frames, or
cut the link, with a seeded random generator (a run with the same seed and the same frames
makes the same faults).

``FrameFaults`` is pure: ``frames(data)`` takes bytes of one direction of a serial stream
(any chunking) and returns the bytes to pass on. ``PtyRelay`` puts two of them (device ->
host, host -> device) between a serial port (``massagectl sim serial``'s pty) and a fresh
pseudo-terminal of its own that a host opens instead: a noisy cable, on real ptys.
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import tty
from dataclasses import dataclass

DELIMITER = 0


@dataclass
class FaultCounts:
    frames: int = 0
    corrupted: int = 0
    dropped: int = 0
    duplicated: int = 0
    swapped: int = 0


class FrameFaults:
    """Per-frame faults on one direction of a serial stream (frames end at 0x00).

    ``corrupt``: probability that a frame gets one byte flipped (never its delimiter, so the
    receiver loses this frame only); ``drop``, ``duplicate``: probabilities that a frame is
    lost or sent twice; ``swap``: probability that a frame is held back and sent after the
    next one. ``cut``: when True, nothing passes (a link that is gone)."""

    def __init__(
        self,
        *,
        corrupt: float = 0.0,
        drop: float = 0.0,
        duplicate: float = 0.0,
        swap: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.corrupt = corrupt
        self.drop = drop
        self.duplicate = duplicate
        self.swap = swap
        self.cut = False
        self.counts = FaultCounts()
        self._rng = random.Random(seed)
        self._partial = bytearray()
        self._held: bytes | None = None

    def frames(self, data: bytes) -> bytes:
        """The bytes to pass on for ``data`` (whole frames only; a partial frame waits)."""
        out = bytearray()
        start = 0
        while True:
            end = data.find(DELIMITER, start)
            if end < 0:
                self._partial += data[start:]
                return bytes(out)
            frame = bytes(self._partial + data[start : end + 1])
            self._partial.clear()
            start = end + 1
            out += self._one(frame)

    def _one(self, frame: bytes) -> bytes:
        if self.cut:
            return b""
        self.counts.frames += 1
        rng = self._rng
        if rng.random() < self.drop:
            self.counts.dropped += 1
            return b""
        if len(frame) > 1 and rng.random() < self.corrupt:
            b = bytearray(frame)
            i = rng.randrange(len(b) - 1)
            flip = rng.randrange(1, 256)
            if b[i] ^ flip == 0:  # a new 0x00 would split the frame: flip other bits
                flip ^= 0xFF
            b[i] ^= flip
            frame = bytes(b)
            self.counts.corrupted += 1
        if rng.random() < self.duplicate:
            self.counts.duplicated += 1
            frame = frame + frame
        if self._held is not None:
            held, self._held = self._held, None
            return frame + held
        if rng.random() < self.swap:
            self.counts.swapped += 1
            self._held = frame
            return b""
        return frame


class PtyRelay:
    """A pseudo-terminal whose other end is relayed to ``port_path`` (a serial port or pty)
    through ``to_host`` and ``to_device`` (FrameFaults). Open ``path`` as the host's port.
    Runs on the event loop (``start``/``close``); writes are non-blocking, and what a side
    cannot take is dropped (as a cable that nobody reads)."""

    def __init__(self, port_path: str, to_host: FrameFaults, to_device: FrameFaults) -> None:
        self.to_host = to_host
        self.to_device = to_device
        self._port_fd = os.open(port_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self._port_fd)
        self._master_fd, self._slave_fd = os.openpty()
        tty.setraw(self._slave_fd)
        os.set_blocking(self._master_fd, False)
        self.path = os.ttyname(self._slave_fd)
        self.bytes_dropped = 0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self._port_fd, self._pump, self._port_fd, self._master_fd, self.to_host)
        loop.add_reader(self._master_fd, self._pump, self._master_fd, self._port_fd, self.to_device)

    def cut(self, cut: bool = True) -> None:
        """Nothing passes either way (``cut(False)``: the link is back)."""
        self.to_host.cut = self.to_device.cut = cut

    def _pump(self, src: int, dst: int, faults: FrameFaults) -> None:
        try:
            data = os.read(src, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno == errno.EIO:  # the other side closed: wait for it to reopen
                return
            raise
        out = faults.frames(data)
        if not out:
            return
        try:
            n = os.write(dst, out)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            n = 0
        self.bytes_dropped += len(out) - n

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for fd in (self._port_fd, self._master_fd):
            loop.remove_reader(fd)
        for fd in (self._port_fd, self._master_fd, self._slave_fd):
            try:
                os.close(fd)
            except OSError:
                pass


# ---- faults from scenario files and ``sim`` flags ------------------------------------------------

#: Faults on the byte stream between host and device (serial framing): the simulator's
#: transport applies them (``simulators.runtime``). On BLE the link layer checks, orders and
#: retransmits every packet, so only ``disconnect`` of these can happen there.
LINK_KINDS = ("stall", "disconnect", "corrupt", "duplicate", "reorder", "drop")
#: Faults of the device itself: the simulated firmware applies them on every transport.
DEVICE_KINDS = (
    "saturation",
    "flatline",
    "battery_low",
    "brownout",
    "motor_slow_stop",
    "keepalive_ignored",
    "clock_jump",
)
FAULT_KINDS = LINK_KINDS + DEVICE_KINDS
#: The fields each kind takes besides ``kind``, ``at_s`` and ``for_s``.
_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "stall": ("ms", "direction"),
    "disconnect": (),
    "corrupt": ("pct", "direction"),
    "duplicate": ("pct", "direction"),
    "reorder": ("pct", "direction"),
    "drop": ("pct", "direction"),
    "saturation": (),
    "flatline": (),
    "battery_low": ("battery_pct",),
    "brownout": ("ms",),
    "motor_slow_stop": ("brake_s",),
    "keepalive_ignored": (),
    "clock_jump": ("jump_s",),
}
DIRECTIONS = ("both", "to_host", "to_device")
#: The ADC's rail that a saturated sensor reads (24-bit signed, as HX711 and ADS1220).
ADC_RAIL_COUNTS = 2**23 - 1


class FaultSpecError(ValueError):
    """A fault entry that cannot be run; the message names the field."""


@dataclass(frozen=True)
class FaultSpec:
    """One injected fault: ``kind`` from ``at_s`` (simulator seconds) for ``for_s`` seconds
    (None: to the end; ``stall`` and ``brownout`` last ``ms``)."""

    kind: str
    at_s: float = 0.0
    for_s: float | None = None
    #: stall: how long nothing passes; brownout: how long the device is dead before it reboots
    ms: float = 300.0
    #: corrupt, duplicate, reorder, drop: percent of frames
    pct: float = 5.0
    direction: str = "both"
    battery_pct: float = 5.0
    brake_s: float = 0.5
    jump_s: float = -1.0

    def end_s(self) -> float:
        if self.kind in ("stall", "brownout"):
            return self.at_s + self.ms / 1000.0
        return self.at_s + self.for_s if self.for_s is not None else float("inf")

    def active(self, t_s: float) -> bool:
        return self.at_s <= t_s < self.end_s()

    def hits(self, direction: str) -> bool:
        return self.direction in ("both", direction)

    def to_dict(self) -> dict:
        out: dict = {"kind": self.kind, "at_s": self.at_s}
        if self.for_s is not None:
            out["for_s"] = self.for_s
        for name in _KIND_FIELDS[self.kind]:
            out[name] = getattr(self, name)
        return out


_RANGES: dict[str, tuple[float, float]] = {
    "at_s": (0.0, 1e6),
    "for_s": (0.0, 1e6),
    "ms": (0.0, 1e7),
    "pct": (0.0, 100.0),
    "battery_pct": (0.0, 100.0),
    "brake_s": (0.0, 60.0),
    "jump_s": (-4000.0, 4000.0),
}


def _number(where: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultSpecError(f"{where}.{name}: expected a number, got {value!r}")
    lo, hi = _RANGES[name]
    if not lo <= value <= hi:  # NaN fails too
        raise FaultSpecError(f"{where}.{name}: {value!r} is outside {lo:g} to {hi:g}")
    return float(value)


def parse_fault(table: object, where: str = "fault") -> FaultSpec:
    """A checked FaultSpec from one ``[[fault]]`` table (FaultSpecError naming the field)."""
    if not isinstance(table, dict):
        raise FaultSpecError(f"{where}: expected a table, got {type(table).__name__}")
    kind = table.get("kind")
    if kind not in FAULT_KINDS:
        raise FaultSpecError(
            f"{where}.kind: {kind!r} is not a fault (known: {', '.join(FAULT_KINDS)})"
        )
    allowed = ("kind", "at_s", "for_s") + _KIND_FIELDS[kind]
    values: dict = {"kind": kind}
    for key, value in table.items():
        if key not in allowed:
            raise FaultSpecError(
                f"{where}.{key}: not a field of a {kind} fault (known: {', '.join(allowed)})"
            )
        if key == "kind":
            continue
        if key == "direction":
            if value not in DIRECTIONS:
                raise FaultSpecError(
                    f"{where}.direction: {value!r} is not one of {', '.join(DIRECTIONS)}"
                )
            values[key] = value
        else:
            values[key] = _number(where, key, value)
    return FaultSpec(**values)


def parse_faults(tables: object, source: str = "<scenario>") -> tuple[FaultSpec, ...]:
    if not isinstance(tables, list | tuple):
        raise FaultSpecError(f"{source}: fault: expected an array of tables")
    return tuple(parse_fault(t, f"{source}: fault[{i}]") for i, t in enumerate(tables))


def parse_fault_flag(text: str) -> FaultSpec:
    """A fault from a ``sim --fault`` flag: ``KIND[@AT_S][:FIELD=VALUE,...]``, e.g.
    ``corrupt@5:pct=2,for_s=10`` or ``disconnect@12``."""
    where = f"--fault {text}" if text.isprintable() else f"--fault {text!r}"
    head, _, rest = text.partition(":")
    kind, at, at_s = head.partition("@")
    table: dict = {"kind": kind.strip()}
    try:
        if at:
            table["at_s"] = float(at_s)
        for item in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, value = item.partition("=")
            if not eq:
                raise FaultSpecError(f"{where}: {item!r} is not FIELD=VALUE")
            key = key.strip()
            table[key] = value.strip() if key == "direction" else float(value)
    except ValueError as exc:
        if isinstance(exc, FaultSpecError):
            raise
        raise FaultSpecError(f"{where}: not a number ({exc})") from None
    return parse_fault(table, where)


class LinkFaults:
    """The link faults of a fault plan on one framed byte stream, both directions, in
    simulator time: ``to_host(data, t_s)``/``to_device(data, t_s)`` return what passes now;
    ``release(t_s)`` what a stall held back and lets go by ``t_s``. ``disconnected(t_s)``:
    the link is gone for good (the transport closes)."""

    def __init__(self, specs: tuple[FaultSpec, ...], seed: int = 0) -> None:
        self.specs = tuple(s for s in specs if s.kind in LINK_KINDS)
        self.host = FrameFaults(seed=seed)
        self.device = FrameFaults(seed=seed + 1)
        self._held: dict[str, list[tuple[float, bytes]]] = {"to_host": [], "to_device": []}

    def __bool__(self) -> bool:
        return bool(self.specs)

    def disconnected(self, t_s: float) -> bool:
        return any(s.kind == "disconnect" and t_s >= s.at_s for s in self.specs)

    def _set(self, faults: FrameFaults, direction: str, t_s: float) -> float | None:
        """Set the frame probabilities active now; returns when a stall ends (or None)."""
        faults.corrupt = faults.drop = faults.duplicate = faults.swap = 0.0
        stall_end = None
        for s in self.specs:
            if not s.active(t_s) or not s.hits(direction):
                continue
            p = s.pct / 100.0
            if s.kind == "corrupt":
                faults.corrupt = p
            elif s.kind == "drop":
                faults.drop = p
            elif s.kind == "duplicate":
                faults.duplicate = p
            elif s.kind == "reorder":
                faults.swap = p
            elif s.kind == "stall":
                stall_end = max(stall_end or 0.0, s.end_s())
        return stall_end

    def _pass(self, faults: FrameFaults, direction: str, data: bytes, t_s: float) -> bytes:
        if self.disconnected(t_s):
            return b""
        stall_end = self._set(faults, direction, t_s)
        out = faults.frames(data)
        if stall_end is not None and out:
            self._held[direction].append((stall_end, out))
            return b""
        return out

    def to_host(self, data: bytes, t_s: float) -> bytes:
        return self._pass(self.host, "to_host", data, t_s)

    def to_device(self, data: bytes, t_s: float) -> bytes:
        return self._pass(self.device, "to_device", data, t_s)

    def release(self, direction: str, t_s: float) -> bytes:
        """Bytes held by a stall in ``direction`` whose stall is over by ``t_s``."""
        held = self._held[direction]
        if not held or held[0][0] > t_s or self.disconnected(t_s):
            return b""
        out = b"".join(d for end, d in held if end <= t_s)
        self._held[direction] = [(end, d) for end, d in held if end > t_s]
        return out


class DeviceFaults:
    """The device faults of a fault plan, asked by the simulated firmware
    (``simulators.firmware``) as it samples, ticks and takes commands."""

    def __init__(self, specs: tuple[FaultSpec, ...]) -> None:
        self.specs = tuple(s for s in specs if s.kind in DEVICE_KINDS)
        self._flat_raw: int | None = None
        self._browned: set[int] = set()

    def _active(self, kind: str, t_s: float) -> FaultSpec | None:
        for s in self.specs:
            if s.kind == kind and s.active(t_s):
                return s
        return None

    def raw(self, t_s: float, raw: int) -> int:
        """What the ADC reads: at its rail when saturated, stuck when flatlined."""
        if self._active("saturation", t_s):
            return ADC_RAIL_COUNTS
        if self._active("flatline", t_s):
            if self._flat_raw is None:
                self._flat_raw = raw
            return self._flat_raw
        self._flat_raw = None
        return raw

    def battery_pct(self, t_s: float, pct: float) -> float:
        s = self._active("battery_low", t_s)
        return min(pct, s.battery_pct) if s else pct

    def brake_s(self, t_s: float, brake_s: float) -> float:
        s = self._active("motor_slow_stop", t_s)
        return max(brake_s, s.brake_s) if s else brake_s

    def keepalive_ignored(self, t_s: float) -> bool:
        return self._active("keepalive_ignored", t_s) is not None

    def clock_offset_us(self, t_s: float) -> int:
        return sum(
            round(s.jump_s * 1e6) for s in self.specs if s.kind == "clock_jump" and t_s >= s.at_s
        )

    def browned_out(self, t_s: float) -> FaultSpec | None:
        """The brown-out the device is in at ``t_s`` (dead: no output, no input)."""
        return self._active("brownout", t_s)

    def reboot_due(self, t_s: float) -> bool:
        """True once per brown-out, when it has begun by ``t_s``: the device must reset."""
        for i, s in enumerate(self.specs):
            if s.kind == "brownout" and t_s >= s.at_s and i not in self._browned:
                self._browned.add(i)
                return True
        return False
