/*
 * hal_avr.c - HAL for the ATmega328P (Arduino Uno class), 16 MHz.
 *
 * Peripherals:
 *   USART0   BAUD (default 115200) 8N1 with U2X: UBRR0 = 16 -> 117647 bit/s
 *            (+2.1 %); RX interrupt into a 64-byte ring, TX from a 256-byte
 *            ring drained by the UDRE interrupt.
 *   Timer1   free running, clk/8 = 2 MHz (0.5 us per count); overflow
 *            interrupt every 32.768 ms extends it to the 32-bit microsecond
 *            clock. Its compare registers are never written: simavr
 *            re-bases a normal-mode timer on every OCR write and the clock
 *            would lose ~2.5 % (a real ATmega would not care).
 *   Timer2   CTC, clk/64/250 = 1 kHz compare interrupt: the wake-up tick of
 *            hal_idle(); the last < 1.1 ms before a deadline is busy-waited,
 *            so periodic work starts within a few microseconds.
 *   board    the board's own pins and peripherals (board_io.h): for the demo
 *            board (board_io_avr.c) Timer0 PWM on OC0A (PD6) and OC0B (PD5),
 *            ADC channels 0 and 1, e-stop button on PD2 to ground.
 *   WDT      hardware watchdog, HW_WATCHDOG_MS (default 120 ms), fed once per
 *            main-loop pass: a hung loop restarts the MCU, which comes up
 *            with the actuators at their safe values and reports fault 6
 *            (or keeps the e-stop latch, fault 5, if it was set: only a power
 *            cycle or the board's clear button clears it).
 * The CPU sleeps (IDLE) whenever there is nothing to do.
 */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/sleep.h>
#include <avr/wdt.h>
#include <util/atomic.h>

/* <board.h>: found through -I$(BOARD_DIR) first, so that a generated board
 * replaces the demo board's header in this directory. */
#include <board.h>

#include "board_io.h"
#include "fw_main.h"
#include "hal.h"

#ifndef F_CPU
#error "F_CPU must be defined (Hz)"
#endif
#ifndef BAUD
#define BAUD 115200UL /* bit/s */
#endif

#ifndef HW_WATCHDOG_MS
#define HW_WATCHDOG_MS 120 /* hardware watchdog period, ms: 15, 30, 60, 120, 250, 500, 1000 or 2000 */
#endif
#if HW_WATCHDOG_MS == 15
#define HW_WDTO WDTO_15MS
#elif HW_WATCHDOG_MS == 30
#define HW_WDTO WDTO_30MS
#elif HW_WATCHDOG_MS == 60
#define HW_WDTO WDTO_60MS
#elif HW_WATCHDOG_MS == 120
#define HW_WDTO WDTO_120MS
#elif HW_WATCHDOG_MS == 250
#define HW_WDTO WDTO_250MS
#elif HW_WATCHDOG_MS == 500
#define HW_WDTO WDTO_500MS
#elif HW_WATCHDOG_MS == 1000
#define HW_WDTO WDTO_1S
#elif HW_WATCHDOG_MS == 2000
#define HW_WDTO WDTO_2S
#else
#error "HW_WATCHDOG_MS must be 15, 30, 60, 120, 250, 500, 1000 or 2000"
#endif

#define UBRR_VALUE ((F_CPU + 4UL * BAUD) / (8UL * BAUD) - 1UL) /* U2X: 8 samples/bit */
#define RX_SIZE 64u                                            /* power of two */
#define TX_SIZE 256u                                           /* u8 indices wrap */

PROTO_STATIC_ASSERT((RX_SIZE & (RX_SIZE - 1u)) == 0u, rx_ring_is_a_power_of_two);
PROTO_STATIC_ASSERT(TX_SIZE - 1u >= PROTO_MAX_ENCODED, tx_ring_takes_the_largest_frame);
PROTO_STATIC_ASSERT(TX_SIZE == 256u, tx_indices_wrap_as_uint8);

static volatile uint8_t rx_buf[RX_SIZE];
static volatile uint8_t rx_head; /* written by the RX ISR */
static volatile uint8_t rx_tail; /* written by the main loop */
static volatile uint8_t tx_buf[TX_SIZE];
static volatile uint8_t tx_head; /* written by the main loop */
static volatile uint8_t tx_tail; /* written by the UDRE ISR */
static volatile uint32_t t1_overflows;

/* Reset cause and e-stop latch. .noinit: the C start-up code leaves them
 * alone, so the latch survives every restart but a power cycle (SRAM is kept
 * on a watchdog or reset-pin restart). It counts only when both words agree. */
#define LATCH_MAGIC 0x5AE7u
static uint8_t reset_flags __attribute__((section(".noinit")));
static uint16_t latch_word __attribute__((section(".noinit")));
static uint16_t latch_check __attribute__((section(".noinit")));

/* Runs before the C start-up code: take the reset cause (MCUSR, or r2 where a
 * bootloader such as Optiboot cleared MCUSR and passed it there) and stop the
 * watchdog, which stays enabled across the reset it caused. */
void early_reset_cause(void) __attribute__((naked, used, section(".init3")));
void early_reset_cause(void)
{
    uint8_t flags = MCUSR;
    if (flags == 0) {
        __asm__ __volatile__("mov %0, r2" : "=r"(flags));
    }
    reset_flags = flags;
    MCUSR = 0;
    wdt_disable();
}

static const device_schema_t schema = {
    BOARD_DEVICE_ID, BOARD_N_OBS, BOARD_N_ACT, board_obs, board_act, CONTROL_PERIOD_US, WATCHDOG_MS,
};

ISR(USART_RX_vect)
{
    (void)UCSR0A; /* status first (framing/overrun flags belong to this byte) */
    uint8_t b = UDR0;
    uint8_t next = (uint8_t)((rx_head + 1u) & (RX_SIZE - 1u));
    if (next != rx_tail) {
        rx_buf[rx_head] = b;
        rx_head = next;
    } /* else: ring full, byte lost; the frame fails its CRC and is counted */
}

ISR(USART_UDRE_vect)
{
    if (tx_tail != tx_head) {
        UDR0 = tx_buf[tx_tail];
        tx_tail = (uint8_t)(tx_tail + 1u);
    } else {
        UCSR0B &= (uint8_t)~(1u << UDRIE0);
    }
}

ISR(TIMER1_OVF_vect)
{
    t1_overflows++;
}

EMPTY_INTERRUPT(TIMER2_COMPA_vect) /* 1 kHz wake-up from IDLE sleep */

static void hal_init(void)
{
    float safe_action[BOARD_N_ACT];
    for (uint8_t i = 0; i < BOARD_N_ACT; i++) {
        safe_action[i] = board_act[i].safe;
    }
    UBRR0H = (uint8_t)(UBRR_VALUE >> 8);
    UBRR0L = (uint8_t)UBRR_VALUE;
    UCSR0A = (1u << U2X0);
    UCSR0C = (1u << UCSZ01) | (1u << UCSZ00); /* 8N1 */
    UCSR0B = (1u << RXEN0) | (1u << TXEN0) | (1u << RXCIE0);

    TCCR1A = 0;
    TCCR1B = (1u << CS11); /* clk/8 */
    TIMSK1 = (1u << TOIE1);

    TCCR2A = (1u << WGM21);              /* CTC, TOP = OCR2A */
    OCR2A = (uint8_t)(F_CPU / 64UL / 1000UL - 1UL); /* 249: 1 kHz */
    TCCR2B = (1u << CS22);               /* clk/64 */
    TIMSK2 = (1u << OCIE2A);

    board_io_init(safe_action); /* the actuators start at their safe values */
    wdt_enable(HW_WDTO);
    sei();
}

uint32_t hal_time_us(void)
{
    uint32_t ovf;
    uint16_t cnt;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        ovf = t1_overflows;
        cnt = TCNT1;
        if ((TIFR1 & (1u << TOV1)) && cnt < 0x8000u) {
            ovf++; /* overflow happened but its ISR has not run yet */
        }
    }
    return ovf * 32768UL + (uint32_t)(cnt >> 1);
}

int hal_uart_read_byte(uint8_t *byte)
{
    if (rx_tail == rx_head) {
        return 0;
    }
    *byte = rx_buf[rx_tail];
    rx_tail = (uint8_t)((rx_tail + 1u) & (RX_SIZE - 1u));
    return 1;
}

uint16_t hal_uart_tx_free(void)
{
    return (uint16_t)(TX_SIZE - 1u - (uint8_t)(tx_head - tx_tail));
}

uint16_t hal_uart_write(const uint8_t *data, uint16_t len)
{
    if (len > hal_uart_tx_free()) {
        return 0;
    }
    for (uint16_t i = 0; i < len; i++) {
        tx_buf[tx_head] = data[i];
        tx_head = (uint8_t)(tx_head + 1u);
    }
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        UCSR0B |= (1u << UDRIE0);
    }
    return len;
}

void hal_read_sensors(float *obs)
{
    board_io_read(obs);
}

void hal_write_actuators(const float *act)
{
    board_io_write(act);
}

void hal_idle(uint32_t deadline_us)
{
    cli();
    if (rx_head != rx_tail) {
        sei();
        return;
    }
    int32_t wait_us = (int32_t)(deadline_us - hal_time_us());
    if (wait_us <= 1100) {
        sei(); /* close to the deadline: let the main loop spin */
        return;
    }
    set_sleep_mode(SLEEP_MODE_IDLE); /* woken by RX, TX, or the 1 kHz tick */
    sleep_enable();
    sei();
    sleep_cpu(); /* the instruction after sei always runs: no lost wake-up */
    sleep_disable();
}

int hal_estop_button(void)
{
    return board_io_estop();
}

int hal_local_reset_button(void)
{
    return board_io_clear();
}

void hal_estop_latch(uint8_t latched)
{
    latch_word = latched ? LATCH_MAGIC : 0u;
    latch_check = (uint16_t)~latch_word;
}

uint8_t hal_boot_fault(void)
{
    /* Only a power cycle forgets the latch: an Uno's host resets the MCU through DTR
     * (the reset pin) whenever it opens the port, so a reset-pin restart must not clear
     * what the host is not allowed to clear. After a real power-on the SRAM words are
     * random and fail the magic check anyway. */
    uint8_t power_on = (reset_flags & ((1u << PORF) | (1u << BORF))) != 0;
    uint8_t latched = latch_word == LATCH_MAGIC && latch_check == (uint16_t)~LATCH_MAGIC;
    if (power_on || !latched) {
        hal_estop_latch(0);
        return reset_flags == (1u << WDRF) ? PROTO_FAULT_WATCHDOG_RESET : PROTO_FAULT_NONE;
    }
    return PROTO_FAULT_ESTOP_LATCHED;
}

void hal_watchdog_feed(void)
{
    wdt_reset();
}

const device_schema_t *hal_schema(void)
{
    return &schema;
}

int hal_running(void)
{
    return 1;
}

int main(void)
{
    hal_init();
    fw_run();
    for (;;) {
    }
}
