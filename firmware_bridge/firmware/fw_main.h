/* fw_main.h - entry point of the portable firmware loop (fw_main.c). */
#ifndef LIQUIDNODE_FW_MAIN_H
#define LIQUIDNODE_FW_MAIN_H

/* Initialise the device from hal_schema() and run until hal_running() is 0.
 * The HAL must be initialised before. */
void fw_run(void);

#endif /* LIQUIDNODE_FW_MAIN_H */
