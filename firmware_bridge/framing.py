"""Serial framing: ``COBS(message || crc16_le) || 0x00`` (docs/protocol.md, "Serial framing").

``FrameDecoder.feed(data)`` takes any chunk of a byte stream and returns the messages it
completes. It does no I/O, never raises on bad input, resynchronises at the next 0x00 after
garbage, and counts what it threw away.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

from cobs import cobs

from firmware_bridge.messages import (
    MAX_MESSAGE_LEN,
    Message,
    ProtocolError,
    UnsupportedVersion,
    decode_message,
    encode_message,
)

DELIMITER = b"\x00"
CRC_LEN = 2
#: Longest COBS-encoded frame body (message + CRC), delimiter excluded.
MAX_ENCODED_LEN = MAX_MESSAGE_LEN + CRC_LEN + (MAX_MESSAGE_LEN + CRC_LEN) // 254 + 1


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor)."""
    return binascii.crc_hqx(data, 0xFFFF)


def encode_frame(msg: Message) -> bytes:
    """One serial frame for ``msg``, delimiter included."""
    body = encode_message(msg)
    return cobs.encode(body + crc16(body).to_bytes(2, "little")) + DELIMITER


@dataclass
class DecoderStats:
    frames: int = 0
    crc_errors: int = 0
    #: frames that were not valid COBS, or whose message did not decode
    bad_frames: int = 0
    #: bytes discarded: bad frames, over-long runs without a delimiter
    dropped_bytes: int = 0
    #: frames with a right CRC but another protocol version (also counted in bad_frames)
    wrong_version: int = 0
    #: the protocol version those frames carried (the last one seen)
    last_wrong_version: int | None = None


class FrameDecoder:
    """Incremental parser of a serial byte stream into messages."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._overflow = False
        self.stats = DecoderStats()
        #: The most recent reason a frame was rejected (for diagnostics).
        self.last_error: str | None = None
        #: Frames whose CRC was right but whose message did not decode, as (bytes, reason):
        #: a device answers these with a Nack. The owner drains the list.
        self.rejected: list[tuple[bytes, str]] = []

    def feed(self, data: bytes) -> list[Message]:
        out: list[Message] = []
        start = 0
        while True:
            end = data.find(0, start)
            if end < 0:
                self._append(data[start:])
                return out
            self._append(data[start:end])
            if self._overflow:
                self._overflow = False
            elif self._buf:
                msg = self._decode(bytes(self._buf))
                if msg is not None:
                    out.append(msg)
            self._buf.clear()
            start = end + 1

    def _append(self, chunk: bytes) -> None:
        if self._overflow:
            self.stats.dropped_bytes += len(chunk)
            return
        self._buf += chunk
        if len(self._buf) > MAX_ENCODED_LEN:
            # No delimiter where one must have been: drop until the next 0x00.
            self.stats.dropped_bytes += len(self._buf)
            self.stats.bad_frames += 1
            self.last_error = "frame longer than the maximum"
            self._buf.clear()
            self._overflow = True

    def _decode(self, frame: bytes) -> Message | None:
        try:
            body = cobs.decode(frame)
        except cobs.DecodeError as exc:
            self._reject(frame, f"bad COBS: {exc}", crc=False)
            return None
        if len(body) < CRC_LEN + 1:
            self._reject(frame, "frame too short", crc=False)
            return None
        payload, crc = body[:-CRC_LEN], int.from_bytes(body[-CRC_LEN:], "little")
        if crc16(payload) != crc:
            self._reject(frame, "CRC mismatch", crc=True)
            return None
        try:
            msg = decode_message(payload)
        except ProtocolError as exc:
            if isinstance(exc, UnsupportedVersion):
                self.stats.wrong_version += 1
                self.stats.last_wrong_version = exc.version
            if len(self.rejected) < 64:
                self.rejected.append((payload, str(exc)))
            self._reject(frame, str(exc), crc=False)
            return None
        self.stats.frames += 1
        return msg

    def _reject(self, frame: bytes, why: str, *, crc: bool) -> None:
        if crc:
            self.stats.crc_errors += 1
        else:
            self.stats.bad_frames += 1
        self.stats.dropped_bytes += len(frame) + 1
        self.last_error = why
