"""Byte-exact test vectors of the wire protocol (``test_vectors.json``).

Both the Python implementation (tests/firmware_bridge) and the C firmware tests check the
same file. Regenerate it after a deliberate protocol change with::

    python -m liquidnode.firmware_bridge.vectors --write

File layout (JSON object):

- ``protocol_version``: 1.
- ``crc16``: list of ``{"input_hex", "crc"}``; ``crc`` is the CRC-16/CCITT-FALSE as an int.
- ``cobs``: list of ``{"decoded_hex", "encoded_hex"}`` (encoding without the 0x00 delimiter).
- ``frames``: list of valid frames ``{"name", "type", "type_byte", "seq", "fields",
  "payload_hex", "frame_hex", "wire_hex"}``. ``frame_hex`` is the decoded frame (header +
  payload + CRC); ``wire_hex`` is its COBS encoding followed by ``00``. Float fields that
  are not finite are written as the strings ``"inf"``, ``"-inf"``, ``"nan"``.
- ``invalid``: list of ``{"name", "wire_hex", "reason"}``: one wire frame (with delimiter)
  that a receiver must drop, and the drop reason (oversize, cobs, short, crc, unknown_type,
  bad_length), or ``"foreign_version"`` for a well-formed frame of protocol version 2.
- ``telemetry_frames``: TELEMETRY frames in the layout of ``frames``, plus ``n_obs`` (the
  split of the values into obs, policy_action and applied needs it).
- ``state_digests``: list of ``{"state", "digest"}``: a hidden state (floats) and its
  TELEMETRY ``state_digest`` (CRC-16/CCITT-FALSE of the values as little-endian f32).
- ``streams``: list of ``{"name", "wire_hex", "frames", "drops"}``: a byte stream with
  garbage and bad frames; ``frames`` lists the ``frame_hex`` of the frames a receiver must
  accept, in order; ``drops`` the per-reason drop counts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np

from liquidnode.firmware_bridge import cobs
from liquidnode.firmware_bridge.crc import crc16_ccitt_false
from liquidnode.firmware_bridge.framing import Deframer
from liquidnode.firmware_bridge.protocol import (
    Arm,
    Channel,
    Command,
    Disarm,
    Estop,
    Hello,
    Identity,
    Message,
    ObservationMsg,
    Ping,
    PolicyInfo,
    Pong,
    Sensors,
    Status,
    Telemetry,
    encode_frame,
    encode_wire,
    state_digest,
)

VECTORS_PATH = Path(__file__).with_name("test_vectors.json")
INF = float("inf")


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, tuple):
        return [_json_value(x) for x in v]
    return v


def _frames() -> list[tuple[str, Message, int]]:
    return [
        ("hello", Hello(1), 0),
        ("identity_twin", Identity(1, 4, 1, 40000, 120, "liquidnode-twin InvertedPendulum"), 0),
        ("identity_avr", Identity(1, 2, 1, 10000, 50, "avr-atmega328p ref-fw 0.1"), 0),
        ("channel_obs_0", Channel(0, 0, -INF, INF, 0.0, "slider_pos", "m"), 1),
        ("channel_obs_1", Channel(0, 1, -INF, INF, 0.0, "hinge_angle", "rad"), 2),
        ("channel_act_0", Channel(1, 0, -3.0, 3.0, 0.0, "force", "N"), 5),
        ("observation", ObservationMsg(1_000_000, 7, 1, (0.0, 0.125, -0.5, 2.0)), 42),
        ("observation_disarmed", ObservationMsg(0, 0, 0, (1.5, -1.5)), 65535),
        ("command", Command((0.5,)), 1),
        ("command_zero", Command((0.0,)), 256),
        ("command_two", Command((-3.0, 3.0)), 65535),
        ("ping", Ping(0x12345678), 1),
        ("pong", Pong(0x12345678), 9),
        ("estop_host", Estop(0), 3),
        ("estop_device", Estop(1), 4),
        ("arm", Arm(), 2),
        ("status_armed", Status(1, 0, 0, 0, 0, 20000), 10),
        ("status_watchdog", Status(2, 1, 3, 4, 513, 123456789), 11),
        ("policy_q15_hil", PolicyInfo(1, 1, 16, 16_000_000, "InvertedPendulum-v5 wired_cfc"), 6),
        ("policy_f32_board", PolicyInfo(0, 0, 0, 168_000_000, ""), 7),
        ("sensors", Sensors((0.015625, -0.03125, 0.5, -1.25)), 300),
        ("disarm", Disarm(), 13),
    ]


def _telemetry_frames() -> list[tuple[str, Telemetry, int]]:
    """TELEMETRY frames: their split into obs and actions needs n_obs (IDENTITY)."""
    return [
        (
            "telemetry",
            Telemetry(
                40_000, 300, 1, 80_504, 0xBEEF, (0.015625, -0.03125, 0.5, -1.25), (3.5,), (3.0,)
            ),
            12,
        ),
        (
            "telemetry_disarmed",
            Telemetry(0, 65535, 0, 0, 0x1D0F, (0.0, 1.0), (0.0, -0.5), (0.0, 0.0)),
            65535,
        ),
    ]


def _digests() -> list[dict[str, Any]]:
    states = [[], [0.0] * 16, [0.5, -0.25, 1.0 / 3.0, -1e-3, 0.999969482421875, -1.0]]
    return [{"state": s, "digest": state_digest(np.asarray(s))} for s in states]


def _crc_frame(body: bytes) -> bytes:
    return body + struct.pack("<H", crc16_ccitt_false(body))


def _wire(frame: bytes) -> bytes:
    return cobs.encode(frame) + b"\x00"


def _invalid() -> list[tuple[str, bytes, str]]:
    ping = encode_frame(Ping(0x12345678), 1)
    flipped = bytearray(ping)
    flipped[5] ^= 0x01
    return [
        ("bad_crc_bit_flip", _wire(bytes(flipped)), "crc"),
        ("bad_crc_swapped", _wire(ping[:-2] + ping[-1:] + ping[-2:-1]), "crc"),
        ("truncated", cobs.encode(ping)[:-3] + b"\x00", "cobs"),
        ("short", _wire(b"\x01\x15\x00"), "short"),
        ("oversize", bytes([0x01]) + bytes(range(1, 255)) + b"\x00", "oversize"),
        ("unknown_type", _wire(_crc_frame(b"\x01\x7f\x00\x00")), "unknown_type"),
        ("ping_bad_length", _wire(_crc_frame(b"\x01\x12\x01\x00\x78\x56\x34")), "bad_length"),
        ("arm_bad_length", _wire(_crc_frame(b"\x01\x15\x01\x00\x00")), "bad_length"),
        ("version_2", _wire(_crc_frame(b"\x02\x12\x01\x00\x78\x56\x34\x12")), "foreign_version"),
    ]


def _stream() -> dict[str, Any]:
    good1 = encode_frame(Ping(1), 1)
    good2 = encode_frame(Command((0.25,)), 2)
    good3 = encode_frame(Arm(), 3)
    bad = bytearray(good2)
    bad[6] ^= 0x80
    wire = (
        b"\x13\x37\xff"  # garbage before the first delimiter (a COBS error)
        + b"\x00"
        + _wire(good1)
        + b"\x00\x00"  # idle filler
        + _wire(bytes(bad))  # CRC error
        + bytes([0x55]) * 300  # line noise longer than any frame
        + b"\x00"
        + _wire(good2)
        + cobs.encode(good3)[:4]  # a frame cut short, then the delimiter
        + b"\x00"
        + _wire(good3)
    )
    d = Deframer()
    frames = d.feed(wire)
    return {
        "name": "garbage_crc_oversize_truncated",
        "wire_hex": wire.hex(),
        "frames": [encode_frame(f.message, f.seq).hex() for f in frames if f.message],
        "drops": d.stats.dropped,
    }


def _frame_record(name: str, msg: Message, seq: int) -> dict[str, Any]:
    fields = {f.name: _json_value(getattr(msg, f.name)) for f in dataclasses.fields(msg)}
    return {
        "name": name,
        "type": msg.TYPE.name,
        "type_byte": int(msg.TYPE),
        "seq": seq,
        "fields": fields,
        "payload_hex": msg.payload().hex(),
        "frame_hex": encode_frame(msg, seq).hex(),
        "wire_hex": encode_wire(msg, seq).hex(),
    }


def build_vectors() -> dict[str, Any]:
    """Return the vectors as a JSON-able dict (deterministic)."""
    crc_inputs = [b"123456789", b"", b"\x00", b"\xff" * 4, bytes(range(32))]
    cobs_inputs = [
        b"",
        b"\x00",
        b"\x00\x00",
        b"\x11\x22\x00\x33",
        b"\x11\x22\x33\x44",
        b"\x11\x00\x00\x00",
        bytes(range(1, 247)),
        bytes(246),
    ]
    frames = [_frame_record(name, msg, seq) for name, msg, seq in _frames()]
    telemetry = [
        {**_frame_record(name, msg, seq), "n_obs": len(msg.obs)}
        for name, msg, seq in _telemetry_frames()
    ]
    return {
        "protocol_version": 1,
        "crc16": [{"input_hex": b.hex(), "crc": crc16_ccitt_false(b)} for b in crc_inputs],
        "cobs": [
            {"decoded_hex": b.hex(), "encoded_hex": cobs.encode(b).hex()} for b in cobs_inputs
        ],
        "frames": frames,
        "telemetry_frames": telemetry,
        "state_digests": _digests(),
        "invalid": [{"name": n, "wire_hex": w.hex(), "reason": r} for n, w, r in _invalid()],
        "streams": [_stream()],
    }


def main() -> None:
    """``python -m liquidnode.firmware_bridge.vectors [--write]``: print/write test_vectors.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help=f"write {VECTORS_PATH.name}")
    args = ap.parse_args()
    text = json.dumps(build_vectors(), indent=1) + "\n"
    if args.write:
        VECTORS_PATH.write_text(text)
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
