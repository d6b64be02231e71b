/*
 * board_io.h - a board's AVR wiring, called by hal_avr.c. Implemented once per
 * board: board_io_avr.c for the demo board (board.h), or generated from a board
 * file by `liquidnode board build` (firmware_bridge/board_codegen.py).
 */
#ifndef LIQUIDNODE_BOARD_IO_H
#define LIQUIDNODE_BOARD_IO_H

#include <stdint.h>

/* Configure the board's pins and peripherals (PWM timer, ADC, e-stop pull-ups,
 * I2C, encoders). safe_action: the n_act safe values, channel units; the
 * actuator outputs are enabled only after they hold these values. Runs with
 * interrupts disabled. */
void board_io_init(const float *safe_action);

/* Read every observation channel into obs[] (channel units, schema order). */
void board_io_read(float *obs);

/* Drive every action channel from act[] (channel units, already clamped). */
void board_io_write(const float *act);

/* 1 while the board's e-stop input is active (0 on a board without one). */
int board_io_estop(void);

/* 1 while the board's local clear button is pressed (0 on a board without one). */
int board_io_clear(void);

#endif /* LIQUIDNODE_BOARD_IO_H */
