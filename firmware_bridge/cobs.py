"""Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999).

COBS removes every 0x00 from a frame so that 0x00 can delimit frames on the wire. The
encoding is a sequence of blocks ``[code, data...]``: ``code`` (1..255) says that ``code - 1``
non-zero data bytes follow and, if ``code < 255`` and the block is not the last, that a 0x00
follows them in the decoded frame. Overhead: at most ``1 + len(data) // 254`` bytes.

The decoder is strict: a zero byte inside the encoding, or a code that runs past the end,
is an error (:class:`CobsDecodeError`), never silently truncated data.
"""

from __future__ import annotations


class CobsDecodeError(ValueError):
    """The bytes are not a valid COBS encoding (names the offset and the reason)."""


def max_encoded_len(n: int) -> int:
    """Largest COBS encoding of ``n`` bytes (without the delimiter)."""
    return n + 1 + n // 254


def encode(data: bytes | bytearray | memoryview) -> bytes:
    """COBS-encode ``data``; the result contains no 0x00 and no delimiter."""
    out = bytearray()
    block = bytearray()
    for byte in bytes(data):
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(byte)
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def decode(encoded: bytes | bytearray | memoryview) -> bytes:
    """Decode one COBS-encoded frame (without its 0x00 delimiter).

    Raises:
        CobsDecodeError: empty input, a 0x00 inside, or a block code running past the end.
    """
    enc = bytes(encoded)
    n = len(enc)
    if n == 0:
        raise CobsDecodeError("empty COBS frame")
    out = bytearray()
    i = 0
    while i < n:
        code = enc[i]
        if code == 0:
            raise CobsDecodeError(f"0x00 inside COBS frame at offset {i}")
        end = i + code
        if end > n:
            raise CobsDecodeError(
                f"COBS block at offset {i} (code {code}) runs past the end ({n} bytes)"
            )
        block = enc[i + 1 : end]
        if 0 in block:
            raise CobsDecodeError(f"0x00 inside COBS frame at offset {i + 1 + block.index(0)}")
        out += block
        i = end
        if code < 255 and i < n:
            out.append(0)
    return bytes(out)
