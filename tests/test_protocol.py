"""The wire protocol against its golden vectors (docs/protocol-vectors.json), and the frame
decoder against random and corrupted streams."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.framing import MAX_ENCODED_LEN, FrameDecoder, crc16, encode_frame
from firmware_bridge.messages import (
    MAX_MESSAGE_LEN,
    MAX_SAMPLES_PER_BATCH,
    MESSAGE_TYPES,
    ForceBatch,
    Keepalive,
    ProtocolError,
    SetLimit,
    Status,
    Stop,
    Vibrate,
    decode_message,
    encode_message,
)

VECTORS = json.loads((Path(__file__).parents[1] / "docs" / "protocol-vectors.json").read_text())
BY_NAME = {cls.__name__: cls for cls in MESSAGE_TYPES.values()}


def _build(entry):
    fields = dict(entry["fields"])
    if "samples" in fields:
        fields["samples"] = tuple(fields["samples"])
    return BY_NAME[entry["type"]](**fields)


@pytest.mark.parametrize("entry", VECTORS["messages"], ids=lambda e: e["name"])
def test_vector_encodes_to_its_bytes(entry):
    assert encode_message(_build(entry)).hex() == entry["message"]


@pytest.mark.parametrize("entry", VECTORS["messages"], ids=lambda e: e["name"])
def test_vector_bytes_decode_to_its_fields(entry):
    msg = decode_message(bytes.fromhex(entry["message"]))
    assert msg == _build(entry)


@pytest.mark.parametrize(
    "entry", [e for e in VECTORS["messages"] if "frame" in e], ids=lambda e: e["name"]
)
def test_vector_frames_both_ways(entry):
    assert encode_frame(_build(entry)).hex() == entry["frame"]
    decoder = FrameDecoder()
    assert decoder.feed(bytes.fromhex(entry["frame"])) == [_build(entry)]


def test_every_message_type_has_a_vector():
    assert {e["type"] for e in VECTORS["messages"]} == set(BY_NAME)


def test_crc_is_ccitt_false():
    # The check value of CRC-16/CCITT-FALSE over "123456789" is 0x29B1.
    assert crc16(b"123456789") == 0x29B1


def test_max_length_message_round_trips_through_a_frame():
    entry = VECTORS["max_length"]
    msg = _build(entry)
    data = encode_message(msg)
    assert data.hex() == entry["message"]
    assert len(data) <= MAX_MESSAGE_LEN
    assert len(msg.samples) == MAX_SAMPLES_PER_BATCH
    frame = encode_frame(msg)
    assert len(frame) - 1 <= MAX_ENCODED_LEN
    assert frame.count(0) == 1  # only the delimiter
    assert FrameDecoder().feed(frame) == [msg]


def test_one_sample_more_than_the_maximum_is_refused():
    with pytest.raises(ProtocolError):
        encode_message(ForceBatch(0, 0, 1000, (0,) * (MAX_SAMPLES_PER_BATCH + 1)))


@pytest.mark.parametrize("entry", VECTORS["bad_frames"], ids=lambda e: e["name"])
def test_bad_frames_are_counted_not_raised(entry):
    decoder = FrameDecoder()
    if "frame" in entry:
        msgs = decoder.feed(bytes.fromhex(entry["frame"]))
        assert len(msgs) == entry["messages"]
        assert decoder.stats.crc_errors == entry["crc_errors"]
    else:
        payload = bytes.fromhex(entry["message"])
        with pytest.raises(ProtocolError):
            decode_message(payload)
        from cobs import cobs

        frame = cobs.encode(payload + crc16(payload).to_bytes(2, "little")) + b"\x00"
        assert decoder.feed(frame) == []
        assert decoder.stats.bad_frames == 1
        assert decoder.rejected and decoder.rejected[0][0] == payload


def test_out_of_range_fields_raise_protocol_error():
    with pytest.raises(ProtocolError):
        encode_message(Vibrate(0, intensity_permille=70000))
    with pytest.raises(ProtocolError):
        encode_message(SetLimit(0, limit_mn=-1))
    with pytest.raises(ProtocolError):
        encode_message(Stop(seq=70000))


def test_an_overlong_run_without_delimiter_is_dropped_and_the_stream_recovers():
    decoder = FrameDecoder()
    assert decoder.feed(b"\x01" * (MAX_ENCODED_LEN * 3)) == []
    assert decoder.feed(b"\x00" + encode_frame(Stop(7))) == [Stop(7)]
    assert decoder.stats.dropped_bytes >= MAX_ENCODED_LEN * 3


# ---- property tests ---------------------------------------------------------------------

messages = st.one_of(
    st.builds(
        ForceBatch,
        seq=st.integers(0, 0xFFFF),
        t_us=st.integers(0, 0xFFFFFFFF),
        rate_hz=st.integers(0, 0xFFFF),
        samples=st.lists(st.integers(-(2**31), 2**31 - 1), max_size=MAX_SAMPLES_PER_BATCH).map(
            tuple
        ),
    ),
    st.builds(
        Status,
        seq=st.integers(0, 0xFFFF),
        battery_pct=st.integers(0, 255),
        motor_permille=st.integers(0, 0xFFFF),
        flags=st.integers(0, 255),
    ),
    st.builds(Keepalive, seq=st.integers(0, 0xFFFF)),
    st.builds(Stop, seq=st.integers(0, 0xFFFF)),
)


@given(msgs=st.lists(messages, max_size=20), cuts=st.lists(st.integers(0, 5000), max_size=10))
def test_any_chunking_of_a_valid_stream_gives_every_message(msgs, cuts):
    stream = b"".join(encode_frame(m) for m in msgs)
    decoder = FrameDecoder()
    out = []
    prev = 0
    for cut in sorted(c % (len(stream) + 1) for c in cuts) + [len(stream)]:
        out += decoder.feed(stream[prev:cut])
        prev = cut
    assert out == msgs
    assert decoder.stats.crc_errors == decoder.stats.bad_frames == 0


@given(st.binary(max_size=3000))
def test_random_bytes_never_raise(data):
    decoder = FrameDecoder()
    for msg in decoder.feed(data):
        assert type(msg) in MESSAGE_TYPES.values()


@given(
    before=st.lists(messages, max_size=5),
    after=st.lists(messages, min_size=1, max_size=5),
    garbage=st.binary(min_size=1, max_size=600),
)
def test_valid_frames_after_garbage_are_recovered(before, after, garbage):
    decoder = FrameDecoder()
    decoder.feed(b"".join(encode_frame(m) for m in before))
    decoder.feed(garbage)
    # Whatever state the garbage left, the next delimiter resynchronises.
    got = decoder.feed(b"\x00" + b"".join(encode_frame(m) for m in after))
    assert got[-len(after) :] == after


@given(
    msgs=st.lists(messages, min_size=1, max_size=10),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=5),
)
def test_corrupted_bytes_never_raise_and_undamaged_frames_survive(msgs, flips):
    frames = [encode_frame(m) for m in msgs]
    stream = bytearray(b"".join(frames))
    damaged = set()
    for pos, x in flips:
        i = pos % len(stream)
        stream[i] ^= x
        # which frame holds byte i
        acc = 0
        for k, f in enumerate(frames):
            if acc <= i < acc + len(f):
                damaged.add(k)
                # a damaged delimiter merges this frame with the next one
                if i == acc + len(f) - 1:
                    damaged.add(k + 1)
            acc += len(f)
    decoder = FrameDecoder()
    out = decoder.feed(bytes(stream))
    for k, m in enumerate(msgs):
        if k not in damaged:
            assert m in out


def test_a_version_1_frame_is_counted_as_a_wrong_version():
    entry = next(e for e in VECTORS["bad_frames"] if e["name"] == "bad_version")
    payload = bytes.fromhex(entry["message"])
    assert payload[0] == 1
    from cobs import cobs

    decoder = FrameDecoder()
    assert decoder.feed(cobs.encode(payload + crc16(payload).to_bytes(2, "little")) + b"\x00") == []
    assert decoder.stats.wrong_version == 1
    assert decoder.stats.last_wrong_version == 1
