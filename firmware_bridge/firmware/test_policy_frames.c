/*
 * test_policy_frames.c - the on-device inference payloads (policy_frames.c)
 * against the shared vectors: `make test-host` runs it on the records that
 * `vectors_to_txt.py --policy` writes from firmware_bridge/test_vectors.json
 * (info, sensors, telemetry, digest; see that script). Each record's fields
 * go through the C builder/parser, whose bytes must equal Python's payload.
 * Prints one line per failure and a summary; exit status 1 on any failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_frames.h"
#include "protocol.h"

#define MAX_BYTES 1024

static int failures;
static int checks;

#define CHECK(cond, ...)                                \
    do {                                                \
        checks++;                                       \
        if (!(cond)) {                                  \
            failures++;                                 \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                        \
            printf("\n");                               \
        }                                               \
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

/* f32 little-endian hex -> floats; returns the count or -1. */
static int hex_to_floats(const char *hex, float *out, size_t cap)
{
    uint8_t bytes[MAX_BYTES];
    int n = hex_to_bytes(hex, bytes, sizeof(bytes));
    if (n < 0 || n % 4 != 0 || (size_t)(n / 4) > cap) {
        return -1;
    }
    for (int i = 0; i < n / 4; i++) {
        out[i] = get_f32(bytes + 4 * i);
    }
    return n / 4;
}

static void check_info(const char *line)
{
    unsigned prec, source, state_dim;
    unsigned long clock;
    char name_hex[256], payload_hex[1024];
    if (sscanf(line, "info %u %u %u %lu %255s %1023s", &prec, &source, &state_dim, &clock, name_hex, payload_hex) != 6) {
        CHECK(0, "bad info record");
        return;
    }
    char name[64] = {0};
    uint8_t want[MAX_BYTES], got[PROTO_MAX_PAYLOAD];
    int nn = hex_to_bytes(name_hex, (uint8_t *)name, sizeof(name) - 1);
    int nw = hex_to_bytes(payload_hex, want, sizeof(want));
    CHECK(nn >= 0 && nw >= 0, "bad info hex");
    uint8_t n = policy_put_info(got, (uint8_t)prec, (uint8_t)source, (uint16_t)state_dim, (uint32_t)clock, name);
    CHECK(n == nw && memcmp(got, want, n) == 0, "POLICY payload of '%s' -> %s", name, payload_hex);
}

static void check_sensors(const char *line)
{
    unsigned n_obs;
    char values_hex[1024], payload_hex[1024];
    if (sscanf(line, "sensors %u %1023s %1023s", &n_obs, values_hex, payload_hex) != 3) {
        CHECK(0, "bad sensors record");
        return;
    }
    float want[64], got[64];
    uint8_t payload[MAX_BYTES];
    int nv = hex_to_floats(values_hex, want, 64);
    int np = hex_to_bytes(payload_hex, payload, sizeof(payload));
    CHECK(nv == (int)n_obs && np >= 0, "bad sensors hex");
    CHECK(policy_get_sensors(payload, (uint8_t)np, (uint8_t)n_obs, got) == 0 && memcmp(got, want, 4u * n_obs) == 0,
          "SENSORS payload %s", payload_hex);
    CHECK(policy_get_sensors(payload, (uint8_t)(np - 4), (uint8_t)n_obs, got) == -1, "SENSORS short payload refused");
    uint8_t nan_payload[MAX_BYTES];
    memcpy(nan_payload, payload, (size_t)np);
    put_u32(nan_payload, 0x7FC00000UL);
    CHECK(policy_get_sensors(nan_payload, (uint8_t)np, (uint8_t)n_obs, got) == -2, "SENSORS NaN refused");
}

static void check_telemetry(const char *line)
{
    unsigned n_obs, n_act, seq, state, digest;
    unsigned long time_us, cycles;
    char values_hex[2048], payload_hex[2048];
    if (sscanf(line, "telemetry %u %u %lu %u %u %lu %u %2047s %2047s", &n_obs, &n_act, &time_us, &seq, &state, &cycles,
               &digest, values_hex, payload_hex) != 9) {
        CHECK(0, "bad telemetry record");
        return;
    }
    float v[128];
    uint8_t want[MAX_BYTES], got[PROTO_MAX_PAYLOAD];
    int nv = hex_to_floats(values_hex, v, 128);
    int nw = hex_to_bytes(payload_hex, want, sizeof(want));
    CHECK(nv == (int)(n_obs + 2u * n_act) && nw >= 0, "bad telemetry hex");
    policy_telemetry_t t = {(uint32_t)time_us, (uint16_t)seq, (uint8_t)state, (uint32_t)cycles, (uint16_t)digest,
                            v, v + n_obs, v + n_obs + n_act};
    uint8_t n = policy_put_telemetry(got, &t, (uint8_t)n_obs, (uint8_t)n_act);
    CHECK(n == nw && memcmp(got, want, n) == 0, "TELEMETRY payload -> %s", payload_hex);
}

static void check_digest(const char *line)
{
    char state_hex[2048];
    unsigned long crc;
    if (sscanf(line, "digest %2047s %lu", state_hex, &crc) != 2) {
        CHECK(0, "bad digest record");
        return;
    }
    float h[256];
    int n = hex_to_floats(state_hex, h, 256);
    CHECK(n >= 0 && policy_state_digest(h, (uint16_t)n) == (uint16_t)crc, "digest of %.40s... = %lu", state_hex, crc);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        printf("usage: test_policy_frames VECTORS.txt (vectors_to_txt.py writes it; make test-host)\n");
        return 2;
    }
    char policy_vectors[512];
    snprintf(policy_vectors, sizeof(policy_vectors), "%s", argv[1]);
    FILE *fp = fopen(policy_vectors, "r");
    if (!fp) {
        printf("FAIL cannot open %s\n", policy_vectors);
        return 1;
    }
    static char line[8192];
    int records = 0;
    while (fgets(line, sizeof(line), fp)) {
        char kind[16];
        if (sscanf(line, "%15s", kind) != 1) {
            continue;
        }
        records++;
        if (strcmp(kind, "info") == 0) {
            check_info(line);
        } else if (strcmp(kind, "sensors") == 0) {
            check_sensors(line);
        } else if (strcmp(kind, "telemetry") == 0) {
            check_telemetry(line);
        } else if (strcmp(kind, "digest") == 0) {
            check_digest(line);
        } else {
            CHECK(0, "unparsed record: %.60s", line);
        }
    }
    fclose(fp);
    CHECK(records >= 4, "only %d records in %s", records, policy_vectors);
    printf("policy frames: %d records, %d checks, %d failures\n", records, checks, failures);
    return failures ? 1 : 0;
}
