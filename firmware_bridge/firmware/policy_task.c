/* policy_task.c - on-device inference (policy_task.h). */
#include "policy_task.h"

#include <string.h>

#include <board.h>

#include "hal.h"
#include "policy.h"
#include "policy_frames.h"

#ifdef __AVR__
#include <avr/io.h>
#include <util/atomic.h>
#endif

#ifndef POLICY_PRECISION
#error "POLICY_PRECISION must be POLICY_PREC_F32, POLICY_PREC_Q15 or POLICY_PREC_Q7 (the Makefile reads it from policy.h)"
#endif
#ifndef POLICY_NAME
#define POLICY_NAME "policy"
#endif
#ifndef HIL
#define HIL 0
#endif
#ifndef STANDALONE
#define STANDALONE 0
#endif
#ifndef POLICY_CLOCK_HZ
#ifdef F_CPU
#define POLICY_CLOCK_HZ ((uint32_t)F_CPU)
#else
#define POLICY_CLOCK_HZ 1000000UL /* host build: cycles are microseconds */
#endif
#endif
#ifdef LN_CM4
uint32_t hal_cm4_cycles(void); /* hal_cm4.c: instructions under QEMU -icount shift=0 */
#endif

/* The cell's time input, seconds: the control period, correctly rounded to float. */
#define POLICY_DT_S ((float)((double)CONTROL_PERIOD_US / 1e6))

/* An export specialised for one control period (its time gate folded for it) steps at that
 * period only. */
#if defined(POLICY_FIXED_DT_US) && (POLICY_FIXED_DT_US != CONTROL_PERIOD_US)
#error "the policy was exported for another control period (POLICY_FIXED_DT_US != CONTROL_PERIOD_US)"
#endif

/* The policy and the board must agree (a mismatch stops the build here). */
PROTO_STATIC_ASSERT(POLICY_OBS_DIM == BOARD_N_OBS, policy_observations_equal_the_boards);
PROTO_STATIC_ASSERT(POLICY_ACT_DIM == BOARD_N_ACT, policy_actions_equal_the_boards);
PROTO_STATIC_ASSERT(13u + 4u * BOARD_N_OBS + 8u * BOARD_N_ACT <= PROTO_MAX_PAYLOAD, telemetry_fits);

static policy_state g_policy;
static float g_action[POLICY_ACT_DIM];   /* the policy's last output, env units */
#if HIL
static float g_sensors[POLICY_OBS_DIM];  /* the last SENSORS values */
static uint16_t g_sensor_seq;
static uint8_t g_fresh;                   /* 1: SENSORS arrived since the last step */
#endif

void policy_task_init(device_t *d, uint32_t now_us)
{
    policy_reset(&g_policy);
    for (uint8_t i = 0; i < POLICY_ACT_DIM; i++) {
        g_action[i] = d->action[i];
    }
#if STANDALONE
    if (d->state == PROTO_STATE_DISARMED && d->fault == PROTO_FAULT_NONE) {
        d->state = PROTO_STATE_ARMED;
        d->last_cmd_us = now_us;
    }
#else
    (void)now_us;
#endif
}

int policy_task_on_frame(device_t *d, const proto_frame_t *f, uint32_t now_us)
{
    switch (f->type) {
    case PROTO_MSG_COMMAND:
        proto_rx_count_drop(&d->rx); /* the policy drives the actuators */
        return 1;
    case PROTO_MSG_ARM:
        if (!device_estop_latched(d)) {
            policy_reset(&g_policy);
        }
        return 0;
    case PROTO_MSG_PING:
        if (d->state == PROTO_STATE_ARMED) {
            d->last_cmd_us = now_us;
        }
        return 0;
    case PROTO_MSG_DISARM:
        if (f->len != 0) {
            proto_rx_count_drop(&d->rx);
        } else if (!device_estop_latched(d)) {
            device_go_safe(d, PROTO_STATE_DISARMED, PROTO_FAULT_NONE);
            d->status_pending = 1;
        } else {
            d->status_pending = 1;
        }
        return 1;
    case PROTO_MSG_SENSORS: {
#if HIL
        float v[POLICY_OBS_DIM];
        int rc = policy_get_sensors(f->payload, f->len, POLICY_OBS_DIM, v);
        if (rc != 0) {
            proto_rx_count_drop(&d->rx);
            if (rc == -2 && d->fault == PROTO_FAULT_NONE) {
                d->fault = PROTO_FAULT_BAD_COMMAND;
                d->status_pending = 1;
            }
            return 1;
        }
        memcpy(g_sensors, v, sizeof(g_sensors));
        g_sensor_seq = f->seq;
        g_fresh = 1;
        if (d->state == PROTO_STATE_ARMED) {
            d->last_cmd_us = now_us;
        }
#else
        proto_rx_count_drop(&d->rx); /* this build reads the board's sensors */
#endif
        return 1;
    }
    default:
        return 0;
    }
}

int policy_task_send_info(device_t *d)
{
    uint8_t len = policy_put_info(device_tx_payload(), POLICY_PRECISION, HIL ? POLICY_SENSORS_HOST : POLICY_SENSORS_BOARD,
                                  POLICY_STATE_DIM, POLICY_CLOCK_HZ, POLICY_NAME);
    return device_send_frame(d, PROTO_MSG_POLICY, len);
}

/* CPU cycles between two samples of (hal_time_us, Timer1 count). On the AVR,
 * Timer1 runs at clk/8 (hal_avr.c): 8-cycle resolution below 32.7 ms, where the
 * 16-bit count cannot wrap twice; longer steps count microseconds. */
#ifdef __AVR__
static uint16_t timer1(void)
{
    uint16_t t;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        t = TCNT1;
    }
    return t;
}
#endif

static void step(device_t *d, uint32_t *cycles)
{
#ifdef LN_CM4
    uint32_t c0 = hal_cm4_cycles();
    policy_step(&g_policy, d->obs, POLICY_DT_S, g_action);
    *cycles = hal_cm4_cycles() - c0;
    return;
#endif
    uint32_t us0 = hal_time_us();
#ifdef __AVR__
    uint16_t t0 = timer1();
#endif
    policy_step(&g_policy, d->obs, POLICY_DT_S, g_action);
#ifdef __AVR__
    uint16_t t1 = timer1();
#endif
    uint32_t us = hal_time_us() - us0;
#ifdef __AVR__
    if (us < 30000u) {
        *cycles = (uint32_t)(uint16_t)(t1 - t0) * 8u;
        return;
    }
#endif
    *cycles = us * (POLICY_CLOCK_HZ / 1000000UL);
}

void policy_task_tick(device_t *d, uint32_t now_us)
{
#if HIL
    if (!g_fresh) {
        return; /* no new sensor values since the last step */
    }
    g_fresh = 0;
    memcpy(d->obs, g_sensors, sizeof(g_sensors));
    uint16_t seq = g_sensor_seq;
#else
    hal_read_sensors(d->obs);
    uint16_t seq = 0;
#endif
#if STANDALONE
    d->last_cmd_us = now_us; /* no host: the link watchdog is not used */
#endif
    uint32_t cycles = 0;
    if (d->state == PROTO_STATE_ARMED) {
        step(d, &cycles);
        device_apply_action(d, g_action);
    } else {
        for (uint8_t i = 0; i < POLICY_ACT_DIM; i++) {
            g_action[i] = d->action[i];
        }
    }
    float h[POLICY_STATE_DIM];
    policy_state_read(&g_policy, h);
    policy_telemetry_t t = {now_us, seq, d->state, cycles, policy_state_digest(h, POLICY_STATE_DIM),
                            d->obs, g_action, d->action};
    uint8_t len = policy_put_telemetry(device_tx_payload(), &t, POLICY_OBS_DIM, POLICY_ACT_DIM);
    if (!device_send_frame(d, PROTO_MSG_TELEMETRY, len)) {
        d->tx_skipped++;
    }
}
