"""Fuzzing the receive path: how many corrupted frames does the parser accept?

:func:`fuzz_parser` builds random valid frames of every type, corrupts each in one of several
ways, feeds the whole stream (good and corrupted frames, garbage, truncations, oversize runs)
through one :class:`~firmware_bridge.framing.Deframer`, and counts the corrupted frames it
accepted (a frame it returned whose bytes differ from every frame that was sent intact).

Corruption models (chosen uniformly per frame):

| model | what | CRC guarantee |
|---|---|---|
| ``bit1``..``bit3`` | 1-3 bit flips in the decoded frame | always detected (HD 4) |
| ``odd_bits`` | 5, 7 or 9 bit flips | always detected (factor x+1) |
| ``burst16`` | any alteration of <= 2 adjacent bytes of the decoded frame | always detected |
| ``multi`` | 2-8 random bytes of the decoded frame replaced | ~2^-16 pass CRC |
| ``wire_byte`` | one byte of the COBS encoding replaced (may add/move a 0x00) | COBS/length/CRC |
| ``truncate`` | COBS encoding cut short | COBS/length/CRC |
| ``insert`` | random bytes inserted into the COBS encoding | COBS/length/CRC |

Run it: ``python -m liquidnode.firmware_bridge.fuzz --frames 200000 --seed 1``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liquidnode.firmware_bridge import cobs
from liquidnode.firmware_bridge.framing import Deframer
from liquidnode.firmware_bridge.protocol import (
    Arm,
    Channel,
    Command,
    Estop,
    Hello,
    Identity,
    Message,
    ObservationMsg,
    Ping,
    Pong,
    Status,
    encode_frame,
)

MODELS = ("bit1", "bit2", "bit3", "odd_bits", "burst16", "multi", "wire_byte", "truncate", "insert")


def random_message(rng: np.random.Generator) -> Message:
    """A random valid message of a random type."""
    k = int(rng.integers(11))
    u32 = int(rng.integers(1 << 32))

    def floats(n: int) -> tuple[float, ...]:
        return tuple(float(x) for x in rng.normal(0, 10, n).astype(np.float32))

    if k == 0:
        return Hello(int(rng.integers(256)))
    if k == 1:
        return Identity(1, int(rng.integers(1, 59)), int(rng.integers(1, 61)), u32, 100, "dev")
    if k == 2:
        return Channel(int(rng.integers(2)), int(rng.integers(60)), -1.0, 1.0, 0.0, "ch", "m")
    if k in (3, 4):
        n = int(rng.integers(1, 59))
        return ObservationMsg(u32, int(rng.integers(1 << 16)), int(rng.integers(4)), floats(n))
    if k == 5:
        return Command(floats(int(rng.integers(1, 8))))
    if k == 6:
        return Ping(u32)
    if k == 7:
        return Pong(u32)
    if k == 8:
        return Estop(int(rng.integers(2)))
    if k == 9:
        return Arm()
    st, fault, crc, dropped, last, t = (int(x) for x in rng.integers(0, 1 << 16, 6))
    return Status(st % 4, fault % 5, crc, dropped, last, t)


def corrupt_frame(frame: bytes, model: str, rng: np.random.Generator) -> bytes:
    """Corrupt a decoded ``frame`` by ``model`` (``bit*``, ``odd_bits``, ``burst16``, ``multi``)."""
    f = bytearray(frame)
    nbits = len(f) * 8
    if model.startswith("bit") or model == "odd_bits":
        k = int(model[3]) if model.startswith("bit") else int(rng.choice([5, 7, 9]))
        for b in rng.choice(nbits, size=k, replace=False):
            f[b // 8] ^= 1 << (b % 8)
    elif model == "burst16":
        start = int(rng.integers(len(f) - 1))
        f[start] ^= int(rng.integers(1, 256))
        f[start + 1] ^= int(rng.integers(256))
    else:  # multi
        for i in rng.choice(len(f), size=min(len(f), int(rng.integers(2, 9))), replace=False):
            f[i] ^= int(rng.integers(1, 256))
    return bytes(f)


def corrupt_wire(encoded: bytes, model: str, rng: np.random.Generator) -> bytes:
    """Corrupt a COBS encoding (no delimiter) by ``wire_byte``, ``truncate`` or ``insert``."""
    e = bytearray(encoded)
    if model == "wire_byte":
        i = int(rng.integers(len(e)))
        e[i] = (e[i] + int(rng.integers(1, 256))) % 256
    elif model == "truncate":
        e = e[: int(rng.integers(len(e)))]
    else:
        i = int(rng.integers(len(e) + 1))
        e[i:i] = rng.integers(0, 256, int(rng.integers(1, 6))).astype(np.uint8).tobytes()
    return bytes(e)


@dataclass
class FuzzReport:
    """Result of :func:`fuzz_parser`.

    Attributes:
        frames_fuzzed: corrupted frames fed.
        intact_frames: valid frames fed between them (all must come out).
        intact_received: how many of those came out.
        corrupted_accepted: frames returned whose bytes differ from what was sent (must be 0).
        unharmed_accepted: "corrupted" frames whose damage fell outside them (e.g. inserted
            bytes starting with 0x00 right after the frame), correctly received unaltered.
        accepted_by_model: ``corrupted_accepted`` per corruption model.
        per_model: corrupted frames fed per model.
        drops: the deframer's drop counters.
        seconds: wall time of the run.
    """

    frames_fuzzed: int
    intact_frames: int
    intact_received: int
    corrupted_accepted: int
    unharmed_accepted: int = 0
    accepted_by_model: dict[str, int] = field(default_factory=dict)
    per_model: dict[str, int] = field(default_factory=dict)
    drops: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict."""
        return dict(self.__dict__)


def fuzz_parser(n_frames: int, seed: int = 0, chunk: int = 64) -> FuzzReport:
    """Fuzz a deframer with ``n_frames`` corrupted frames, each followed by an intact one.

    The stream is fed in random-sized pieces of up to ``chunk`` bytes. Corrupted frames get
    even sequence numbers, intact ones odd; a frame that comes out of the parser and is
    neither the intact frame just sent nor the corrupted frame's original bytes counts as a
    corrupted frame accepted.
    """
    rng = np.random.default_rng(seed)
    deframer = Deframer()
    sent: dict[int, bytes] = {}
    per_model: Counter[str] = Counter()
    accepted: Counter[str] = Counter()
    intact_received = unharmed = 0
    t0 = time.perf_counter()
    for i in range(n_frames):
        model = MODELS[int(rng.integers(len(MODELS)))]
        per_model[model] += 1
        seq = (2 * i + 1) & 0xFFFF  # the intact frame's; the corrupted one has seq - 1
        bad_frame = encode_frame(random_message(rng), (seq - 1) & 0xFFFF)
        if model in ("wire_byte", "truncate", "insert"):
            bad = corrupt_wire(cobs.encode(bad_frame), model, rng)
        else:
            bad = cobs.encode(corrupt_frame(bad_frame, model, rng))
        good_frame = encode_frame(random_message(rng), seq)
        sent[seq] = good_frame
        if rng.random() < 0.02:  # line noise between frames
            bad = rng.integers(0, 256, int(rng.integers(1, 400))).astype(np.uint8).tobytes() + bad
        bad_seen = False
        stream = b"\x00" + bad + b"\x00" + cobs.encode(good_frame) + b"\x00"
        pos = 0
        while pos < len(stream):
            step = int(rng.integers(1, chunk + 1))
            for fr in deframer.feed(stream[pos : pos + step]):
                raw = encode_frame(fr.message, fr.seq, fr.version) if fr.message else None
                if raw == bad_frame and not bad_seen:  # the damage missed the frame
                    unharmed += 1  # (e.g. inserted bytes starting with 0x00 after it)
                    bad_seen = True
                elif raw is not None and raw == sent.get(fr.seq) and fr.seq == seq:
                    intact_received += 1
                else:
                    accepted[model] += 1
            pos += step
    return FuzzReport(
        frames_fuzzed=n_frames,
        intact_frames=n_frames,
        intact_received=intact_received,
        corrupted_accepted=sum(accepted.values()),
        unharmed_accepted=unharmed,
        accepted_by_model=dict(accepted),
        per_model=dict(per_model),
        drops=dict(deframer.stats.dropped),
        seconds=time.perf_counter() - t0,
    )


def main() -> None:
    """``python -m liquidnode.firmware_bridge.fuzz [--frames N] [--seed S]``: JSON report."""
    ap = argparse.ArgumentParser(description="fuzz the frame parser with corrupted frames")
    ap.add_argument("--frames", type=int, default=100_000, help="corrupted frames to feed")
    ap.add_argument("--seed", type=int, default=0, help="random seed")
    args = ap.parse_args()
    print(json.dumps(fuzz_parser(args.frames, args.seed).to_json()))


if __name__ == "__main__":
    main()
