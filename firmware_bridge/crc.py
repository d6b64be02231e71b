"""CRC-16/CCITT-FALSE, the frame check sequence of the wire protocol.

Parameters (Rocksoft model): width 16, poly 0x1021, init 0xFFFF, refin false, refout false,
xorout 0x0000, check ``crc16(b"123456789") == 0x29B1``.

Why this CRC: it is cheap on an 8-bit AVR (a byte-wise shift/xor update needs no table,
``_crc_xmodem_update``-style, or a 512-byte table when flash allows), and for messages up to
32751 bits it has Hamming distance 4: every 1-, 2- and 3-bit error, every odd number of bit
errors (the generator has the factor ``x + 1``) and every burst of at most 16 bits is
detected. Our frames are at most 244 bytes covered by the CRC, well inside that range.
"""

from __future__ import annotations

CRC16_INIT = 0xFFFF
CRC16_POLY = 0x1021


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC16_POLY) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc16_ccitt_false(data: bytes | bytearray | memoryview, crc: int = CRC16_INIT) -> int:
    """Return the CRC-16/CCITT-FALSE of ``data`` (u16), continuing from ``crc``.

    Args:
        data: bytes to check.
        crc: running value; the default starts a new computation.

    Returns:
        The 16-bit CRC, 0..65535. Transmitted little-endian after the covered bytes.
    """
    table = _TABLE
    for byte in bytes(data):
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ byte) & 0xFF]
    return crc


def crc16_bitwise(data: bytes | bytearray | memoryview, crc: int = CRC16_INIT) -> int:
    """Reference bit-by-bit implementation (what the AVR firmware does); same result."""
    for byte in bytes(data):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC16_POLY) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc
