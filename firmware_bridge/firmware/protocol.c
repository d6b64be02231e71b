/* protocol.c - frame receiver and encoder of wire protocol v1 (protocol.h). */
#include "protocol.h"

#include <string.h>

#include "cobs.h"
#include "crc16.h"

void proto_rx_init(proto_rx_t *rx)
{
    memset(rx, 0, sizeof(*rx));
}

void proto_rx_count_drop(proto_rx_t *rx)
{
    rx->dropped_frames++;
}

int proto_device_rx_len(uint8_t type, uint8_t n_act)
{
    switch (type) {
    case PROTO_MSG_HELLO:
    case PROTO_MSG_ESTOP:
        return 1;
    case PROTO_MSG_COMMAND:
        return 4 * (int)n_act;
    case PROTO_MSG_PING:
        return 4;
    case PROTO_MSG_ARM:
        return 0;
    default:
        return -1;
    }
}

/* Validate the frame collected in rx->buf; 1 = valid and *out filled. */
static int finish_frame(proto_rx_t *rx, proto_frame_t *out)
{
    int n = cobs_decode(rx->buf, rx->n, rx->buf, PROTO_MAX_FRAME);
    if (n < 0 || n < (int)PROTO_MIN_FRAME) {
        rx->dropped_frames++;
        return 0;
    }
    const uint8_t *f = rx->buf;
    size_t body = (size_t)n - PROTO_CRC_LEN;
    if (crc16(f, body) != get_u16(f + body)) {
        rx->crc_errors++;
        return 0;
    }
    if (f[0] != PROTO_VERSION) {
        rx->dropped_frames++;
        return 0;
    }
    out->type = f[1];
    out->seq = get_u16(f + 2);
    out->len = (uint8_t)(body - PROTO_HEADER_LEN);
    out->payload = f + PROTO_HEADER_LEN;
    return 1;
}

int proto_rx_push(proto_rx_t *rx, uint8_t byte, proto_frame_t *out)
{
    if (byte != 0) {
        if (rx->overflow) {
            return 0;
        }
        if (rx->n >= PROTO_RX_MAX_ENCODED) {
            /* Longer than any legal frame: drop it, resync at the next 0x00. */
            rx->overflow = 1;
            rx->dropped_frames++;
            return 0;
        }
        rx->buf[rx->n++] = byte;
        return 0;
    }
    /* Delimiter. */
    int ok = 0;
    if (!rx->overflow && rx->n > 0) {
        ok = finish_frame(rx, out);
    }
    rx->n = 0;
    rx->overflow = 0;
    return ok;
}

size_t proto_encode(uint8_t *frame, uint8_t type, uint16_t seq, uint8_t len, uint8_t *out)
{
    if (len > PROTO_MAX_PAYLOAD) {
        return 0;
    }
    frame[0] = PROTO_VERSION;
    frame[1] = type;
    put_u16(frame + 2, seq);
    size_t body = PROTO_HEADER_LEN + (size_t)len;
    put_u16(frame + body, crc16(frame, body));
    size_t n = cobs_encode(frame, body + PROTO_CRC_LEN, out);
    out[n++] = 0;
    return n;
}

uint8_t *put_u8(uint8_t *p, uint8_t v)
{
    *p = v;
    return p + 1;
}

uint8_t *put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}

uint8_t *put_u32(uint8_t *p, uint32_t v)
{
    for (uint8_t i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8u * i));
    }
    return p + 4;
}

uint8_t *put_f32(uint8_t *p, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return put_u32(p, bits);
}

uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | ((uint16_t)p[1] << 8));
}

uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

float get_f32(const uint8_t *p)
{
    uint32_t bits = get_u32(p);
    float v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

int f32_is_finite(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return (bits & 0x7F800000u) != 0x7F800000u;
}
