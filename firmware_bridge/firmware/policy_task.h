/*
 * policy_task.h - on-device inference: the firmware steps an exported policy
 * (liquidnode export --target c, prefix "policy") at its own control period.
 * Built in by `make avr POLICY_DIR=<export folder>` (defines LN_POLICY).
 *
 * Each control tick the device reads its observation - the board's sensors,
 * or with HIL=1 the last SENSORS frame from the host (hardware in the loop:
 * a tick without a new SENSORS frame since the previous step does nothing) -
 * steps the policy while ARMED (dt = the control period), applies the action
 * through device_apply_action() (non-finite check, clamp to the channel
 * limits; any other state keeps the safe action) and sends one TELEMETRY
 * frame (policy_frames.h) instead of the OBSERVATION frame.
 * ARM resets the hidden state to zeros (an armed run starts a new episode).
 * COMMAND frames are dropped (counted): the policy drives the actuators. A
 * valid SENSORS frame or PING feeds the link watchdog. STANDALONE=1 builds arm
 * at power-on (unless the e-stop latch or a hardware-watchdog restart is
 * reported) and feed the link watchdog themselves: no host is needed; a host
 * can still DISARM, ESTOP and ARM them.
 */
#ifndef LIQUIDNODE_POLICY_TASK_H
#define LIQUIDNODE_POLICY_TASK_H

#include <stdint.h>

#include "device.h"
#include "protocol.h"

/* After device_init(): zero the hidden state; STANDALONE builds arm. */
void policy_task_init(device_t *d, uint32_t now_us);

/* Frames a policy build treats differently (SENSORS, DISARM, COMMAND, ARM,
 * PING); returns 1 when the frame was consumed, 0 to let device.c handle it. */
int policy_task_on_frame(device_t *d, const proto_frame_t *f, uint32_t now_us);

/* Queue the handshake's POLICY frame; 1 if queued (0: no TX room yet). */
int policy_task_send_info(device_t *d);

/* One control tick: read, step, apply, send TELEMETRY. */
void policy_task_tick(device_t *d, uint32_t now_us);

#endif /* LIQUIDNODE_POLICY_TASK_H */
