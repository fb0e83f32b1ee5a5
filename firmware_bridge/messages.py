"""Protocol messages, declared once with their little-endian layouts (docs/protocol.md).

Every message starts with a 4-byte header: ``version: u8, type: u8, seq: u16``. The payload
that follows has a fixed layout per type; ``ForceBatch`` ends with ``count: u8`` raw samples
of ``i32``. ``encode_message`` and ``decode_message`` turn messages into those bytes and back
(with no framing: serial framing lives in ``framing``; on BLE one message is one ATT value).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import ClassVar

__all__ = [
    "PROTOCOL_VERSION",
    "HEADER",
    "MAX_MESSAGE_LEN",
    "MAX_SAMPLES_PER_BATCH",
    "MotorKind",
    "Waveform",
    "StatusFlags",
    "NackCode",
    "Message",
    "Hello",
    "SetStream",
    "Vibrate",
    "Stop",
    "Keepalive",
    "SetLimit",
    "Tare",
    "PatternDefine",
    "PlayPattern",
    "PATTERNS_VERSION",
    "MAX_PATTERNS",
    "MAX_PATTERN_STEPS",
    "DeviceInfo",
    "ForceBatch",
    "Status",
    "Ack",
    "Nack",
    "TareResult",
    "MESSAGE_TYPES",
    "pattern_output_permille",
    "ProtocolError",
    "UnsupportedVersion",
    "encode_message",
    "decode_message",
]

#: Version 2: the firmware refuses Vibrate without a limit, clamps SetLimit to its ceiling
#: (DeviceInfo.limit_max_mn), feeds the deadman only with accepted commands, and answers a
#: repeated command (same seq, same bytes) with the same reply without acting again.
PROTOCOL_VERSION = 2
#: Version 3 adds firmware-played patterns (PatternDefine, PlayPattern) and changes no
#: layout: frames and Hello keep carrying 2 (so version 2 hosts and devices interoperate);
#: only DeviceInfo.protocol_version says 3 (docs/protocol.md, "Version 3").
PATTERNS_VERSION = 3
#: Pattern ids 0..MAX_PATTERNS-1 on a version 3 device.
MAX_PATTERNS = 8
HEADER = struct.Struct("<BBH")
#: The longest message (header + payload, before CRC and COBS) either side may send.
MAX_MESSAGE_LEN = 244
_BATCH_FIXED = struct.Struct("<IHB")
#: Samples in one ForceBatch that still fit MAX_MESSAGE_LEN: (244 - 4 - 7) // 4 = 58.
MAX_SAMPLES_PER_BATCH = (MAX_MESSAGE_LEN - HEADER.size - _BATCH_FIXED.size) // 4
_PATTERN_FIXED = struct.Struct("<BBB")
#: Steps in one PatternDefine that fit MAX_MESSAGE_LEN: (244 - 4 - 3) // 4 = 59.
MAX_PATTERN_STEPS = (MAX_MESSAGE_LEN - HEADER.size - _PATTERN_FIXED.size) // 4


class ProtocolError(ValueError):
    """Bytes that are not a valid message (bad version, type, length or field)."""


class UnsupportedVersion(ProtocolError):
    """A message whose header carries another protocol version (``version``)."""

    def __init__(self, version: int) -> None:
        super().__init__(f"protocol version {version}, expected {PROTOCOL_VERSION}")
        self.version = version


class MotorKind(IntEnum):
    NONE = 0
    ERM = 1
    LRA = 2
    PERCUSSIVE = 3


class Waveform(IntEnum):
    CONTINUOUS = 0
    PULSE = 1
    SINE_SWELL = 2


class StatusFlags:
    LIMIT_TRIPPED = 0x01
    KEEPALIVE_LOST = 0x02
    SENSOR_FAULT = 0x04
    MOTOR_ON = 0x08


class NackCode(IntEnum):
    UNKNOWN_TYPE = 1
    BAD_LENGTH = 2
    OUT_OF_RANGE = 3
    BAD_VERSION = 4
    LIMIT_TRIPPED = 5
    NOT_READY = 6
    #: Vibrate above zero before any SetLimit (version 2)
    NO_LIMIT = 7


@dataclass(frozen=True)
class Message:
    """Base of all messages. ``seq`` is the sender's sequence number (u16, wraps)."""

    TYPE: ClassVar[int]
    #: struct layout of the fixed payload (after the header), little-endian.
    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<")
    seq: int = 0

    def payload_values(self) -> tuple:
        return tuple(getattr(self, f.name) for f in fields(self) if f.name != "seq")

    @classmethod
    def from_payload(cls, seq: int, payload: bytes) -> Message:
        if len(payload) != cls.LAYOUT.size:
            raise ProtocolError(
                f"{cls.__name__}: payload is {len(payload)} bytes, expected {cls.LAYOUT.size}"
            )
        return cls(seq, *cls.LAYOUT.unpack(payload))

    def payload(self) -> bytes:
        try:
            return self.LAYOUT.pack(*self.payload_values())
        except struct.error as exc:
            raise ProtocolError(f"{type(self).__name__}: {exc}") from exc


# ---- host -> device -------------------------------------------------------------------------


@dataclass(frozen=True)
class Hello(Message):
    """Opens a session; the device answers with DeviceInfo."""

    TYPE: ClassVar[int] = 0x01
    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<B")
    protocol_version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class SetStream(Message):
    """Start streaming at ``rate_hz`` in batches of ``samples_per_batch``; rate 0 stops."""

    TYPE: ClassVar[int] = 0x02
    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<HB")
    rate_hz: int = 0
    samples_per_batch: int = 0


@dataclass(frozen=True)
class Vibrate(Message):
    """Run the motor: intensity in per-mille (0-1000), frequency in Hz, duration in ms
    (0 = until Stop or the keepalive deadman)."""

    TYPE: ClassVar[int] = 0x03
    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<HHBI")
    intensity_permille: int = 0
    frequency_hz: int = 0
    waveform: int = Waveform.CONTINUOUS
    duration_ms: int = 0


@dataclass(frozen=True)
class Stop(Message):
    """Motor off at once. Always accepted."""

    TYPE: ClassVar[int] = 0x04


@dataclass(frozen=True)
class Keepalive(Message):
    """The host is alive; without one for 500 ms the device stops its motor."""

    TYPE: ClassVar[int] = 0x05


@dataclass(frozen=True)
class SetLimit(Message):
    """Hard force limit in millinewtons against the firmware's zero, 1 or more (0 is refused:
    there is no way to turn the limit off); the firmware clamps it to its own ceiling
    (``DeviceInfo.limit_max_mn``)."""

    TYPE: ClassVar[int] = 0x06
    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<I")
    limit_mn: int = 0


@dataclass(frozen=True)
class Tare(Message):
    """Zero the sensor on the device; it answers with TareResult (the new offset)."""

    TYPE: ClassVar[int] = 0x07


@dataclass(frozen=True)
class PatternDefine(Message):
    """Version 3: store pattern ``pattern_id`` (0-7) as ``steps`` of (level_permille 0-1000,
    duration_ms >= 1); after the last step playback goes on from step ``loop_from``."""

    TYPE: ClassVar[int] = 0x08
    pattern_id: int = 0
    loop_from: int = 0
    steps: tuple[tuple[int, int], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        # steps given as lists (JSON) compare equal to the decoded tuples
        object.__setattr__(self, "steps", tuple(tuple(step) for step in self.steps))

    def payload(self) -> bytes:
        n = len(self.steps)
        if n > MAX_PATTERN_STEPS:
            raise ProtocolError(f"PatternDefine: {n} steps, at most {MAX_PATTERN_STEPS}")
        try:
            flat = [v for step in self.steps for v in step]
            return _PATTERN_FIXED.pack(self.pattern_id, self.loop_from, n) + struct.pack(
                f"<{2 * n}H", *flat
            )
        except (struct.error, TypeError) as exc:
            raise ProtocolError(f"PatternDefine: {exc}") from exc

    @classmethod
    def from_payload(cls, seq: int, payload: bytes) -> PatternDefine:
        if len(payload) < _PATTERN_FIXED.size:
            raise ProtocolError(f"PatternDefine: payload of {len(payload)} bytes is too short")
        pattern_id, loop_from, n = _PATTERN_FIXED.unpack_from(payload)
        if len(payload) != _PATTERN_FIXED.size + 4 * n:
            raise ProtocolError(
                f"PatternDefine: {n} steps need {_PATTERN_FIXED.size + 4 * n} bytes, "
                f"got {len(payload)}"
            )
        flat = struct.unpack_from(f"<{2 * n}H", payload, _PATTERN_FIXED.size)
        steps = tuple((flat[2 * i], flat[2 * i + 1]) for i in range(n))
        return cls(seq, pattern_id, loop_from, steps)


@dataclass(frozen=True)
class PlayPattern(Message):
    """Version 3: play stored pattern ``pattern_id`` from its first step: each step's output
    is min(level * intensity / 1000, cap) per-mille, at ``frequency_hz`` (0 = default),
    until Stop, Vibrate, another PlayPattern, the deadman or the hard limit."""

    TYPE: ClassVar[int] = 0x09
    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<BHHH")
    pattern_id: int = 0
    intensity_permille: int = 0
    cap_permille: int = 0
    frequency_hz: int = 0


def pattern_output_permille(level_permille: int, intensity_permille: int, cap: int) -> int:
    """What a version 3 firmware plays for a step: the level scaled by the intensity (half
    rounds up, in integers, as the C core does), then capped."""
    return min((level_permille * intensity_permille + 500) // 1000, cap)


# ---- device -> host -------------------------------------------------------------------------


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\x00").decode("ascii", errors="replace")


@dataclass(frozen=True)
class DeviceInfo(Message):
    """Identity, capabilities and factory calibration (raw = force_n * scale + offset);
    ``limit_max_mn``: the firmware's own absolute ceiling for SetLimit (version 2)."""

    TYPE: ClassVar[int] = 0x81
    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<16s8s16sBHHBHHfiI")
    model: str = ""
    firmware: str = ""
    serial_number: str = ""
    protocol_version: int = PROTOCOL_VERSION
    rate_min_hz: int = 0
    rate_max_hz: int = 0
    motor_kind: int = MotorKind.NONE
    motor_freq_min_hz: int = 0
    motor_freq_max_hz: int = 0
    cal_scale_counts_per_n: float = 1.0
    cal_offset_counts: int = 0
    limit_max_mn: int = 0

    def payload_values(self) -> tuple:
        values = list(super().payload_values())
        for i in range(3):
            values[i] = values[i].encode("ascii")
        return tuple(values)

    @classmethod
    def from_payload(cls, seq: int, payload: bytes) -> DeviceInfo:
        if len(payload) != cls.LAYOUT.size:
            raise ProtocolError(
                f"DeviceInfo: payload is {len(payload)} bytes, expected {cls.LAYOUT.size}"
            )
        model, fw, sn, *rest = cls.LAYOUT.unpack(payload)
        return cls(seq, _text(model), _text(fw), _text(sn), *rest)


@dataclass(frozen=True)
class ForceBatch(Message):
    """Raw sensor samples. ``t_us`` is the device time of the first sample (u32 µs, wraps);
    sample ``i`` was taken at ``t_us + i * 1e6 / rate_hz``. ``seq`` counts batches."""

    TYPE: ClassVar[int] = 0x82
    t_us: int = 0
    rate_hz: int = 0
    samples: tuple[int, ...] = field(default_factory=tuple)

    def payload(self) -> bytes:
        n = len(self.samples)
        if n > MAX_SAMPLES_PER_BATCH:
            raise ProtocolError(f"ForceBatch: {n} samples, at most {MAX_SAMPLES_PER_BATCH}")
        try:
            return _BATCH_FIXED.pack(self.t_us, self.rate_hz, n) + struct.pack(
                f"<{n}i", *self.samples
            )
        except struct.error as exc:
            raise ProtocolError(f"ForceBatch: {exc}") from exc

    @classmethod
    def from_payload(cls, seq: int, payload: bytes) -> ForceBatch:
        if len(payload) < _BATCH_FIXED.size:
            raise ProtocolError(f"ForceBatch: payload of {len(payload)} bytes is too short")
        t_us, rate_hz, n = _BATCH_FIXED.unpack_from(payload)
        if len(payload) != _BATCH_FIXED.size + 4 * n:
            raise ProtocolError(
                f"ForceBatch: {n} samples need {_BATCH_FIXED.size + 4 * n} bytes, "
                f"got {len(payload)}"
            )
        samples = struct.unpack_from(f"<{n}i", payload, _BATCH_FIXED.size)
        return cls(seq, t_us, rate_hz, samples)


@dataclass(frozen=True)
class Status(Message):
    """Battery, motor output and fault flags (StatusFlags). Sent at 4 Hz and on change."""

    TYPE: ClassVar[int] = 0x83
    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<BHB")
    battery_pct: int = 100
    motor_permille: int = 0
    flags: int = 0


@dataclass(frozen=True)
class Ack(Message):
    """Command ``cmd_seq`` was accepted."""

    TYPE: ClassVar[int] = 0x84
    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<HB")
    cmd_seq: int = 0
    cmd_type: int = 0


@dataclass(frozen=True)
class Nack(Message):
    """Command ``cmd_seq`` was refused with ``code`` (NackCode)."""

    TYPE: ClassVar[int] = 0x85
    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<HBB")
    cmd_seq: int = 0
    cmd_type: int = 0
    code: int = 0


@dataclass(frozen=True)
class TareResult(Message):
    """Answer to Tare: the device's new zero offset in raw counts."""

    TYPE: ClassVar[int] = 0x86
    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<Hi")
    cmd_seq: int = 0
    offset_counts: int = 0


MESSAGE_TYPES: dict[int, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        SetStream,
        Vibrate,
        Stop,
        Keepalive,
        SetLimit,
        Tare,
        PatternDefine,
        PlayPattern,
        DeviceInfo,
        ForceBatch,
        Status,
        Ack,
        Nack,
        TareResult,
    )
}


def encode_message(msg: Message) -> bytes:
    """Header + payload of ``msg`` (no CRC, no framing)."""
    if not 0 <= msg.seq <= 0xFFFF:
        raise ProtocolError(f"seq {msg.seq} does not fit u16")
    data = HEADER.pack(PROTOCOL_VERSION, msg.TYPE, msg.seq) + msg.payload()
    if len(data) > MAX_MESSAGE_LEN:
        raise ProtocolError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_LEN}")
    return data


def decode_message(data: bytes) -> Message:
    """The message in ``data`` (header + payload). Raises ProtocolError."""
    if len(data) < HEADER.size:
        raise ProtocolError(f"message of {len(data)} bytes is shorter than its header")
    if len(data) > MAX_MESSAGE_LEN:
        raise ProtocolError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_LEN}")
    version, mtype, seq = HEADER.unpack_from(data)
    if version != PROTOCOL_VERSION:
        raise UnsupportedVersion(version)
    cls = MESSAGE_TYPES.get(mtype)
    if cls is None:
        raise ProtocolError(f"unknown message type 0x{mtype:02x}")
    return cls.from_payload(seq, bytes(data[HEADER.size :]))
