/* policy_frames.c - payloads of the on-device inference frames (policy_frames.h). */
#include "policy_frames.h"

#include <string.h>

#include "crc16.h"
#include "protocol.h"

uint8_t policy_put_info(uint8_t *p, uint8_t precision, uint8_t sensor_source, uint16_t state_dim,
                        uint32_t clock_hz, const char *name)
{
    uint8_t *q = p;
    size_t n = strlen(name);
    if (n > POLICY_MAX_NAME_LEN) {
        n = POLICY_MAX_NAME_LEN;
    }
    q = put_u8(q, precision);
    q = put_u8(q, sensor_source);
    q = put_u16(q, state_dim);
    q = put_u32(q, clock_hz);
    q = put_u8(q, (uint8_t)n);
    memcpy(q, name, n);
    return (uint8_t)(q + n - p);
}

uint8_t policy_put_telemetry(uint8_t *p, const policy_telemetry_t *t, uint8_t n_obs, uint8_t n_act)
{
    uint8_t *q = p;
    q = put_u32(q, t->device_time_us);
    q = put_u16(q, t->sensor_seq);
    q = put_u8(q, t->state);
    q = put_u32(q, t->step_cycles);
    q = put_u16(q, t->state_digest);
    for (uint8_t i = 0; i < n_obs; i++) {
        q = put_f32(q, t->obs[i]);
    }
    for (uint8_t i = 0; i < n_act; i++) {
        q = put_f32(q, t->policy_action[i]);
    }
    for (uint8_t i = 0; i < n_act; i++) {
        q = put_f32(q, t->applied[i]);
    }
    return (uint8_t)(q - p);
}

int policy_get_sensors(const uint8_t *payload, uint8_t len, uint8_t n_obs, float *out)
{
    if (len != 4u * n_obs) {
        return -1;
    }
    for (uint8_t i = 0; i < n_obs; i++) {
        out[i] = get_f32(payload + 4u * i);
        if (!f32_is_finite(out[i])) {
            return -2;
        }
    }
    return 0;
}

uint16_t policy_state_digest(const float *h, uint16_t n)
{
    uint8_t bytes[4];
    uint16_t crc = CRC16_INIT;
    for (uint16_t i = 0; i < n; i++) {
        put_f32(bytes, h[i]);
        for (uint8_t k = 0; k < 4u; k++) {
            crc = crc16_update(crc, bytes[k]);
        }
    }
    return crc;
}
