/*
 * device.h - the device side of wire protocol v1: state machine, watchdog,
 * clamping of commands to channel limits, safe action, counters.
 *
 * States (PROTO_STATE_*): after reset DISARMED with the safe action applied
 * (or ESTOP with fault 5 when the HAL kept the e-stop latch across a reset).
 *   ARM               DISARMED/WATCHDOG/ESTOP/ARMED -> ARMED, fault cleared,
 *                     watchdog restarted, STATUS sent. Refused (STATUS sent,
 *                     nothing changes) while the e-stop latch is set.
 *   ESTOP frame       any -> ESTOP (fault 2), safe action, STATUS sent; a set
 *                     latch keeps fault 5.
 *   e-stop input      any -> ESTOP (fault 5, the latch), safe action, ESTOP
 *                     (source 1) + STATUS sent. Only device_local_reset() with
 *                     the input released, or a power cycle, clears the latch;
 *                     the host cannot.
 *   watchdog          ARMED and no valid COMMAND for watchdog_timeout_ms ->
 *                     WATCHDOG (fault 1), safe action, STATUS sent; stays safe
 *                     until the next ARM.
 *   COMMAND           in ARMED: each value clamped to [low, high], written to
 *                     the actuators, ack_seq = last_cmd_seq = frame seq,
 *                     watchdog fed. In any other state it is ignored.
 *                     A non-finite value drops the whole command (counted in
 *                     dropped_frames, fault 3 latched unless a fault is
 *                     already latched), the previous action is kept.
 * Periodic output: OBSERVATION every control_period_us (in every state),
 * STATUS once per second and on every state or fault change.
 *
 * The device never blocks: frames are queued to the HAL's UART only when the
 * whole frame fits (hal_uart_tx_free()); STATUS, PONG and the handshake frames
 * stay pending until there is room (sent in that order), an OBSERVATION that
 * does not fit is skipped and counted in tx_skipped. There is one PONG slot: a
 * PING arriving while the previous PONG still waits for room replaces it (a
 * host must not PING faster than the link drains).
 */
#ifndef LIQUIDNODE_DEVICE_H
#define LIQUIDNODE_DEVICE_H

#include <stdint.h>

#include "protocol.h"

#define DEVICE_MAX_OBS 16u /* limits of this implementation, not of the protocol */
#define DEVICE_MAX_ACT 8u
#define DEVICE_STATUS_PERIOD_US 1000000u /* unsolicited STATUS, microseconds */
/* Test builds only (-DFW_TEST_HANG): a PING with this token hangs the main loop. */
#define FW_TEST_HANG_TOKEN 0xDEAD0001UL

/* One observation or action channel, as announced in a CHANNEL frame. */
typedef struct {
    const char *name; /* ASCII, <= 32 chars, e.g. "adc_a0" */
    const char *unit; /* ASCII, <= 16 chars, e.g. "V" */
    float low;        /* lower limit, channel units */
    float high;       /* upper limit, channel units */
    float safe;       /* safe value (actions); 0 for observations */
} device_channel_t;

/* What the device is: sent in IDENTITY + CHANNEL frames after HELLO. */
typedef struct {
    const char *device_id;          /* ASCII, <= 32 chars */
    uint8_t n_obs;                  /* observation channels, <= DEVICE_MAX_OBS */
    uint8_t n_act;                  /* action channels, <= DEVICE_MAX_ACT */
    const device_channel_t *obs;    /* n_obs entries */
    const device_channel_t *act;    /* n_act entries */
    uint32_t control_period_us;     /* OBSERVATION period, microseconds */
    uint16_t watchdog_timeout_ms;   /* ARMED without COMMAND for this long -> WATCHDOG */
} device_schema_t;

typedef struct {
    const device_schema_t *schema;
    proto_rx_t rx;                      /* receiver and its drop counters */
    uint8_t state;                      /* PROTO_STATE_* */
    uint8_t fault;                      /* PROTO_FAULT_* (latched) */
    uint16_t tx_seq;                    /* seq of the next frame sent */
    uint16_t ack_seq;                   /* seq of the last COMMAND applied */
    uint16_t last_cmd_seq;              /* seq of the last COMMAND applied (STATUS) */
    uint32_t last_cmd_us;               /* time of the last applied COMMAND (or ARM) */
    uint32_t next_tick_us;              /* next OBSERVATION */
    uint32_t next_status_us;            /* next unsolicited STATUS */
    uint32_t tx_skipped;                /* OBSERVATIONs skipped for lack of TX room */
    int16_t handshake_next;             /* next handshake frame: -1 none, 0 IDENTITY, 1.. CHANNEL */
    uint8_t status_pending;             /* 1 = a STATUS waits for TX room */
    uint8_t pong_pending;               /* 1 = a PONG waits for TX room */
    uint32_t pong_token;                /* token of the pending PONG */
    float action[DEVICE_MAX_ACT];       /* action applied now, channel units */
    float obs[DEVICE_MAX_OBS];          /* last sensor read, channel units */
} device_t;

/* Reset to DISARMED, apply the safe action. now_us: hal_time_us().
 * boot_fault: hal_boot_fault(): PROTO_FAULT_ESTOP_LATCHED starts in ESTOP with
 * the latch set, PROTO_FAULT_WATCHDOG_RESET starts DISARMED reporting it. */
void device_init(device_t *d, const device_schema_t *schema, uint32_t now_us, uint8_t boot_fault);

/* Feed one byte received from the host. */
void device_rx_byte(device_t *d, uint8_t byte, uint32_t now_us);

/* Run the watchdog, the periodic OBSERVATION/STATUS and pending replies. */
void device_poll(device_t *d, uint32_t now_us);

/* Latest time by which device_poll() must run again, microseconds. */
uint32_t device_next_deadline(const device_t *d);

/* Device e-stop input (source 1): safe action, ESTOP with the latch set
 * (fault 5, hal_estop_latch(1)), STATUS + ESTOP sent. */
void device_estop_button(device_t *d, uint32_t now_us);

/* A local reset action (the board's clear input); the caller checks that the
 * e-stop input is released (fw_main.c). Clears the latch, ESTOP -> DISARMED (fault 0), STATUS sent. The
 * host must ARM afterwards. No effect unless the latch is set. */
void device_local_reset(device_t *d, uint32_t now_us);

/* For the on-device policy (policy_task.c): queue the payload written at
 * device_tx_payload() as a frame of this type (1 if queued); apply the safe
 * action and enter a state; apply an action in ARMED (a non-finite value keeps
 * the previous action and latches fault 3; each value clamped to its channel). */
int device_send_frame(device_t *d, uint8_t type, uint8_t len);
uint8_t *device_tx_payload(void);
void device_go_safe(device_t *d, uint8_t state, uint8_t fault);
void device_apply_action(device_t *d, const float *v);

/* 1 while the e-stop latch is set (state ESTOP, fault 5). */
int device_estop_latched(const device_t *d);

#endif /* LIQUIDNODE_DEVICE_H */
