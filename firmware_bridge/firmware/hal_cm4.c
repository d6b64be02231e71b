/*
 * hal_cm4.c - HAL for a Cortex-M4F on QEMU's mps2-an386 machine (ARM MPS2 board,
 * AN386 Cortex-M4 image, 25 MHz system clock), for on-device inference and
 * hardware in the loop without hardware: `make cm4 POLICY_DIR=DIR HIL=1`, run
 * with `qemu-system-arm -M mps2-an386 -icount shift=0,sleep=on -serial pty`.
 *
 * Peripherals:
 *   UART0    CMSDK APB UART at 0x40004000, read and written polled (QEMU's
 *            model has no baud-rate delay; the host pty buffers); its RX
 *            interrupt (IRQ 0) only wakes the CPU from WFI.
 *   SysTick  core timer at the 25 MHz system clock, 1 ms reload with an
 *            interrupt: the 64-bit tick count behind the microsecond clock and
 *            the step's cycle count, and the wake-up of hal_idle()'s WFI
 *            (QEMU's icount sleep=on lets virtual time follow real time only
 *            while the CPU sleeps). Under -icount
 *            shift=0 QEMU advances virtual time 1 ns per instruction, so one
 *            SysTick tick is 40 instructions: the step's "cycles" are
 *            instructions (1 per cycle is the M4's best case; loads, branches
 *            and divides take more on silicon).
 *   board    none: the actuators are remembered (hal_write_actuators), the
 *            sensors read 0 (a HIL build reads the host's SENSORS instead); no
 *            e-stop input, no hardware watchdog.
 */
#include <stdint.h>

#include <board.h>

#include "fw_main.h"
#include "hal.h"

#define SYSCLK_HZ 25000000UL /* mps2-an386 */

#define REG(addr) (*(volatile uint32_t *)(addr))
#define UART0_DATA REG(0x40004000UL)
#define UART0_STATE REG(0x40004004UL) /* bit 0 TX full, bit 1 RX full */
#define UART0_CTRL REG(0x40004008UL)  /* bit 0 TX enable, bit 1 RX enable */
#define UART0_BAUDDIV REG(0x40004010UL)
#define SYST_CSR REG(0xE000E010UL)
#define SYST_RVR REG(0xE000E014UL)
#define SYST_CVR REG(0xE000E018UL)
#define UART0_INTSTATUS REG(0x4000400CUL) /* write 1 to clear: bit 0 TX, bit 1 RX */
#define NVIC_ISER0 REG(0xE000E100UL)
#define SCB_CPACR REG(0xE000ED88UL)

#define SYSTICK_RELOAD (SYSCLK_HZ / 1000UL - 1UL) /* 1 ms */

static volatile uint32_t systick_wraps;
static float actuators[BOARD_N_ACT];

static const device_schema_t schema = {
    BOARD_DEVICE_ID, BOARD_N_OBS, BOARD_N_ACT, board_obs, board_act, CONTROL_PERIOD_US, WATCHDOG_MS,
};

void SysTick_Handler(void)
{
    systick_wraps++;
}

void UART0RX_Handler(void)
{
    UART0_INTSTATUS = 2u; /* the byte stays in DATA for hal_uart_read_byte() */
}

/* Ticks of the 25 MHz system clock since start (SysTick counts down). */
static uint64_t ticks(void)
{
    uint32_t hi, lo;
    do {
        hi = systick_wraps;
        lo = SYSTICK_RELOAD - SYST_CVR;
    } while (hi != systick_wraps); /* the SysTick interrupt ran meanwhile: read again */
    return (uint64_t)hi * (SYSTICK_RELOAD + 1u) + lo;
}

uint32_t hal_time_us(void)
{
    return (uint32_t)(ticks() / (SYSCLK_HZ / 1000000UL));
}

uint32_t hal_cm4_cycles(void)
{
    return (uint32_t)ticks() * 40u; /* instructions under -icount shift=0 */
}

int hal_uart_read_byte(uint8_t *byte)
{
    if (!(UART0_STATE & 2u)) {
        return 0;
    }
    *byte = (uint8_t)UART0_DATA;
    return 1;
}

uint16_t hal_uart_tx_free(void)
{
    return 512u; /* polled: every write completes */
}

uint16_t hal_uart_write(const uint8_t *data, uint16_t len)
{
    for (uint16_t i = 0; i < len; i++) {
        while (UART0_STATE & 1u) {
        }
        UART0_DATA = data[i];
    }
    return len;
}

void hal_read_sensors(float *obs)
{
    for (uint8_t i = 0; i < BOARD_N_OBS; i++) {
        obs[i] = 0.0f;
    }
}

void hal_write_actuators(const float *act)
{
    for (uint8_t i = 0; i < BOARD_N_ACT; i++) {
        actuators[i] = act[i];
    }
}

void hal_idle(uint32_t deadline_us)
{
    int32_t left_us = (int32_t)(deadline_us - hal_time_us());
    __asm__ volatile("cpsid i"); /* a pending interrupt still ends WFI */
    if (!(UART0_STATE & 2u) && left_us > 1000) {
        __asm__ volatile("wfi"); /* woken by SysTick (1 ms) or a received byte */
    }
    __asm__ volatile("cpsie i");
}

int hal_estop_button(void)
{
    return 0;
}

int hal_local_reset_button(void)
{
    return 0;
}

void hal_estop_latch(uint8_t latched)
{
    (void)latched;
}

uint8_t hal_boot_fault(void)
{
    return PROTO_FAULT_NONE;
}

void hal_watchdog_feed(void)
{
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
    SCB_CPACR |= (0xFu << 20); /* CP10, CP11: the FPU */
    __asm__ volatile("dsb\n\tisb");
    UART0_BAUDDIV = 16u;
    UART0_CTRL = 3u | (1u << 3); /* TX, RX enable, RX interrupt */
    NVIC_ISER0 = 1u;             /* IRQ 0: UART0 RX */
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* processor clock, interrupt, enable */
    fw_run();
    for (;;) {
    }
}
