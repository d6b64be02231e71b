/* device.c - device state machine of wire protocol v1 (see device.h). */
#include "device.h"

#include <string.h>

#include "hal.h"
#ifdef LN_POLICY
#include "policy_frames.h"
#include "policy_task.h"
#endif

/* The largest frames this implementation builds fit the protocol's payload and the
 * encode buffer. */
PROTO_STATIC_ASSERT(7u + 4u * DEVICE_MAX_OBS <= PROTO_MAX_PAYLOAD, observation_fits);
PROTO_STATIC_ASSERT(4u * DEVICE_MAX_ACT <= PROTO_MAX_PAYLOAD, command_fits);
PROTO_STATIC_ASSERT(16u + 32u + 16u <= PROTO_MAX_PAYLOAD, channel_frame_fits);
PROTO_STATIC_ASSERT(10u + PROTO_MAX_ID_LEN <= PROTO_MAX_PAYLOAD, identity_fits);
PROTO_STATIC_ASSERT(PROTO_MAX_ENCODED >= PROTO_MAX_FRAME + 2u, encoding_and_delimiter_fit);

/* Scratch for the frame being sent: header + payload + CRC (static, to keep
 * the AVR stack small; the firmware is single-threaded). */
static uint8_t tx_frame[PROTO_MAX_FRAME];

/* Signed time difference a - b in microseconds, correct across the wrap. */
static int32_t time_diff(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b);
}

/* Encode the payload at tx_frame[4..4+len) and queue it; 1 if queued. */
static int send_frame(device_t *d, uint8_t type, uint8_t len)
{
    uint8_t out[PROTO_MAX_ENCODED];
    size_t n = proto_encode(tx_frame, type, d->tx_seq, len, out);
    if (n == 0 || hal_uart_tx_free() < n) {
        return 0;
    }
    hal_uart_write(out, (uint16_t)n);
    d->tx_seq++;
    return 1;
}

static uint8_t *payload(void)
{
    return tx_frame + PROTO_HEADER_LEN;
}

static uint8_t *put_str(uint8_t *p, const char *s, uint8_t max_len)
{
    size_t n = strlen(s);
    if (n > max_len) {
        n = max_len;
    }
    p = put_u8(p, (uint8_t)n);
    memcpy(p, s, n);
    return p + n;
}

static int send_status(device_t *d, uint32_t now_us)
{
    uint8_t *p = payload();
    p = put_u8(p, d->state);
    p = put_u8(p, d->fault);
    p = put_u32(p, d->rx.crc_errors);
    p = put_u32(p, d->rx.dropped_frames);
    p = put_u16(p, d->last_cmd_seq);
    p = put_u32(p, now_us);
    return send_frame(d, PROTO_MSG_STATUS, (uint8_t)(p - payload()));
}

static int send_identity(device_t *d)
{
    const device_schema_t *s = d->schema;
    uint8_t *p = payload();
    p = put_u8(p, PROTO_VERSION);
    p = put_u8(p, s->n_obs);
    p = put_u8(p, s->n_act);
    p = put_u32(p, s->control_period_us);
    p = put_u16(p, s->watchdog_timeout_ms);
    p = put_str(p, s->device_id, PROTO_MAX_ID_LEN);
    return send_frame(d, PROTO_MSG_IDENTITY, (uint8_t)(p - payload()));
}

/* CHANNEL frame number i: observations 0..n_obs-1, then actions. */
static int send_channel(device_t *d, uint8_t i)
{
    const device_schema_t *s = d->schema;
    uint8_t kind = i < s->n_obs ? PROTO_KIND_OBS : PROTO_KIND_ACT;
    uint8_t index = kind == PROTO_KIND_OBS ? i : (uint8_t)(i - s->n_obs);
    const device_channel_t *c = kind == PROTO_KIND_OBS ? &s->obs[index] : &s->act[index];
    uint8_t *p = payload();
    p = put_u8(p, kind);
    p = put_u8(p, index);
    p = put_f32(p, c->low);
    p = put_f32(p, c->high);
    p = put_f32(p, kind == PROTO_KIND_OBS ? 0.0f : c->safe);
    p = put_str(p, c->name, 32);
    p = put_str(p, c->unit, 16);
    return send_frame(d, PROTO_MSG_CHANNEL, (uint8_t)(p - payload()));
}

#ifndef LN_POLICY /* policy builds send TELEMETRY instead (policy_task.c) */
static int send_observation(device_t *d, uint32_t now_us)
{
    uint8_t *p = payload();
    p = put_u32(p, now_us);
    p = put_u16(p, d->ack_seq);
    p = put_u8(p, d->state);
    for (uint8_t i = 0; i < d->schema->n_obs; i++) {
        p = put_f32(p, d->obs[i]);
    }
    return send_frame(d, PROTO_MSG_OBSERVATION, (uint8_t)(p - payload()));
}
#endif

static int send_pong(device_t *d)
{
    uint8_t *p = put_u32(payload(), d->pong_token);
    return send_frame(d, PROTO_MSG_PONG, (uint8_t)(p - payload()));
}

static void apply_safe_action(device_t *d)
{
    for (uint8_t i = 0; i < d->schema->n_act; i++) {
        d->action[i] = d->schema->act[i].safe;
    }
    hal_write_actuators(d->action);
}

static void set_state(device_t *d, uint8_t state, uint8_t fault)
{
    if (d->state != state || d->fault != fault) {
        d->status_pending = 1;
    }
    d->state = state;
    d->fault = fault;
}

static void go_safe(device_t *d, uint8_t state, uint8_t fault)
{
    apply_safe_action(d);
    set_state(d, state, fault);
}

int device_send_frame(device_t *d, uint8_t type, uint8_t len)
{
    return send_frame(d, type, len);
}

uint8_t *device_tx_payload(void)
{
    return payload();
}

void device_go_safe(device_t *d, uint8_t state, uint8_t fault)
{
    go_safe(d, state, fault);
}

void device_apply_action(device_t *d, const float *v)
{
    const device_schema_t *s = d->schema;
    if (d->state != PROTO_STATE_ARMED) {
        return;
    }
    for (uint8_t i = 0; i < s->n_act; i++) {
        if (!f32_is_finite(v[i])) {
            if (d->fault == PROTO_FAULT_NONE) {
                set_state(d, d->state, PROTO_FAULT_BAD_COMMAND);
            }
            return; /* the previous action is kept */
        }
    }
    for (uint8_t i = 0; i < s->n_act; i++) {
        const device_channel_t *c = &s->act[i];
        d->action[i] = v[i] < c->low ? c->low : (v[i] > c->high ? c->high : v[i]);
    }
    hal_write_actuators(d->action);
}

int device_estop_latched(const device_t *d)
{
    return d->state == PROTO_STATE_ESTOP && d->fault == PROTO_FAULT_ESTOP_LATCHED;
}

void device_init(device_t *d, const device_schema_t *schema, uint32_t now_us, uint8_t boot_fault)
{
    memset(d, 0, sizeof(*d));
    d->schema = schema;
    proto_rx_init(&d->rx);
    d->state = PROTO_STATE_DISARMED;
    d->fault = PROTO_FAULT_NONE;
    d->handshake_next = -1;
    d->next_tick_us = now_us;
    d->next_status_us = now_us;
    d->last_cmd_us = now_us;
    apply_safe_action(d);
    if (boot_fault == PROTO_FAULT_ESTOP_LATCHED) {
        d->state = PROTO_STATE_ESTOP;
        d->fault = PROTO_FAULT_ESTOP_LATCHED;
    } else if (boot_fault == PROTO_FAULT_WATCHDOG_RESET) {
        d->fault = PROTO_FAULT_WATCHDOG_RESET;
    }
}

/* COMMAND payload: f32 values[n_act]. */
static void on_command(device_t *d, const proto_frame_t *f, uint32_t now_us)
{
    const device_schema_t *s = d->schema;
    float v[DEVICE_MAX_ACT];
    for (uint8_t i = 0; i < s->n_act; i++) {
        v[i] = get_f32(f->payload + 4u * i);
        if (!f32_is_finite(v[i])) {
            proto_rx_count_drop(&d->rx);
            if (d->fault == PROTO_FAULT_NONE) {
                set_state(d, d->state, PROTO_FAULT_BAD_COMMAND);
            }
            return;
        }
    }
    if (d->state != PROTO_STATE_ARMED) {
        return;
    }
    for (uint8_t i = 0; i < s->n_act; i++) {
        const device_channel_t *c = &s->act[i];
        d->action[i] = v[i] < c->low ? c->low : (v[i] > c->high ? c->high : v[i]);
    }
    hal_write_actuators(d->action);
    d->ack_seq = f->seq;
    d->last_cmd_seq = f->seq;
    d->last_cmd_us = now_us;
}

static void dispatch(device_t *d, const proto_frame_t *f, uint32_t now_us)
{
#ifdef LN_POLICY
    if (policy_task_on_frame(d, f, now_us)) {
        return;
    }
#endif
    int want = proto_device_rx_len(f->type, d->schema->n_act);
    if (want < 0 || want != (int)f->len) {
        proto_rx_count_drop(&d->rx);
        return;
    }
    switch (f->type) {
    case PROTO_MSG_HELLO:
        /* Answer with our version whatever the host speaks; the host refuses
         * an incompatible device. */
        d->handshake_next = 0;
        break;
    case PROTO_MSG_COMMAND:
        on_command(d, f, now_us);
        break;
    case PROTO_MSG_PING:
#ifdef FW_TEST_HANG
        if (get_u32(f->payload) == FW_TEST_HANG_TOKEN) {
            for (;;) { /* test build only: the main loop hangs, the hardware watchdog must act */
            }
        }
#endif
        d->pong_token = get_u32(f->payload);
        d->pong_pending = 1;
        break;
    case PROTO_MSG_ESTOP:
        go_safe(d, PROTO_STATE_ESTOP, device_estop_latched(d) ? PROTO_FAULT_ESTOP_LATCHED : PROTO_FAULT_ESTOP);
        d->status_pending = 1;
        break;
    case PROTO_MSG_ARM:
        if (!device_estop_latched(d)) { /* the host cannot clear the device's own e-stop */
            set_state(d, PROTO_STATE_ARMED, PROTO_FAULT_NONE);
            d->last_cmd_us = now_us;
        }
        d->status_pending = 1;
        break;
    default:
        break;
    }
}

void device_rx_byte(device_t *d, uint8_t byte, uint32_t now_us)
{
    proto_frame_t f;
    if (proto_rx_push(&d->rx, byte, &f)) {
        dispatch(d, &f, now_us);
    }
}

void device_estop_button(device_t *d, uint32_t now_us)
{
    (void)now_us;
    if (device_estop_latched(d)) {
        return;
    }
    go_safe(d, PROTO_STATE_ESTOP, PROTO_FAULT_ESTOP_LATCHED);
    hal_estop_latch(1);
    uint8_t *p = payload();
    p = put_u8(p, 1); /* source: device button */
    send_frame(d, PROTO_MSG_ESTOP, (uint8_t)(p - payload()));
}

void device_local_reset(device_t *d, uint32_t now_us)
{
    (void)now_us;
    if (!device_estop_latched(d)) {
        return;
    }
    hal_estop_latch(0);
    go_safe(d, PROTO_STATE_DISARMED, PROTO_FAULT_NONE);
}

/* Send what is pending while the TX queue has room, strictly in this order:
 * STATUS, PONG, handshake frames. STATUS goes before PONG so that a host which
 * sends ARM/ESTOP followed by PING knows the last STATUS before the PONG
 * reflects the state after its request. */
static void flush_pending(device_t *d, uint32_t now_us)
{
    if (d->status_pending) {
        if (!send_status(d, now_us)) {
            return;
        }
        d->status_pending = 0;
        d->next_status_us = now_us + DEVICE_STATUS_PERIOD_US;
    }
    if (d->pong_pending) {
        if (!send_pong(d)) {
            return;
        }
        d->pong_pending = 0;
    }
#ifdef LN_POLICY
    const int16_t n_frames = (int16_t)(2 + d->schema->n_obs + d->schema->n_act); /* + POLICY */
#else
    const int16_t n_frames = (int16_t)(1 + d->schema->n_obs + d->schema->n_act);
#endif
    while (d->handshake_next >= 0 && d->handshake_next < n_frames) {
        int ok;
        if (d->handshake_next == 0) {
            ok = send_identity(d);
#ifdef LN_POLICY
        } else if (d->handshake_next == n_frames - 1) {
            ok = policy_task_send_info(d);
#endif
        } else {
            ok = send_channel(d, (uint8_t)(d->handshake_next - 1));
        }
        if (!ok) {
            return;
        }
        d->handshake_next++;
        if (d->handshake_next == n_frames) {
            d->status_pending = 1; /* the handshake ends with STATUS: state, latched fault */
        }
    }
    d->handshake_next = -1;
    if (d->status_pending && send_status(d, now_us)) {
        d->status_pending = 0;
        d->next_status_us = now_us + DEVICE_STATUS_PERIOD_US;
    }
}

void device_poll(device_t *d, uint32_t now_us)
{
    const device_schema_t *s = d->schema;
    uint32_t timeout_us = (uint32_t)s->watchdog_timeout_ms * 1000u;
    if (d->state == PROTO_STATE_ARMED && time_diff(now_us, d->last_cmd_us) > (int32_t)timeout_us) {
        go_safe(d, PROTO_STATE_WATCHDOG, PROTO_FAULT_WATCHDOG);
    }
    if (time_diff(now_us, d->next_status_us) >= 0) {
        d->status_pending = 1;
    }
    flush_pending(d, now_us);
    if (time_diff(now_us, d->next_tick_us) >= 0) {
#ifdef LN_POLICY
        policy_task_tick(d, now_us);
#else
        hal_read_sensors(d->obs);
        if (!send_observation(d, now_us)) {
            d->tx_skipped++;
        }
#endif
        d->next_tick_us += s->control_period_us;
        if (time_diff(now_us, d->next_tick_us) >= 0) {
            /* More than a period late: skip the missed ticks, no burst. */
            d->next_tick_us = now_us + s->control_period_us;
        }
    }
}

uint32_t device_next_deadline(const device_t *d)
{
    uint32_t next = d->next_tick_us;
    if (time_diff(d->next_status_us, next) < 0) {
        next = d->next_status_us;
    }
    if (d->state == PROTO_STATE_ARMED) {
        uint32_t wd = d->last_cmd_us + (uint32_t)d->schema->watchdog_timeout_ms * 1000u + 1u;
        if (time_diff(wd, next) < 0) {
            next = wd;
        }
    }
    return next;
}
