/* cobs.c - COBS encoder/decoder, see cobs.h for the format. */
#include "cobs.h"

size_t cobs_encode(const uint8_t *src, size_t len, uint8_t *dst)
{
    size_t out = 1;      /* next write position in dst */
    size_t code_pos = 0; /* where the current block's code byte goes */
    uint8_t code = 1;    /* 1 + data bytes in the current block */

    for (size_t i = 0; i < len; i++) {
        if (src[i] == 0) {
            dst[code_pos] = code;
            code_pos = out++;
            code = 1;
        } else {
            dst[out++] = src[i];
            code++;
            if (code == 0xFF) {
                /* Full block of 254 bytes: no implied zero after it. */
                dst[code_pos] = code;
                code_pos = out++;
                code = 1;
            }
        }
    }
    dst[code_pos] = code;
    return out;
}

int cobs_decode(const uint8_t *src, size_t len, uint8_t *dst, size_t dst_cap)
{
    size_t in = 0;
    size_t out = 0;

    while (in < len) {
        uint8_t code = src[in++];
        if (code == 0) {
            return -1; /* a delimiter inside the frame */
        }
        size_t n = (size_t)code - 1u;
        if (n > len - in || out + n > dst_cap) {
            return -1; /* block runs past the input or the output */
        }
        for (size_t k = 0; k < n; k++) {
            uint8_t b = src[in++];
            if (b == 0) {
                return -1;
            }
            dst[out++] = b;
        }
        if (code != 0xFF && in < len) {
            if (out >= dst_cap) {
                return -1;
            }
            dst[out++] = 0; /* implied zero between blocks */
        }
    }
    return (int)out;
}
