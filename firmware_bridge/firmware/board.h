/*
 * board.h - the demo board's channels, shared by the AVR and host builds.
 *
 * Observations (OBSERVATION.values, in this order):
 *   idx  name         unit   low   high  meaning
 *   0    adc_a0       V      0     5     ADC0 (pin A0), AVcc = 5 V reference
 *   1    adc_a1       V      0     5     ADC1 (pin A1)
 *   2    pwm_d6_rb    duty   0     1     duty read back from OCR0A (8 bit)
 *   3    motor_d5_rb  1      -1    1     motor command read back from OCR0B
 * Actions (COMMAND.values, in this order):
 *   idx  name      unit  low  high  safe  drives
 *   0    pwm_d6    duty  0    1     0     OC0A (PD6, Arduino D6), duty = value
 *   1    motor_d5  1     -1   1     0     OC0B (PD5, Arduino D5), duty = (value+1)/2
 *                                         (locked-antiphase drive: 50 % = stop)
 * Both PWM outputs: Timer0 phase-correct, 16 MHz / 64 / 510 = 490 Hz.
 */
#ifndef LIQUIDNODE_BOARD_H
#define LIQUIDNODE_BOARD_H

#include <stdint.h>

#include "device.h"

#define BOARD_N_OBS 4u
#define BOARD_N_ACT 2u
#define BOARD_ADC_VREF 5.0f /* volts, AVcc */
#define BOARD_DEVICE_ID "avr-atmega328p ref-fw 0.1" /* IDENTITY id of the AVR build */

#ifndef CONTROL_PERIOD_US
#define CONTROL_PERIOD_US 10000u /* default OBSERVATION period: 10 ms (100 Hz) */
#endif
#ifndef WATCHDOG_MS
#define WATCHDOG_MS 100u /* default watchdog timeout: 100 ms (10 periods) */
#endif

extern const device_channel_t board_obs[BOARD_N_OBS];
extern const device_channel_t board_act[BOARD_N_ACT];

/* Actions (channel units, clamped) -> 8-bit compare values for OCR0A/OCR0B. */
uint8_t board_pwm_d6_register(float duty);
uint8_t board_motor_d5_register(float value);

/* 8-bit compare values -> readback observations (channel units). */
float board_pwm_d6_readback(uint8_t reg);
float board_motor_d5_readback(uint8_t reg);

#endif /* LIQUIDNODE_BOARD_H */
