"""docs/protocol-vectors.json as C source for the C firmware's test binary
(firmware_bridge/c/tests/test_core.c): every message with its fields as a C initializer and
its hex, the bad frames, and the firmware rule exchanges. The C test encodes the fields and
compares the bytes, decodes the bytes and compares the fields, both ways, and plays the
exchanges against the core."""

from __future__ import annotations

import json
from pathlib import Path

VECTORS_PATH = Path(__file__).parents[1] / "docs" / "protocol-vectors.json"

_TYPES = {
    "Hello": ("MB_HELLO", "hello"),
    "SetStream": ("MB_SET_STREAM", "set_stream"),
    "Vibrate": ("MB_VIBRATE", "vibrate"),
    "Stop": ("MB_STOP", None),
    "Keepalive": ("MB_KEEPALIVE", None),
    "SetLimit": ("MB_SET_LIMIT", "set_limit"),
    "Tare": ("MB_TARE", None),
    "PatternDefine": ("MB_PATTERN_DEFINE", "pattern_define"),
    "PlayPattern": ("MB_PLAY_PATTERN", "play_pattern"),
    "DeviceInfo": ("MB_DEVICE_INFO", "device_info"),
    "ForceBatch": ("MB_FORCE_BATCH", "force_batch"),
    "Status": ("MB_STATUS", "status"),
    "Ack": ("MB_ACK", "ack"),
    "Nack": ("MB_NACK", "nack"),
    "TareResult": ("MB_TARE_RESULT", "tare_result"),
}


def _bytes(hex_text: str | None) -> tuple[str, int]:
    if not hex_text:
        return "NULL", 0
    data = bytes.fromhex(hex_text)
    return "(const uint8_t[]){" + ",".join(str(b) for b in data) + "}", len(data)


def _value(name: str, value) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value!r}f"
    if name == "samples":
        return "{" + ",".join(f"(int32_t){v}" for v in value) + "}"
    if name == "steps":
        return "{" + ",".join(f"{{{level}, {ms}}}" for level, ms in value) + "}"
    if isinstance(value, int) and value > 0x7FFFFFFF:
        return f"{value}u"
    return str(value)


def _initializer(type_name: str, fields: dict) -> str:
    enum, member = _TYPES[type_name]
    parts = [f".type = {enum}", f".seq = {fields.get('seq', 0)}"]
    for name, value in fields.items():
        if name == "seq":
            continue
        parts.append(f".u.{member}.{name} = {_value(name, value)}")
    if type_name == "ForceBatch":
        parts.append(f".u.force_batch.count = {len(fields['samples'])}")
    if type_name == "PatternDefine":
        parts.append(f".u.pattern_define.count = {len(fields['steps'])}")
    return "{" + ", ".join(parts) + "}"


def _expect_fields(fields: dict) -> str:
    items = [f'{{"{k}", {int(v)}LL}}' for k, v in fields.items()]
    return "{" + ", ".join(items + ["{NULL, 0}"]) + "}"


def c_source(vectors: dict | None = None) -> str:
    """The C file (it includes "vectors.h" from the test folder for the types)."""
    from firmware_bridge.messages import MESSAGE_TYPES, encode_message

    if vectors is None:
        vectors = json.loads(VECTORS_PATH.read_text())
    by_name = {cls.__name__: cls for cls in MESSAGE_TYPES.values()}
    out = ['#include "vectors.h"', ""]
    msgs = list(vectors["messages"])
    big = vectors["max_length"]
    msgs.append({"name": "max_length", **big})
    rows = []
    for m in msgs:
        mb, ml = _bytes(m["message"])
        fb, fl = _bytes(m.get("frame"))
        rows.append(
            f'    {{"{m["name"]}", {_initializer(m["type"], m["fields"])}, {mb}, {ml}, {fb}, {fl}}}'
        )
    out.append("const message_vector_t MESSAGE_VECTORS[] = {\n" + ",\n".join(rows) + "\n};")
    out.append(f"const size_t MESSAGE_VECTOR_COUNT = {len(rows)};")
    rows = []
    for b in vectors["bad_frames"]:
        fb, fl = _bytes(b.get("frame"))
        mb, ml = _bytes(b.get("message"))
        rows.append(
            f'    {{"{b["name"]}", {fb}, {fl}, {mb}, {ml}, '
            f"{b.get('crc_errors', -1)}, {b.get('messages', -1)}}}"
        )
    out.append("const bad_frame_vector_t BAD_FRAMES[] = {\n" + ",\n".join(rows) + "\n};")
    out.append(f"const size_t BAD_FRAME_COUNT = {len(rows)};")
    steps = []
    for x, exchange in enumerate(vectors["firmware_rules"]["exchanges"]):
        for k, step in enumerate(exchange["steps"]):
            send = step["send"]
            fields = dict(send["fields"])
            data = encode_message(by_name[send["type"]](**fields)).hex()
            sb, sl = _bytes(data)
            expect = step.get("expect", [])
            if len(expect) > 1:
                raise ValueError("the C test takes one reply per step")
            etype = _TYPES[expect[0]["type"]][0] if expect else "0"
            efields = _expect_fields(expect[0]["fields"] if expect else {})
            state = step.get("state", {})
            motor = int(state["motor_on"]) if "motor_on" in state else -1
            limit = state.get("limit_mn", -1)
            steps.append(
                f'    {{"{exchange["name"]}", {x}, {k}, {sb}, {sl}, {len(expect)}, {etype}, '
                f"{efields}, {step.get('same_reply_as', -1)}, {motor}, {limit}LL}}"
            )
    out.append("const rule_step_t RULE_STEPS[] = {\n" + ",\n".join(steps) + "\n};")
    out.append(f"const size_t RULE_STEP_COUNT = {len(steps)};")
    return "\n".join(out) + "\n"


def write(path: Path) -> Path:
    path.write_text(c_source())
    return path
