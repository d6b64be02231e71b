/* cm4_startup.c - vector table and reset handler of the Cortex-M4 build
 * (hal_cm4.c, cm4.ld): copy .data from flash, zero .bss, call main. */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void SysTick_Handler(void);
void UART0RX_Handler(void);
void Reset_Handler(void);

static void Default_Handler(void)
{
    for (;;) {
    }
}

/* 16 core exceptions, then the mps2-an386 interrupts: IRQ 0 is UART0 RX. */
__attribute__((section(".isr_vector"), used)) static void (*const vectors[17])(void) = {
    (void (*)(void))(uintptr_t)&_estack, Reset_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler, 0,
    Default_Handler, SysTick_Handler, UART0RX_Handler,
};

void Reset_Handler(void)
{
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0;
    }
    main();
    for (;;) {
    }
}
