/* board_io_avr.c - the demo board's AVR wiring (board.h, board_io.h):
 * ADC0/ADC1 with the AVcc reference, Timer0 phase-correct PWM on OC0A (PD6)
 * and OC0B (PD5) read back from their compare registers, e-stop button on PD2
 * to ground (internal pull-up), no clear button. */
#include <avr/io.h>

#include "board.h"
#include "board_io.h"

static uint16_t adc_read(uint8_t channel)
{
    ADMUX = (uint8_t)((1u << REFS0) | (channel & 0x0Fu));
    ADCSRA |= (1u << ADSC);
    while (ADCSRA & (1u << ADSC)) {
    }
    return ADC;
}

void board_io_init(const float *safe_action)
{
    board_io_write(safe_action); /* compare values first: the pins start at the safe action */
    DDRD |= (1u << PD6) | (1u << PD5);
    TCCR0A = (1u << COM0A1) | (1u << COM0B1) | (1u << WGM00); /* phase-correct PWM */
    TCCR0B = (1u << CS01) | (1u << CS00);                     /* clk/64 */

    ADMUX = (1u << REFS0);                                                 /* AVcc */
    ADCSRA = (1u << ADEN) | (1u << ADPS2) | (1u << ADPS1) | (1u << ADPS0); /* clk/128 */

    DDRD &= (uint8_t)~(1u << PD2);
    PORTD |= (1u << PD2); /* pull-up for the e-stop button */
}

void board_io_read(float *obs)
{
    obs[0] = (float)adc_read(0) * (BOARD_ADC_VREF / 1024.0f);
    obs[1] = (float)adc_read(1) * (BOARD_ADC_VREF / 1024.0f);
    obs[2] = board_pwm_d6_readback(OCR0A);
    obs[3] = board_motor_d5_readback(OCR0B);
}

void board_io_write(const float *act)
{
    OCR0A = board_pwm_d6_register(act[0]);
    OCR0B = board_motor_d5_register(act[1]);
}

int board_io_estop(void)
{
    return (PIND & (1u << PD2)) == 0;
}

int board_io_clear(void)
{
    return 0; /* no clear button: power-cycle the board */
}
