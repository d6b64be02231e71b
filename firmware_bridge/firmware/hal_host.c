/*
 * hal_host.c - HAL for a POSIX host: the same firmware as a native program.
 *
 * Usage: fw_host [--pty] [--period-us N] [--watchdog-ms N]
 *   default  speak the protocol on stdin (input) and stdout (output), raw bytes
 *   --pty    create a pseudo-terminal, print "port: /dev/pts/N" as the first
 *            line on stdout, and speak the protocol on it
 * SIGINT/SIGTERM exit cleanly; SIGUSR1 presses the e-stop button once;
 * SIGUSR2 presses the local clear (e-stop reset) button once.
 *
 * Simulated plant behind the demo board's channels (board.h):
 *   adc_a0 = 5 V * pwm_d6 through an RC low-pass, tau = 50 ms
 *   adc_a1 = 3.3 V (constant reference)
 *   readbacks quantised to the 8-bit compare registers like on the AVR.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "board.h"
#include "fw_main.h"
#include "hal.h"

#define TX_CAP 8192u   /* user-space TX buffer, bytes */
#define RX_CHUNK 512u  /* bytes per read() */
#define RC_TAU_S 0.05f /* adc_a0 low-pass time constant, seconds */

static int in_fd = 0;
static int out_fd = 1;
static int slave_fd = -1; /* kept open in --pty mode so the master never sees EIO */
static uint8_t tx_buf[TX_CAP];
static size_t tx_len;
static uint8_t rx_buf[RX_CHUNK];
static size_t rx_len, rx_pos;
static struct timespec t0;
static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t estop_requests;
static volatile sig_atomic_t clear_requests;

static device_schema_t schema = {
    "host ref-fw 0.1", BOARD_N_OBS, BOARD_N_ACT, board_obs, board_act, CONTROL_PERIOD_US, WATCHDOG_MS,
};

/* Plant state. */
static uint8_t ocr0a, ocr0b = 128;
static float adc0_v;
static uint32_t plant_last_us;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void on_estop(int sig)
{
    (void)sig;
    estop_requests = 1;
}

static void on_clear(int sig)
{
    (void)sig;
    clear_requests = 1;
}

uint32_t hal_time_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    int64_t us = (int64_t)(t.tv_sec - t0.tv_sec) * 1000000 + (t.tv_nsec - t0.tv_nsec) / 1000;
    return (uint32_t)us;
}

static void tx_flush(void)
{
    while (tx_len > 0) {
        ssize_t n = write(out_fd, tx_buf, tx_len);
        if (n <= 0) {
            return; /* EAGAIN (nobody reading) or error: keep for later */
        }
        memmove(tx_buf, tx_buf + n, tx_len - (size_t)n);
        tx_len -= (size_t)n;
    }
}

int hal_uart_read_byte(uint8_t *byte)
{
    if (rx_pos == rx_len) {
        ssize_t n = read(in_fd, rx_buf, sizeof(rx_buf));
        if (n == 0 && slave_fd < 0) {
            stop_requested = 1; /* stdin closed */
        }
        if (n <= 0) {
            return 0;
        }
        rx_len = (size_t)n;
        rx_pos = 0;
    }
    *byte = rx_buf[rx_pos++];
    return 1;
}

uint16_t hal_uart_tx_free(void)
{
    size_t free_bytes = TX_CAP - tx_len;
    return (uint16_t)(free_bytes > 0xFFFFu ? 0xFFFFu : free_bytes);
}

uint16_t hal_uart_write(const uint8_t *data, uint16_t len)
{
    if (len > hal_uart_tx_free()) {
        return 0;
    }
    memcpy(tx_buf + tx_len, data, len);
    tx_len += len;
    tx_flush();
    return len;
}

static void plant_step(void)
{
    uint32_t now = hal_time_us();
    float dt = (float)(uint32_t)(now - plant_last_us) * 1e-6f;
    plant_last_us = now;
    float target = BOARD_ADC_VREF * board_pwm_d6_readback(ocr0a);
    adc0_v += (target - adc0_v) * (1.0f - expf(-dt / RC_TAU_S));
}

void hal_read_sensors(float *obs)
{
    plant_step();
    /* 10-bit ADC quantisation, as on the AVR */
    obs[0] = floorf(adc0_v / BOARD_ADC_VREF * 1024.0f) * (BOARD_ADC_VREF / 1024.0f);
    obs[1] = floorf(3.3f / BOARD_ADC_VREF * 1024.0f) * (BOARD_ADC_VREF / 1024.0f);
    obs[2] = board_pwm_d6_readback(ocr0a);
    obs[3] = board_motor_d5_readback(ocr0b);
}

void hal_write_actuators(const float *act)
{
    plant_step();
    ocr0a = board_pwm_d6_register(act[0]);
    ocr0b = board_motor_d5_register(act[1]);
}

void hal_idle(uint32_t deadline_us)
{
    tx_flush();
    if (rx_pos < rx_len || stop_requested || estop_requests || clear_requests) {
        return;
    }
    int32_t wait_us = (int32_t)(deadline_us - hal_time_us());
    if (wait_us <= 0) {
        return;
    }
    struct pollfd fds[2] = {{in_fd, POLLIN, 0}, {out_fd, POLLOUT, 0}};
    nfds_t n = (tx_len > 0 && out_fd != in_fd) ? 2 : 1;
    if (tx_len > 0 && out_fd == in_fd) {
        fds[0].events |= POLLOUT;
    }
    struct timespec timeout = {wait_us / 1000000, (long)(wait_us % 1000000) * 1000L};
    ppoll(fds, n, &timeout, NULL);
}

int hal_estop_button(void)
{
    if (estop_requests) {
        estop_requests = 0;
        return 1;
    }
    return 0;
}

int hal_local_reset_button(void)
{
    if (clear_requests) {
        clear_requests = 0;
        return 1;
    }
    return 0;
}

void hal_estop_latch(uint8_t latched)
{
    (void)latched; /* a restarted process is a power cycle: nothing survives it */
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
    return !stop_requested;
}

static int open_pty(void)
{
    struct termios raw;
    memset(&raw, 0, sizeof(raw));
    cfmakeraw(&raw);
    int master;
    char name[128];
    if (openpty(&master, &slave_fd, name, &raw, NULL) < 0) {
        fprintf(stderr, "fw_host: openpty failed: %s\n", strerror(errno));
        return -1;
    }
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    in_fd = master;
    out_fd = master;
    printf("port: %s\n", name);
    fflush(stdout);
    return 0;
}

static long parse_long(const char *flag, const char *value, long lo, long hi)
{
    char *end = NULL;
    long v = value ? strtol(value, &end, 10) : 0;
    if (!value || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "fw_host: %s needs an integer in [%ld, %ld], got %s\n", flag, lo, hi, value ? value : "nothing");
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    int use_pty = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pty") == 0) {
            use_pty = 1;
        } else if (strcmp(argv[i], "--period-us") == 0) {
            schema.control_period_us = (uint32_t)parse_long(argv[i], argv[i + 1], 100, 10000000);
            i++;
        } else if (strcmp(argv[i], "--watchdog-ms") == 0) {
            schema.watchdog_timeout_ms = (uint16_t)parse_long(argv[i], argv[i + 1], 1, 65535);
            i++;
        } else {
            fprintf(stderr, "usage: fw_host [--pty] [--period-us N] [--watchdog-ms N]\n");
            return 2;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    signal(SIGINT, on_stop);
    signal(SIGTERM, on_stop);
    signal(SIGUSR1, on_estop);
    signal(SIGUSR2, on_clear);
    signal(SIGPIPE, SIG_IGN);
    if (use_pty) {
        if (open_pty() < 0) {
            return 1;
        }
    } else {
        fcntl(in_fd, F_SETFL, fcntl(in_fd, F_GETFL) | O_NONBLOCK);
        fcntl(out_fd, F_SETFL, fcntl(out_fd, F_GETFL) | O_NONBLOCK);
    }
    fw_run();
    tx_flush();
    return 0;
}
