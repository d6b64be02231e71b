"""Property-based tests of the frame parser (hypothesis).

Guarantees tested exactly (CRC-16/CCITT-FALSE has Hamming distance 4 up to 32751 bits and
the factor x+1; COBS maps a data byte 1:1 to a decoded byte):
- the parser never raises, whatever the bytes and however they are chunked;
- a frame altered by 1, 2 or 3 bit flips, by any odd number of bit flips, or by any
  alteration confined to two adjacent bytes (a burst <= 16 bits) is never accepted;
- a non-zero data byte of the COBS encoding replaced by another non-zero byte is never
  accepted;
- after any garbage, the parser accepts the next valid frame that follows a delimiter.
Arbitrary multi-byte corruption passes a 16-bit CRC with probability ~2^-16; that is
counted over a fuzz run (``test_fuzz_run_accepts_no_corrupted_frame``), not asserted per case.
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liquidnode.firmware_bridge import cobs
from liquidnode.firmware_bridge.framing import Deframer
from liquidnode.firmware_bridge.fuzz import fuzz_parser
from liquidnode.firmware_bridge.protocol import (
    MAX_ENCODED,
    Arm,
    Command,
    Estop,
    Hello,
    Identity,
    ObservationMsg,
    Ping,
    Pong,
    Status,
    encode_frame,
    encode_wire,
)

#: Per-test settings (not a global profile: other packages' tests keep theirs).
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

u8 = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
f32 = st.floats(width=32, allow_nan=False)

messages = st.one_of(
    st.builds(Hello, u8),
    st.builds(
        Identity,
        st.just(1),
        st.integers(1, 58),
        st.integers(1, 60),
        u32,
        u16,
        st.text("abcdefghijklmnopqrstuvwxyz -0123456789.", max_size=32),
    ),
    st.builds(
        ObservationMsg,
        u32,
        u16,
        st.integers(0, 3),
        st.lists(f32, min_size=1, max_size=58).map(tuple),
    ),
    st.builds(Command, st.lists(f32, min_size=1, max_size=60).map(tuple)),
    st.builds(Ping, u32),
    st.builds(Pong, u32),
    st.builds(Estop, st.integers(0, 1)),
    st.builds(Arm),
    st.builds(Status, st.integers(0, 3), st.integers(0, 4), u32, u32, u16, u32),
)


def _accepts(wire: bytes) -> list:
    return Deframer().feed(wire)


@PROPERTY
@given(st.binary(max_size=2000), st.lists(st.integers(1, 300), max_size=20))
def test_never_raises_on_arbitrary_bytes_any_chunking(data, cuts):
    d = Deframer()
    pos = 0
    for c in cuts:
        d.feed(data[pos : pos + c])
        pos += c
    d.feed(data[pos:])
    d.feed(b"\x00")
    assert d.stats.bytes_in == len(data) + 1


@PROPERTY
@given(messages, u16)
def test_round_trip(msg, seq):
    frames = _accepts(encode_wire(msg, seq))
    assert len(frames) == 1
    assert frames[0].seq == seq and frames[0].message == msg


@PROPERTY
@given(messages, u16, st.data())
def test_up_to_three_bit_flips_never_accepted(msg, seq, data):
    frame = bytearray(encode_frame(msg, seq))
    nbits = len(frame) * 8
    bits = data.draw(st.lists(st.integers(0, nbits - 1), min_size=1, max_size=3, unique=True))
    for b in bits:
        frame[b // 8] ^= 1 << (b % 8)
    assert _accepts(cobs.encode(bytes(frame)) + b"\x00") == []


@PROPERTY
@given(messages, u16, st.data())
def test_odd_number_of_bit_flips_never_accepted(msg, seq, data):
    frame = bytearray(encode_frame(msg, seq))
    nbits = len(frame) * 8
    k = data.draw(st.sampled_from([k for k in (1, 3, 5, 7, 9, 11) if k <= nbits]))
    bits = data.draw(st.lists(st.integers(0, nbits - 1), min_size=k, max_size=k, unique=True))
    for b in bits:
        frame[b // 8] ^= 1 << (b % 8)
    assert _accepts(cobs.encode(bytes(frame)) + b"\x00") == []


@PROPERTY
@given(messages, u16, st.data())
def test_burst_of_two_adjacent_bytes_never_accepted(msg, seq, data):
    frame = bytearray(encode_frame(msg, seq))
    i = data.draw(st.integers(0, len(frame) - 2))
    x, y = data.draw(u8), data.draw(u8)
    if x == y == 0:
        x = 1
    frame[i] ^= x
    frame[i + 1] ^= y
    assert _accepts(cobs.encode(bytes(frame)) + b"\x00") == []


@PROPERTY
@given(messages, u16, st.data())
def test_any_single_byte_alteration_never_accepted(msg, seq, data):
    frame = bytearray(encode_frame(msg, seq))
    i = data.draw(st.integers(0, len(frame) - 1))
    frame[i] ^= data.draw(st.integers(1, 255))
    assert _accepts(cobs.encode(bytes(frame)) + b"\x00") == []


@PROPERTY
@given(messages, u16, st.data())
def test_altered_cobs_data_byte_never_accepted(msg, seq, data):
    enc = bytearray(cobs.encode(encode_frame(msg, seq)))
    # positions of data bytes (not block codes)
    codes, i = set(), 0
    while i < len(enc):
        codes.add(i)
        i += enc[i]
    data_pos = [i for i in range(len(enc)) if i not in codes]
    if not data_pos:
        return
    i = data.draw(st.sampled_from(data_pos))
    new = data.draw(st.integers(1, 255).filter(lambda v: v != enc[i]))
    enc[i] = new
    assert _accepts(bytes(enc) + b"\x00") == []


@PROPERTY
@given(messages, u16, st.data())
def test_truncated_frame_never_accepted(msg, seq, data):
    enc = cobs.encode(encode_frame(msg, seq))
    cut = data.draw(st.integers(0, len(enc) - 1))
    assert _accepts(enc[:cut] + b"\x00") == []


@PROPERTY
@given(st.binary(max_size=600), messages, u16)
def test_recovers_at_next_valid_frame(garbage, msg, seq):
    d = Deframer()
    d.feed(garbage)
    frames = d.feed(b"\x00" + encode_wire(msg, seq))
    assert frames and frames[-1].message == msg and frames[-1].seq == seq


@PROPERTY
@given(st.integers(MAX_ENCODED + 1, 3000), messages, u16)
def test_oversize_run_dropped_then_resync(n, msg, seq):
    d = Deframer()
    frames = d.feed(b"\x01" * n + b"\x00" + encode_wire(msg, seq))
    assert [f.message for f in frames] == [msg]
    assert d.stats.dropped["oversize"] == 1


def test_fuzz_run_accepts_no_corrupted_frame():
    report = fuzz_parser(20_000, seed=1234)
    assert report.intact_received == report.intact_frames == 20_000
    assert report.corrupted_accepted == 0, report.accepted_by_model
    assert all(report.per_model[m] > 1000 for m in report.per_model)
    assert not math.isnan(report.seconds)
