"""Runs a simulated firmware for the BLE peripheral: one protocol message per ATT value, no
framing, no CRC (docs/ble.md). No Bluetooth here: the peripheral hands in the values written
to COMMAND and sends what comes out as notifications, so this part is testable on its own.

Routing (firmware_bridge.gatt): ForceBatch -> FORCE; every other device message -> STATUS.

A notification longer than ATT_MTU - 3 would be cut short by the stack (Bumble 0.0.236 does
so silently), so a SetStream whose batches would not fit the connection's MTU is refused with
Nack(OUT_OF_RANGE) here, before any batch is made, and a value that still does not fit is
dropped and counted rather than sent truncated.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from firmware_bridge.gatt import ATT_HEADER_LEN
from firmware_bridge.messages import (
    HEADER,
    ForceBatch,
    Message,
    NackCode,
    ProtocolError,
    SetStream,
    decode_message,
    encode_message,
)
from simulators.firmware import Firmware, SimEvent, undecodable_code
from simulators.runtime import compress_time

#: How often the peripheral wakes up to produce samples (real seconds).
TICK_S = 0.002
#: ATT_MTU before any exchange (Core spec Vol 3, Part F, 3.2.8).
DEFAULT_ATT_MTU = 23


class Channel(enum.Enum):
    """The characteristic a device message goes out on."""

    FORCE = "force"
    STATUS = "status"


class CommandValueError(ValueError):
    """A COMMAND value too short to carry a message header: no Nack can name it, so the
    peripheral answers with an ATT error instead."""


def channel_for(msg: Message) -> Channel:
    return Channel.FORCE if isinstance(msg, ForceBatch) else Channel.STATUS


class BleFirmwareRunner:
    """A firmware whose input is COMMAND values and whose output is (channel, value) pairs.

    ``att_mtu`` is asked each time a value is checked: it is the current connection's MTU
    (23 before an exchange, or with nobody connected).
    """

    def __init__(
        self,
        firmware: Firmware,
        *,
        speed: float = 1.0,
        att_mtu: Callable[[], int] = lambda: DEFAULT_ATT_MTU,
        on_event: Callable[[SimEvent], None] | None = None,
    ) -> None:
        self.firmware = firmware
        self.clock = compress_time(firmware, speed)
        self._att_mtu = att_mtu
        self._on_event = on_event
        self.values_out = 0
        #: values that did not fit ATT_MTU - 3 (never sent truncated)
        self.oversize_dropped = 0

    @property
    def max_value_len(self) -> int:
        return self._att_mtu() - ATT_HEADER_LEN

    def on_command(self, value: bytes) -> list[tuple[Channel, bytes]]:
        """A value written to COMMAND: decode it, let the firmware answer at the current
        simulator time. An undecodable value with a readable header gets a Nack (as on the
        serial link); one without a header raises CommandValueError."""
        t_s = self.clock.now_s()
        try:
            msg = decode_message(value)
        except ProtocolError as exc:
            if len(value) < HEADER.size:
                raise CommandValueError(
                    f"COMMAND value of {len(value)} bytes has no message header"
                ) from exc
            _version, mtype, seq = HEADER.unpack_from(value)
            code = undecodable_code(value)
            out = self.firmware.advance(t_s) + self.firmware.nack_undecodable(seq, mtype, code)
            return self._encode_all(out)
        if isinstance(msg, SetStream) and msg.rate_hz and not self._batch_fits(msg):
            self.firmware.events.append(
                SimEvent(
                    t_s,
                    "nack",
                    {
                        "type": msg.TYPE,
                        "code": NackCode.OUT_OF_RANGE.name,
                        "why": f"batch_over_mtu_{self._att_mtu()}",
                    },
                )
            )
            out = self.firmware.advance(t_s) + self.firmware.nack_undecodable(
                msg.seq, msg.TYPE, NackCode.OUT_OF_RANGE
            )
            return self._encode_all(out)
        return self._encode_all(self.firmware.handle(msg, t_s))

    def _batch_fits(self, msg: SetStream) -> bool:
        probe = ForceBatch(samples=(0,) * msg.samples_per_batch)
        try:
            return len(encode_message(probe)) <= self.max_value_len
        except ProtocolError:
            return False

    def step(self) -> list[tuple[Channel, bytes]]:
        """Advance the firmware to now; returns what it sent meanwhile."""
        return self._encode_all(self.firmware.advance(self.clock.now_s()))

    def _encode_all(self, messages: list[Message]) -> list[tuple[Channel, bytes]]:
        out = []
        limit = self.max_value_len
        for msg in messages:
            value = encode_message(msg)
            if len(value) > limit:
                self.oversize_dropped += 1
                continue
            out.append((channel_for(msg), value))
        self.values_out += len(out)
        self._flush_events()
        return out

    def _flush_events(self) -> None:
        if self._on_event is None:
            return
        for event in self.firmware.take_events():
            self._on_event(event)
