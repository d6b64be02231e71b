/* fw_main.c - the firmware's main loop, shared by the AVR and host builds:
 * drain received bytes into the protocol, run the device, sleep until the
 * next deadline or input. */
#include "fw_main.h"

#include "hal.h"
#ifdef LN_POLICY
#include "policy_task.h"
#endif

static device_t g_device;

void fw_run(void)
{
    device_init(&g_device, hal_schema(), hal_time_us(), hal_boot_fault());
#ifdef LN_POLICY
    policy_task_init(&g_device, hal_time_us());
#endif
    while (hal_running()) {
        hal_watchdog_feed();
        uint8_t byte;
        while (hal_uart_read_byte(&byte)) {
            device_rx_byte(&g_device, byte, hal_time_us());
        }
        if (hal_estop_button()) {
            device_estop_button(&g_device, hal_time_us());
        } else if (hal_local_reset_button()) {
            device_local_reset(&g_device, hal_time_us());
        }
        device_poll(&g_device, hal_time_us());
        hal_idle(device_next_deadline(&g_device));
    }
}
