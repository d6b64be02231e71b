/*
 * hal.h - the hardware abstraction the portable core (device.c, fw_main.c)
 * needs. Implemented by hal_avr.c (ATmega328P) and hal_host.c (POSIX).
 * None of these functions blocks (hal_idle() sleeps at most until deadline).
 */
#ifndef LIQUIDNODE_HAL_H
#define LIQUIDNODE_HAL_H

#include <stdint.h>

#include "device.h"

/* Free-running clock in microseconds; wraps at 2^32 (about 71.6 minutes). */
uint32_t hal_time_us(void);

/* Take one received byte into *byte; 1 if there was one, 0 if none. */
int hal_uart_read_byte(uint8_t *byte);

/* Bytes that hal_uart_write() accepts right now. */
uint16_t hal_uart_tx_free(void);

/* Queue len bytes for transmission, all or nothing: returns len, or 0 (and
 * queues nothing) when fewer than len bytes are free. */
uint16_t hal_uart_write(const uint8_t *data, uint16_t len);

/* Read all n_obs sensors into obs[], in channel units (schema order). */
void hal_read_sensors(float *obs);

/* Drive all n_act actuators from act[] (channel units, already clamped). */
void hal_write_actuators(const float *act);

/* Sleep until an interrupt/input arrives or hal_time_us() reaches deadline_us
 * (may return earlier). */
void hal_idle(uint32_t deadline_us);

/* 1 while the e-stop button is pressed (boards without one return 0). */
int hal_estop_button(void);

/* 1 while the board's local clear input (an e-stop reset button) is pressed;
 * boards without one return 0 and clear the latch only by a power cycle. */
int hal_local_reset_button(void);

/* Remember (1) or forget (0) the e-stop latch across restarts (hardware
 * watchdog, reset pin - which a host opening an Uno's port pulses); only a
 * power cycle forgets it. */
void hal_estop_latch(uint8_t latched);

/* Why the MCU started, as the fault the device reports from boot:
 * PROTO_FAULT_ESTOP_LATCHED (the latch survived a watchdog restart),
 * PROTO_FAULT_WATCHDOG_RESET (the hardware watchdog restarted it), or
 * PROTO_FAULT_NONE. */
uint8_t hal_boot_fault(void);

/* Feed the hardware watchdog; fw_run() calls it once per main-loop pass. */
void hal_watchdog_feed(void);

/* The board's schema: channel names, units, limits, period, watchdog. */
const device_schema_t *hal_schema(void);

/* 0 when the firmware should exit (host build on SIGINT/SIGTERM); AVR: 1. */
int hal_running(void);

#endif /* LIQUIDNODE_HAL_H */
