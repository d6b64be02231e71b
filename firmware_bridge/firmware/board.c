/* board.c - channel table and PWM scaling of the demo board (board.h). */
#include "board.h"

const device_channel_t board_obs[BOARD_N_OBS] = {
    {"adc_a0", "V", 0.0f, BOARD_ADC_VREF, 0.0f},
    {"adc_a1", "V", 0.0f, BOARD_ADC_VREF, 0.0f},
    {"pwm_d6_rb", "duty", 0.0f, 1.0f, 0.0f},
    {"motor_d5_rb", "1", -1.0f, 1.0f, 0.0f},
};

const device_channel_t board_act[BOARD_N_ACT] = {
    {"pwm_d6", "duty", 0.0f, 1.0f, 0.0f},
    {"motor_d5", "1", -1.0f, 1.0f, 0.0f},
};

static uint8_t to_u8(float x)
{
    /* x in [0, 1] (guarded again here: this writes a hardware register). */
    if (!(x > 0.0f)) {
        return 0;
    }
    if (x >= 1.0f) {
        return 255;
    }
    return (uint8_t)(x * 255.0f + 0.5f);
}

uint8_t board_pwm_d6_register(float duty)
{
    return to_u8(duty);
}

uint8_t board_motor_d5_register(float value)
{
    return to_u8((value + 1.0f) * 0.5f);
}

float board_pwm_d6_readback(uint8_t reg)
{
    return (float)reg / 255.0f;
}

float board_motor_d5_readback(uint8_t reg)
{
    return (float)reg / 255.0f * 2.0f - 1.0f;
}
