/*
 * cobs.h - Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999).
 *
 * COBS removes every 0x00 from a block so that 0x00 can delimit frames on the
 * wire. Each block of up to 254 non-zero bytes is prefixed by a code byte
 * (1 + number of data bytes in the block); a code < 0xFF stands for a zero
 * after its block, except for the last block. Overhead: at most
 * 1 + len/254 bytes. The 0x00 delimiter itself is NOT produced or consumed
 * here (see protocol.c).
 */
#ifndef LIQUIDNODE_COBS_H
#define LIQUIDNODE_COBS_H

#include <stddef.h>
#include <stdint.h>

/* Worst-case encoded size (without delimiter) of a len-byte block. */
#define COBS_MAX_ENCODED(len) ((len) + (len) / 254u + 1u)

/*
 * Encode len bytes from src into dst (which must hold COBS_MAX_ENCODED(len)
 * bytes and must not overlap src). Returns the encoded length; the output
 * contains no 0x00 byte.
 */
size_t cobs_encode(const uint8_t *src, size_t len, uint8_t *dst);

/*
 * Decode len COBS bytes from src into dst (at most dst_cap bytes). dst may
 * equal src (in-place decoding; the output is never longer than the input).
 * Returns the decoded length, or -1 when the input is malformed (contains
 * 0x00, a code byte runs past the end) or the output would exceed dst_cap.
 */
int cobs_decode(const uint8_t *src, size_t len, uint8_t *dst, size_t dst_cap);

#endif /* LIQUIDNODE_COBS_H */
