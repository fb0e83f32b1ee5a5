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


def min_att_mtu() -> int:
    """The smallest ATT_MTU at which every device message fits one notification (with
    one-sample batches): below it some message (DeviceInfo, 62 bytes) cannot be sent at all,
    so the default MTU of 23 is not enough and the MTU must be exchanged."""
    from firmware_bridge.messages import HEADER, MESSAGE_TYPES, ForceBatch, Message

    longest = max(
        HEADER.size + cls.LAYOUT.size
        for cls in MESSAGE_TYPES.values()
        if cls.TYPE >= 0x80 and cls is not ForceBatch and cls.LAYOUT is not Message.LAYOUT
    )
    one_sample = HEADER.size + 4 + 7
    return max(longest, one_sample) + ATT_HEADER_LEN


def samples_per_notification(mtu: int) -> int:
    """ForceBatch samples that fit one notification at ``mtu`` (header 4 + fixed 7 + 4n)."""
    return max(1, (mtu - ATT_HEADER_LEN - 4 - 7) // 4)


#: The simulated ball's fixed static random address (the two top bits set: "static"), so that
#: a paired ball is found again after the simulator restarts.
SIM_BALL_ADDRESS = "F3:4D:42:41:4C:4C"
#: The name the ball advertises (at most MAX_ADVERTISED_NAME_LEN characters).
BALL_ADVERTISED_NAME = "MBALL"
#: The largest legacy advertising payload (Core spec Vol 6, Part B, 2.3.1.1).
MAX_LEGACY_ADV_DATA_LEN = 31
#: ATT_MTU the host asks for: a 251-byte LE data PDU less the 4-byte L2CAP header, so one
#: notification fills one link-layer packet when data-length extension is on.
PREFERRED_ATT_MTU = 247

_AD_FLAGS = 0x01
_AD_COMPLETE_128_BIT_UUIDS = 0x07
_AD_COMPLETE_LOCAL_NAME = 0x09
#: LE General Discoverable Mode | BR/EDR Not Supported
_FLAGS_LE_GENERAL_NO_BREDR = 0x06


def advertising_data(name: str = BALL_ADVERTISED_NAME) -> bytes:
    """The legacy advertising payload of a device offering our service: flags, the complete
    list of 128-bit service UUIDs (our service) and the complete local name. Everything a
    scanner needs is here: nothing is left for a scan response, which some stacks (Bumble's
    software controller among them) never deliver."""
    encoded = name.encode("ascii")
    if not 0 < len(encoded) <= MAX_ADVERTISED_NAME_LEN:
        raise ValueError(f"advertised name must be 1-{MAX_ADVERTISED_NAME_LEN} ASCII characters")
    uuid_le = bytes.fromhex(SERVICE_UUID.replace("-", ""))[::-1]

    def field(ad_type: int, value: bytes) -> bytes:
        return bytes([len(value) + 1, ad_type]) + value

    data = (
        field(_AD_FLAGS, bytes([_FLAGS_LE_GENERAL_NO_BREDR]))
        + field(_AD_COMPLETE_128_BIT_UUIDS, uuid_le)
        + field(_AD_COMPLETE_LOCAL_NAME, encoded)
    )
    assert len(data) <= MAX_LEGACY_ADV_DATA_LEN
    return data
