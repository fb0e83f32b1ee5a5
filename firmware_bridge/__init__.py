"""The wire protocol shared by the host and the simulated firmware.

``messages`` declares every message once (type code, fields, little-endian layout);
``framing`` wraps messages for serial (COBS + CRC-16/CCITT-FALSE, 0x00 delimiter) and parses
byte streams with no I/O; ``gatt`` maps the same messages onto BLE characteristics.
The spec is ``docs/protocol.md``; golden vectors in ``docs/protocol-vectors.json``.
"""

from firmware_bridge.messages import *  # noqa: F403
from firmware_bridge.messages import __all__ as _messages_all

__all__ = list(_messages_all)
