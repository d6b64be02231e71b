/*
 * test_host.c - unit tests of the portable protocol core (cobs.c, crc16.c,
 * protocol.c), run on the host: `make test-host [VECTORS=file]`.
 *
 * Built-in checks always run (CRC check value, COBS round trips with zero
 * runs and 254-byte blocks, resynchronisation after garbage). With a vector
 * file (generated from firmware_bridge/test_vectors.json by
 * tests/firmware_bridge/test_firmware_host.py) every line is checked too.
 * Vector file: one record per line, fields separated by one space, "-" for
 * an empty hex string:
 *   crc     <input_hex> <crc_decimal>
 *   cobs    <decoded_hex> <encoded_hex>
 *   frame   <type_byte> <seq> <payload_hex> <frame_hex> <wire_hex>
 *   invalid <wire_hex> <reason>       reason: crc|cobs|short|oversize|
 *                                      unknown_type|bad_length|foreign_version
 *   stream  <wire_hex> <crc_drops> <other_drops> <frame_hex>...
 * Prints one line per failure and a summary; exit status 1 on any failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cobs.h"
#include "crc16.h"
#include "protocol.h"

#define MAX_BYTES 4096
#define N_ACT_FOR_VECTORS 1 /* COMMAND length check of the vectors: n_act from the record */

static int failures;
static int checks;

#define CHECK(cond, ...)                        \
    do {                                        \
        checks++;                               \
        if (!(cond)) {                          \
            failures++;                         \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                \
            printf("\n");                       \
        }                                       \
    } while (0)

static int hex_to_bytes(const char *hex, uint8_t *out, size_t cap)
{
    if (strcmp(hex, "-") == 0) {
        return 0;
    }
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 > cap) {
        return -1;
    }
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            return -1;
        }
        out[i] = (uint8_t)v;
    }
    return (int)(n / 2);
}

/* Feed bytes into a fresh receiver; collect decoded raw frames. */
typedef struct {
    proto_rx_t rx;
    int n_frames;
    uint8_t frames[16][PROTO_MAX_FRAME];
    int frame_len[16];
    proto_frame_t last;
} feed_t;

static void feed(feed_t *f, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        proto_frame_t fr;
        if (proto_rx_push(&f->rx, data[i], &fr)) {
            f->last = fr;
            if (f->n_frames < 16) {
                int raw = (int)fr.len + (int)PROTO_MIN_FRAME;
                memcpy(f->frames[f->n_frames], fr.payload - PROTO_HEADER_LEN, (size_t)raw);
                f->frame_len[f->n_frames] = raw;
            }
            f->n_frames++;
        }
    }
}

static void builtin_tests(void)
{
    /* CRC check value of CRC-16/CCITT-FALSE. */
    CHECK(crc16((const uint8_t *)"123456789", 9) == 0x29B1u, "crc check value");

    /* COBS round trips: zeros, 253..256-byte runs of non-zero bytes. */
    static uint8_t src[600], enc[700], dec[700];
    unsigned seed = 12345u;
    for (size_t len = 0; len < 560; len += (len < 300 ? 1 : 37)) {
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            uint8_t r = (uint8_t)(seed >> 16);
            src[i] = (len % 3 == 0) ? (uint8_t)(i % 255 + 1) : (r < 40 ? 0 : r);
        }
        size_t n = cobs_encode(src, len, enc);
        CHECK(n <= COBS_MAX_ENCODED(len), "cobs overhead len=%zu n=%zu", len, n);
        CHECK(memchr(enc, 0, n) == NULL, "cobs output contains 0x00, len=%zu", len);
        int m = cobs_decode(enc, n, dec, sizeof(dec));
        CHECK(m == (int)len && memcmp(src, dec, len) == 0, "cobs round trip len=%zu", len);
        /* in place */
        memcpy(dec, enc, n);
        m = cobs_decode(dec, n, dec, sizeof(dec));
        CHECK(m == (int)len && memcmp(src, dec, len) == 0, "cobs in-place len=%zu", len);
    }
    /* Encode/receive round trip and resync after garbage. */
    uint8_t frame[PROTO_MAX_FRAME], wire[PROTO_MAX_ENCODED];
    memcpy(frame + PROTO_HEADER_LEN, "\x78\x56\x34\x12", 4);
    size_t n = proto_encode(frame, PROTO_MSG_PING, 1, 4, wire);
    static const uint8_t expect[] = {0x04, 0x01, 0x12, 0x01, 0x07, 0x78, 0x56, 0x34, 0x12, 0x2f, 0xb4, 0x00};
    CHECK(n == sizeof(expect) && memcmp(wire, expect, n) == 0, "PROTOCOL.md worked example");
    feed_t *f = calloc(1, sizeof(*f));
    static const uint8_t garbage[] = {0x13, 0x37, 0xff, 0x42, 0x00}; /* ends at a delimiter */
    feed(f, garbage, sizeof(garbage));
    feed(f, wire, n);
    CHECK(f->n_frames == 1 && f->last.type == PROTO_MSG_PING && f->last.seq == 1 && f->last.len == 4 &&
              f->rx.dropped_frames + f->rx.crc_errors == 1,
          "resync after garbage");
    /* Max payload encodes to 248 wire bytes and is received. */
    memset(frame + PROTO_HEADER_LEN, 0xAB, PROTO_MAX_PAYLOAD);
    n = proto_encode(frame, PROTO_MSG_STATUS, 7, PROTO_MAX_PAYLOAD, wire);
    CHECK(n == 248, "max frame on the wire is 248 bytes, got %zu", n);
    memset(f, 0, sizeof(*f));
    feed(f, wire, n);
    CHECK(f->n_frames == 1 && f->last.len == PROTO_MAX_PAYLOAD, "max frame received");
    CHECK(proto_encode(frame, PROTO_MSG_STATUS, 7, PROTO_MAX_PAYLOAD + 1, wire) == 0, "oversize payload refused");
    /* Empty frames are idle filler, not counted. */
    memset(f, 0, sizeof(*f));
    static const uint8_t zeros[] = {0, 0, 0};
    feed(f, zeros, 3);
    CHECK(f->rx.dropped_frames == 0 && f->rx.crc_errors == 0, "empty frames not counted");
    free(f);
}

/*
 * Fuzz: N random valid frames (random type, seq, payload 0..240 bytes, many
 * zeros), each sent once with 1..3 random bytes of its wire encoding replaced
 * (never by 0x00: that would be a delimiter and split the frame) and then
 * once intact. The altered copy must never be accepted, the intact one
 * always (resynchronisation at the delimiter), whatever the damage.
 */
static void fuzz_receiver(int n_frames)
{
    static uint8_t frame[PROTO_MAX_FRAME], wire[PROTO_MAX_ENCODED], bad[PROTO_MAX_ENCODED];
    feed_t *f = calloc(1, sizeof(*f));
    unsigned seed = 2024u;
    long accepted_altered = 0, lost_intact = 0;
#define RAND() (seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7FFFu)
    for (int k = 0; k < n_frames; k++) {
        uint8_t len = (uint8_t)(RAND() % (PROTO_MAX_PAYLOAD + 1u));
        for (uint8_t i = 0; i < len; i++) {
            frame[PROTO_HEADER_LEN + i] = (uint8_t)((RAND() % 4u == 0) ? 0u : RAND());
        }
        uint8_t type = (uint8_t)RAND();
        uint16_t seq = (uint16_t)RAND();
        size_t n = proto_encode(frame, type, seq, len, wire);
        memcpy(bad, wire, n);
        int n_bytes = 1 + (int)(RAND() % 3u);
        for (int j = 0; j < n_bytes; j++) {
            size_t at = RAND() % (n - 1); /* never the delimiter */
            uint8_t v;
            do {
                v = (uint8_t)RAND();
            } while (v == 0 || v == wire[at]);
            bad[at] = v;
        }
        if (memcmp(bad, wire, n) == 0) {
            continue;
        }
        int before = f->n_frames;
        feed(f, bad, n);
        if (f->n_frames != before) {
            accepted_altered++;
        }
        before = f->n_frames;
        feed(f, wire, n);
        if (f->n_frames != before + 1 || f->last.type != type || f->last.seq != seq || f->last.len != len ||
            memcmp(f->last.payload, frame + PROTO_HEADER_LEN, len) != 0) {
            lost_intact++;
        }
    }
#undef RAND
    printf("fuzz: %d frames altered in 1..3 bytes: %ld accepted, %ld intact frames lost\n", n_frames,
           accepted_altered, lost_intact);
    CHECK(accepted_altered == 0, "fuzz: %ld altered frames accepted", accepted_altered);
    CHECK(lost_intact == 0, "fuzz: %ld intact frames lost after an altered one", lost_intact);
    free(f);
}

static void check_frame(int type, int seq, const char *payload_hex, const char *frame_hex, const char *wire_hex)
{
    static uint8_t payload[MAX_BYTES], raw[MAX_BYTES], wire[MAX_BYTES];
    static uint8_t frame[PROTO_MAX_FRAME], out[PROTO_MAX_ENCODED];
    int np = hex_to_bytes(payload_hex, payload, sizeof(payload));
    int nr = hex_to_bytes(frame_hex, raw, sizeof(raw));
    int nw = hex_to_bytes(wire_hex, wire, sizeof(wire));
    CHECK(np >= 0 && nr >= 0 && nw >= 0 && np <= (int)PROTO_MAX_PAYLOAD, "bad frame record");
    if (np < 0 || nr < 0 || nw < 0 || np > (int)PROTO_MAX_PAYLOAD) {
        return;
    }
    memcpy(frame + PROTO_HEADER_LEN, payload, (size_t)np);
    size_t n = proto_encode(frame, (uint8_t)type, (uint16_t)seq, (uint8_t)np, out);
    CHECK(n == (size_t)nw && memcmp(out, wire, n) == 0, "encode type 0x%02x seq %d -> %s", type, seq, wire_hex);
    CHECK(memcmp(frame, raw, (size_t)nr) == 0, "raw frame type 0x%02x -> %s", type, frame_hex);
    feed_t *f = calloc(1, sizeof(*f));
    feed(f, wire, (size_t)nw);
    CHECK(f->n_frames == 1 && f->last.type == type && f->last.seq == seq && f->last.len == np &&
              memcmp(f->last.payload, payload, (size_t)np) == 0,
          "receive %s", wire_hex);
    free(f);
}

/* Which counter a rejected vector must bump: 'c' crc_errors, 'd' dropped. */
static void check_invalid(const char *wire_hex, const char *reason)
{
    static uint8_t wire[MAX_BYTES];
    int nw = hex_to_bytes(wire_hex, wire, sizeof(wire));
    CHECK(nw >= 0, "bad invalid record");
    if (nw < 0) {
        return;
    }
    feed_t *f = calloc(1, sizeof(*f));
    feed(f, wire, (size_t)nw);
    uint32_t crc = f->rx.crc_errors;
    uint32_t dropped = f->rx.dropped_frames;
    if (f->n_frames == 1) {
        /* Passed the receiver: the device's type/length check must drop it. */
        int want = proto_device_rx_len(f->last.type, N_ACT_FOR_VECTORS);
        if (want != (int)f->last.len) {
            dropped++;
        } else {
            CHECK(0, "invalid frame (%s) accepted: %s", reason, wire_hex);
        }
    }
    if (strcmp(reason, "crc") == 0) {
        CHECK(crc == 1 && dropped == 0, "%s: crc_errors=%u dropped=%u", reason, crc, dropped);
    } else {
        CHECK(crc == 0 && dropped == 1, "%s: crc_errors=%u dropped=%u", reason, crc, dropped);
    }
    free(f);
}

static void check_stream(char *rest)
{
    static uint8_t wire[2 * MAX_BYTES], raw[MAX_BYTES];
    char *save = NULL;
    char *wire_hex = strtok_r(rest, " \n", &save);
    char *crc_s = strtok_r(NULL, " \n", &save);
    char *other_s = strtok_r(NULL, " \n", &save);
    int nw = wire_hex ? hex_to_bytes(wire_hex, wire, sizeof(wire)) : -1;
    CHECK(nw >= 0 && crc_s && other_s, "bad stream record");
    if (nw < 0 || !crc_s || !other_s) {
        return;
    }
    feed_t *f = calloc(1, sizeof(*f));
    feed(f, wire, (size_t)nw);
    int i = 0;
    for (char *h = strtok_r(NULL, " \n", &save); h; h = strtok_r(NULL, " \n", &save), i++) {
        int nr = hex_to_bytes(h, raw, sizeof(raw));
        CHECK(i < f->n_frames && i < 16 && f->frame_len[i] == nr && memcmp(f->frames[i], raw, (size_t)nr) == 0,
              "stream frame %d = %s", i, h);
    }
    CHECK(f->n_frames == i, "stream: %d frames, expected %d", f->n_frames, i);
    CHECK(f->rx.crc_errors == (uint32_t)atoi(crc_s), "stream crc_errors %u, expected %s", f->rx.crc_errors, crc_s);
    CHECK(f->rx.dropped_frames == (uint32_t)atoi(other_s), "stream dropped %u, expected %s", f->rx.dropped_frames,
          other_s);
    free(f);
}

static void run_vector_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        printf("FAIL cannot open vector file %s\n", path);
        failures++;
        return;
    }
    static char line[64 * 1024];
    int records = 0;
    while (fgets(line, sizeof(line), fp)) {
        char kind[16], a[8192], b[8192], c[8192], d[8192], e[8192];
        if (sscanf(line, "%15s", kind) != 1) {
            continue;
        }
        records++;
        if (strcmp(kind, "crc") == 0 && sscanf(line, "%*s %8191s %8191s", a, b) == 2) {
            static uint8_t buf[MAX_BYTES];
            int n = hex_to_bytes(a, buf, sizeof(buf));
            CHECK(n >= 0 && crc16(buf, (size_t)n) == (uint16_t)atol(b), "crc(%s) = %s", a, b);
        } else if (strcmp(kind, "cobs") == 0 && sscanf(line, "%*s %8191s %8191s", a, b) == 2) {
            static uint8_t dec[MAX_BYTES], enc[MAX_BYTES], out[2 * MAX_BYTES];
            int nd = hex_to_bytes(a, dec, sizeof(dec));
            int ne = hex_to_bytes(b, enc, sizeof(enc));
            size_t n = cobs_encode(dec, (size_t)nd, out);
            CHECK(nd >= 0 && ne >= 0 && n == (size_t)ne && memcmp(out, enc, n) == 0, "cobs_encode(%.40s...)", a);
            int m = cobs_decode(enc, (size_t)ne, out, sizeof(out));
            CHECK(m == nd && memcmp(out, dec, (size_t)nd) == 0, "cobs_decode(%.40s...)", b);
        } else if (strcmp(kind, "frame") == 0 && sscanf(line, "%*s %8191s %8191s %8191s %8191s %8191s", a, b, c, d, e) == 5) {
            check_frame(atoi(a), atoi(b), c, d, e);
        } else if (strcmp(kind, "invalid") == 0 && sscanf(line, "%*s %8191s %8191s", a, b) == 2) {
            check_invalid(a, b);
        } else if (strcmp(kind, "stream") == 0) {
            check_stream(line + strlen("stream"));
        } else {
            printf("FAIL unparsed record: %.80s\n", line);
            failures++;
        }
    }
    fclose(fp);
    printf("vector file %s: %d records\n", path, records);
}

int main(int argc, char **argv)
{
    builtin_tests();
    fuzz_receiver(20000);
    if (argc > 1) {
        run_vector_file(argv[1]);
    }
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
