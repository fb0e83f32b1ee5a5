"""The BLE GATT profile (docs/protocol.md, "BLE"). One protocol message per ATT value.

Host -> device commands are written to COMMAND; ForceBatch messages are notified on FORCE;
every other device message (DeviceInfo, Status, Ack, Nack, TareResult) on STATUS.
"""

from __future__ import annotations

SERVICE_UUID = "7e0f1a00-5b2c-4f6e-9d3a-6d617373a9e0"
FORCE_CHAR_UUID = "7e0f1a01-5b2c-4f6e-9d3a-6d617373a9e0"
COMMAND_CHAR_UUID = "7e0f1a02-5b2c-4f6e-9d3a-6d617373a9e0"
STATUS_CHAR_UUID = "7e0f1a03-5b2c-4f6e-9d3a-6d617373a9e0"

BATTERY_SERVICE_UUID = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_CHAR_UUID = "00002a19-0000-1000-8000-00805f9b34fb"
DEVICE_INFO_SERVICE_UUID = "0000180a-0000-1000-8000-00805f9b34fb"
MANUFACTURER_CHAR_UUID = "00002a29-0000-1000-8000-00805f9b34fb"
MODEL_CHAR_UUID = "00002a24-0000-1000-8000-00805f9b34fb"
SERIAL_CHAR_UUID = "00002a25-0000-1000-8000-00805f9b34fb"
FIRMWARE_CHAR_UUID = "00002a26-0000-1000-8000-00805f9b34fb"

#: Legacy advertising: flags (3 bytes) + 128-bit service UUID list (18) + name (2 + n) <= 31.
MAX_ADVERTISED_NAME_LEN = 8
#: ATT notification payload is MTU - 3.
ATT_HEADER_LEN = 3


def samples_per_notification(mtu: int) -> int:
    """ForceBatch samples that fit one notification at ``mtu`` (header 4 + fixed 7 + 4n)."""
    return max(1, (mtu - ATT_HEADER_LEN - 4 - 7) // 4)
