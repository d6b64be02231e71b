/*
 * protocol.h - wire protocol v1: frame layout, message types, receiver.
 * The normative description is firmware_bridge/PROTOCOL.md; this is its C
 * mirror. All multi-byte fields are little-endian, floats IEEE-754 binary32.
 *
 * Decoded frame (before COBS; on the wire: COBS(frame) followed by 0x00):
 *   offset  size  field     notes
 *   0       1     version   PROTO_VERSION (1)
 *   1       1     type      PROTO_MSG_* below
 *   2       2     seq       u16 per-sender sequence number, wraps at 65536
 *   4       N     payload   0 <= N <= PROTO_MAX_PAYLOAD (240)
 *   4+N     2     crc       CRC-16/CCITT-FALSE over bytes 0..3+N (crc16.h)
 *
 * Payloads (offsets relative to the payload start):
 *   HELLO       (host->dev) u8 host_protocol_version                      1 B
 *   IDENTITY    (dev->host) u8 protocol_version, u8 n_obs, u8 n_act,
 *               u32 control_period_us, u16 watchdog_timeout_ms,
 *               u8 id_len, id[id_len] (ASCII, <= 32)                10+id_len B
 *   CHANNEL     (dev->host) u8 kind (0 obs, 1 act), u8 index, f32 low,
 *               f32 high, f32 safe, u8 name_len, name, u8 unit_len, unit
 *   OBSERVATION (dev->host) u32 device_time_us, u16 ack_seq, u8 state,
 *               f32 values[n_obs]                                7+4*n_obs B
 *   COMMAND     (host->dev) f32 values[n_act]                         4*n_act B
 *   PING        (host->dev) u32 token                                      4 B
 *   PONG        (dev->host) u32 token (echo of PING)                       4 B
 *   ESTOP       (both)      u8 source (0 host, 1 device button)            1 B
 *   ARM         (host->dev) empty                                          0 B
 *   STATUS      (dev->host) u8 state, u8 fault, u32 crc_errors,
 *               u32 dropped_frames, u16 last_cmd_seq, u32 device_time_us 16 B
 */
#ifndef LIQUIDNODE_PROTOCOL_H
#define LIQUIDNODE_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION 1u
#define PROTO_HEADER_LEN 4u    /* version, type, seq (u16) */
#define PROTO_CRC_LEN 2u       /* u16 little-endian */
#define PROTO_MAX_PAYLOAD 240u /* bytes */
#define PROTO_MIN_FRAME (PROTO_HEADER_LEN + PROTO_CRC_LEN)                     /* 6 */
#define PROTO_MAX_FRAME (PROTO_HEADER_LEN + PROTO_MAX_PAYLOAD + PROTO_CRC_LEN) /* 246 */
/* Max COBS encoding of a 246-byte frame: 247 bytes (+1 code byte; no 0xFF
 * block below 254 bytes), 248 on the wire with the delimiter. A receiver drops
 * anything longer than PROTO_RX_MAX_ENCODED before the 0x00 as oversize. */
#define PROTO_RX_MAX_ENCODED 247u
/* Output buffer size for proto_encode(): encoding + delimiter + 1 margin. */
#define PROTO_MAX_ENCODED 249u
#define PROTO_MAX_ID_LEN 32u

/* C99 compile-time check: a negative array size stops the build when cond is false. */
#define PROTO_STATIC_ASSERT(cond, name) typedef char proto_static_assert_##name[(cond) ? 1 : -1]
PROTO_STATIC_ASSERT(PROTO_MAX_FRAME == 246u, frame_size_is_that_of_protocol_md);
PROTO_STATIC_ASSERT(PROTO_RX_MAX_ENCODED >= PROTO_MAX_FRAME + 1u, rx_holds_the_largest_encoding);

/* Message types (frame byte 1). */
enum {
    PROTO_MSG_HELLO = 0x01,
    PROTO_MSG_IDENTITY = 0x02,
    PROTO_MSG_CHANNEL = 0x03,
    PROTO_MSG_OBSERVATION = 0x10,
    PROTO_MSG_COMMAND = 0x11,
    PROTO_MSG_PING = 0x12,
    PROTO_MSG_PONG = 0x13,
    PROTO_MSG_ESTOP = 0x14,
    PROTO_MSG_ARM = 0x15,
    PROTO_MSG_STATUS = 0x16
};

/* Device states (OBSERVATION.state, STATUS.state). */
enum { PROTO_STATE_DISARMED = 0, PROTO_STATE_ARMED = 1, PROTO_STATE_WATCHDOG = 2, PROTO_STATE_ESTOP = 3 };

/* Latched faults (STATUS.fault). ESTOP_LATCHED: the device's own e-stop input
 * latched it; only a local reset clears it, never the host's ARM.
 * WATCHDOG_RESET: the MCU was restarted by its hardware watchdog (reported
 * from boot until the next ARM). */
enum {
    PROTO_FAULT_NONE = 0,
    PROTO_FAULT_WATCHDOG = 1,
    PROTO_FAULT_ESTOP = 2,
    PROTO_FAULT_BAD_COMMAND = 3,
    PROTO_FAULT_TERMINATED = 4,
    PROTO_FAULT_ESTOP_LATCHED = 5,
    PROTO_FAULT_WATCHDOG_RESET = 6
};

/* CHANNEL.kind */
enum { PROTO_KIND_OBS = 0, PROTO_KIND_ACT = 1 };

/* A received frame; payload points into the receiver's buffer and stays valid
 * until the next proto_rx_push(). */
typedef struct {
    uint8_t type;
    uint16_t seq;
    uint8_t len; /* payload length, bytes */
    const uint8_t *payload;
} proto_frame_t;

/*
 * Stream receiver: collects bytes up to a 0x00 delimiter, COBS-decodes in
 * place, checks length, version and CRC. Drops are counted:
 * Checks in order (PROTOCOL.md 1.4): oversize (> 247 bytes before the 0x00),
 * COBS decoding, length >= 6, CRC, version. Counters:
 *   crc_errors     - frames whose CRC did not match;
 *   dropped_frames - oversize, COBS-malformed, shorter than 6 bytes, version
 *                    other than 1 (and, counted by the caller via
 *                    proto_rx_count_drop(), unknown type, wrong payload
 *                    length, rejected command). An empty frame (two
 *                    consecutive delimiters) is idle filler, not counted.
 */
typedef struct {
    uint8_t buf[PROTO_RX_MAX_ENCODED]; /* encoded bytes since the last 0x00 */
    uint16_t n;                     /* bytes in buf */
    uint8_t overflow;               /* 1 while skipping an oversize frame */
    uint32_t crc_errors;
    uint32_t dropped_frames;
} proto_rx_t;

void proto_rx_init(proto_rx_t *rx);

/* Feed one received byte. Returns 1 and fills *out when the byte completed a
 * valid frame (CRC and version checked), else 0. */
int proto_rx_push(proto_rx_t *rx, uint8_t byte, proto_frame_t *out);

/* Count a frame that passed the CRC but was rejected by the dispatcher. */
void proto_rx_count_drop(proto_rx_t *rx);

/* Payload length, in bytes, of a frame the DEVICE accepts (HELLO 1,
 * COMMAND 4*n_act, PING 4, ESTOP 1, ARM 0); -1 for any other type. */
int proto_device_rx_len(uint8_t type, uint8_t n_act);

/*
 * Build a frame around the payload already stored at frame[4..4+len) - the
 * caller writes the payload in place to save RAM - then COBS-encode it and
 * append the delimiter. frame must hold PROTO_MAX_FRAME bytes, out
 * PROTO_MAX_ENCODED bytes. Returns the number of bytes in out (including the
 * trailing 0x00), or 0 if len > PROTO_MAX_PAYLOAD.
 */
size_t proto_encode(uint8_t *frame, uint8_t type, uint16_t seq, uint8_t len, uint8_t *out);

/* Little-endian field helpers (return the pointer just past the field). */
uint8_t *put_u8(uint8_t *p, uint8_t v);
uint8_t *put_u16(uint8_t *p, uint16_t v);
uint8_t *put_u32(uint8_t *p, uint32_t v);
uint8_t *put_f32(uint8_t *p, float v);
uint16_t get_u16(const uint8_t *p);
uint32_t get_u32(const uint8_t *p);
float get_f32(const uint8_t *p);

/* 1 if the binary32 value is finite (exponent bits not all ones). */
int f32_is_finite(float v);

#endif /* LIQUIDNODE_PROTOCOL_H */
