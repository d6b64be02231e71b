/*
 * crc16.h - CRC-16/CCITT-FALSE, the frame check of wire protocol v1.
 *
 * Parameters: width 16, polynomial 0x1021, init 0xFFFF, input and output not
 * reflected, xorout 0x0000. Check value: crc16("123456789") = 0x29B1.
 * The frame CRC covers the decoded bytes 0..3+N (header and payload) and is
 * stored little-endian after the payload (see protocol.h).
 */
#ifndef LIQUIDNODE_CRC16_H
#define LIQUIDNODE_CRC16_H

#include <stddef.h>
#include <stdint.h>

#define CRC16_INIT 0xFFFFu /* initial register value */

/* Feed one byte into a running CRC register; returns the new register. */
uint16_t crc16_update(uint16_t crc, uint8_t byte);

/* CRC-16/CCITT-FALSE of len bytes at data (starts from CRC16_INIT). */
uint16_t crc16(const uint8_t *data, size_t len);

#endif /* LIQUIDNODE_CRC16_H */
