"""Byte-exact checks of the Python codec against firmware_bridge/test_vectors.json."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from liquidnode.firmware_bridge import cobs
from liquidnode.firmware_bridge.crc import crc16_bitwise, crc16_ccitt_false
from liquidnode.firmware_bridge.framing import Deframer
from liquidnode.firmware_bridge.protocol import MsgType, decode_frame, encode_frame, encode_wire
from liquidnode.firmware_bridge.vectors import VECTORS_PATH, build_vectors

VECTORS = json.loads(VECTORS_PATH.read_text())


def _from_json(v):
    if isinstance(v, str) and v in ("inf", "-inf", "nan"):
        return float(v)
    if isinstance(v, list):
        return tuple(_from_json(x) for x in v)
    return v


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_file_is_up_to_date_with_the_generator():
    assert json.loads(json.dumps(build_vectors())) == VECTORS


def test_crc_check_value():
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert crc16_bitwise(b"123456789") == 0x29B1


@pytest.mark.parametrize("vec", VECTORS["crc16"], ids=lambda v: v["input_hex"][:16] or "empty")
def test_crc_vectors(vec):
    data = bytes.fromhex(vec["input_hex"])
    assert crc16_ccitt_false(data) == vec["crc"]
    assert crc16_bitwise(data) == vec["crc"]


@pytest.mark.parametrize("vec", VECTORS["cobs"], ids=lambda v: v["decoded_hex"][:16] or "empty")
def test_cobs_vectors(vec):
    decoded, encoded = bytes.fromhex(vec["decoded_hex"]), bytes.fromhex(vec["encoded_hex"])
    assert cobs.encode(decoded) == encoded
    assert cobs.decode(encoded) == decoded
    assert 0 not in encoded


@pytest.mark.parametrize("vec", VECTORS["frames"], ids=lambda v: v["name"])
def test_frame_vectors_encode_and_decode(vec):
    frame, wire = bytes.fromhex(vec["frame_hex"]), bytes.fromhex(vec["wire_hex"])
    assert wire.endswith(b"\x00") and 0 not in wire[:-1]
    assert cobs.decode(wire[:-1]) == frame
    decoded = decode_frame(frame)
    msg = decoded.message
    assert decoded.seq == vec["seq"] and decoded.version == 1
    assert msg.TYPE == MsgType[vec["type"]] == vec["type_byte"]
    for f in dataclasses.fields(msg):
        assert _same(getattr(msg, f.name), _from_json(vec["fields"][f.name])), f.name
    assert msg.payload().hex() == vec["payload_hex"]
    # re-encoding the decoded message gives the same bytes
    assert encode_frame(msg, vec["seq"]) == frame
    assert encode_wire(msg, vec["seq"]) == wire
    # and the streaming parser accepts it, also fed one byte at a time
    d = Deframer()
    out = [fr for b in wire for fr in d.feed(bytes([b]))]
    assert len(out) == 1 and out[0].message == msg


@pytest.mark.parametrize("vec", VECTORS["invalid"], ids=lambda v: v["name"])
def test_invalid_vectors_are_dropped_for_the_stated_reason(vec):
    d = Deframer()
    frames = d.feed(bytes.fromhex(vec["wire_hex"]))
    if vec["reason"] == "foreign_version":
        assert len(frames) == 1 and frames[0].message is None and frames[0].version == 2
        return
    assert frames == []
    assert d.stats.dropped[vec["reason"]] == 1
    assert sum(d.stats.dropped.values()) == 1


@pytest.mark.parametrize("vec", VECTORS["streams"], ids=lambda v: v["name"])
def test_stream_vectors(vec):
    d = Deframer()
    frames = d.feed(bytes.fromhex(vec["wire_hex"]))
    assert [encode_frame(f.message, f.seq).hex() for f in frames] == vec["frames"]
    assert d.stats.dropped == vec["drops"]


def test_sizes_match_protocol_md():
    from liquidnode.firmware_bridge import protocol as p

    assert (p.MAX_PAYLOAD, p.MAX_FRAME, p.MAX_ENCODED, p.MAX_WIRE) == (240, 246, 247, 248)
    assert len(encode_frame(p.ObservationMsg(0, 0, 0, (0.0,) * 58), 0)) == 4 + 239 + 2
    with pytest.raises(ValueError, match="243 bytes > 240"):
        encode_frame(p.ObservationMsg(0, 0, 0, (0.0,) * 59), 0)
