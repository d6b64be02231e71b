/*
 * policy_frames.h - the frames of on-device inference (PROTOCOL.md section 9,
 * revision 1.2; frame version byte still 1): payload layouts and builders,
 * shared by the firmware (policy_task.c) and the C vector tests.
 *
 *   POLICY     (dev->host, 0x17) after the CHANNEL frames of the handshake, in
 *              policy builds only: u8 precision (0 f32, 1 q15, 2 q7),
 *              u8 sensor_source (0 the board's sensors, 1 SENSORS frames from
 *              the host: hardware in the loop), u16 state_dim, u32 clock_hz,
 *              u8 name_len, name[name_len] (ASCII, <= 32)        9+name_len B
 *   SENSORS    (host->dev, 0x18) f32 values[n_obs]: the sensor values the
 *              next policy step reads (HIL builds); its seq is echoed in
 *              TELEMETRY.sensor_seq                               4*n_obs B
 *   TELEMETRY  (dev->host, 0x19) one per policy tick: u32 device_time_us,
 *              u16 sensor_seq, u8 state, u32 step_cycles, u16 state_digest,
 *              f32 obs[n_obs], f32 policy_action[n_act] (the policy's output,
 *              env units, before the clamp), f32 applied[n_act] (what the
 *              actuators got: clamped, or the safe action)  13+4*n_obs+8*n_act B
 *   DISARM     (host->dev, 0x1A) empty: ARMED/WATCHDOG/ESTOP(host) -> DISARMED
 *              with the safe action (a latched device e-stop stays)      0 B
 * state_digest: CRC-16/CCITT-FALSE over the hidden state as f32 little-endian
 * (the exported <prefix>_state_read() layout, Policy.state's order).
 */
#ifndef LIQUIDNODE_POLICY_FRAMES_H
#define LIQUIDNODE_POLICY_FRAMES_H

#include <stdint.h>

#define PROTO_MSG_POLICY 0x17u
#define PROTO_MSG_SENSORS 0x18u
#define PROTO_MSG_TELEMETRY 0x19u
#define PROTO_MSG_DISARM 0x1Au

enum { POLICY_PREC_F32 = 0, POLICY_PREC_Q15 = 1, POLICY_PREC_Q7 = 2 };
enum { POLICY_SENSORS_BOARD = 0, POLICY_SENSORS_HOST = 1 };

#define POLICY_MAX_NAME_LEN 32u

/* One TELEMETRY frame's fields (arrays in channel order, env units). */
typedef struct {
    uint32_t device_time_us; /* device clock at the sensor read, us */
    uint16_t sensor_seq;     /* seq of the SENSORS frame the step read; 0 with board sensors */
    uint8_t state;           /* PROTO_STATE_* */
    uint32_t step_cycles;    /* CPU cycles of the policy step (0: no step this tick) */
    uint16_t state_digest;   /* CRC-16 of the hidden state, see above */
    const float *obs;        /* n_obs values the step read */
    const float *policy_action; /* n_act values, the policy's output */
    const float *applied;    /* n_act values, written to the actuators */
} policy_telemetry_t;

/* Write a POLICY payload at p; returns its length in bytes. */
uint8_t policy_put_info(uint8_t *p, uint8_t precision, uint8_t sensor_source, uint16_t state_dim,
                        uint32_t clock_hz, const char *name);

/* Write a TELEMETRY payload at p; returns its length in bytes. */
uint8_t policy_put_telemetry(uint8_t *p, const policy_telemetry_t *t, uint8_t n_obs, uint8_t n_act);

/* Read a SENSORS payload of len bytes into out[n_obs]: 0 ok, -1 wrong length,
 * -2 a value is not finite (out is then left partly written). */
int policy_get_sensors(const uint8_t *payload, uint8_t len, uint8_t n_obs, float *out);

/* CRC-16/CCITT-FALSE over n floats as little-endian binary32. */
uint16_t policy_state_digest(const float *h, uint16_t n);

#endif /* LIQUIDNODE_POLICY_FRAMES_H */
