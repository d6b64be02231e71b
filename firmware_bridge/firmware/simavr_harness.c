/*
 * simavr_harness.c - run the AVR firmware in the simavr emulator with its
 * USART0 on a pseudo-terminal, so a host speaks to it like to a real board.
 *
 * Usage: simavr_harness [options] firmware.elf
 *   --mcu NAME         emulated MCU (default atmega328p)
 *   --freq HZ          CPU clock (default 16000000)
 *   --no-realtime      run as fast as the host can (no wall-clock pacing)
 *   --adc N=MV         fix ADC channel N (0..7) at MV millivolts
 *   --no-plant         disable the RC plant on ADC0 (see below)
 *   --simavr-uart-pty  bridge the UART with simavr's own uart_pty part
 *                      instead of the built-in single-threaded bridge
 * The first line on stdout is "port: /dev/pts/N"; everything simavr prints
 * afterwards goes to stderr. SIGUSR1 presses the e-stop button (PD2 low for
 * 50 ms emulated time); SIGINT/SIGTERM stop and print a summary on stderr.
 *
 * Time: the emulator is paced against CLOCK_MONOTONIC every 1 ms of emulated
 * time (16000 cycles), so the firmware's timer-based control period and
 * watchdog correspond to wall time. It never runs faster than real time: when
 * the harness was starved of CPU and fell more than MAX_LAG_US behind, the
 * missed wall time is skipped (emulated time pauses, as if the whole board had
 * been frozen) instead of being caught up at high speed, which would compress
 * the device's periods and trip its watchdog while the host is on time. The
 * summary reports the number and total of such slips. device_time_us in the
 * frames is always emulated time.
 *
 * Built-in bridge: pty master <-> UART0 IRQs, all in the emulator's thread
 * (bytes from the host are fed at each 1 ms sync point while the UART's
 * input FIFO has room - XON/XOFF IRQs; bytes from the firmware are written to
 * the pty at each frame delimiter or sync point). simavr's uart_pty part does
 * the same from a second thread that raises UART IRQs without locking against
 * the emulator thread; it is kept as an option for comparison.
 *
 * Plant: ADC0 (pin A0) sees PD6's PWM through an RC low-pass, tau = 50 ms:
 * V(A0) -> 5 V * OCR0A / 255. ADC1 defaults to 3300 mV. AVcc = AREF = 5 V.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "avr_adc.h"
#include "avr_ioport.h"
#include "avr_uart.h"
#include "sim_avr.h"
#include "sim_elf.h"
#include "sim_irq.h"
#include "uart_pty.h"

#define SYNC_US 1000u            /* pacing and bridge period, emulated microseconds */
#define OCR0A_DATA_ADDR 0x47u    /* ATmega328P OCR0A in data space (I/O 0x27 + 0x20) */
#define RC_TAU_S 0.05            /* plant time constant, seconds */
#define ESTOP_PRESS_US 50000u    /* e-stop button press length, emulated microseconds */
#define OUT_CAP 4096u
#define MAX_LAG_US 5000u         /* behind by more than this: skip, do not catch up */

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t estop_requested;

/* Built-in UART bridge. */
typedef struct {
    int master;
    int slave;
    int xon;                  /* 1 while the UART input FIFO has room */
    uint8_t in[4096];         /* bytes read from the pty, not yet fed */
    size_t in_len, in_pos;
    uint8_t out[OUT_CAP];     /* bytes from the firmware, not yet written */
    size_t out_len;
    avr_irq_t *uart_in;       /* UART_IRQ_INPUT */
    uint64_t bytes_to_avr, bytes_from_avr, out_dropped;
} bridge_t;

static bridge_t g_bridge;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void on_estop(int sig)
{
    (void)sig;
    estop_requested = 1;
}

static uint64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void bridge_flush_out(bridge_t *b)
{
    while (b->out_len > 0) {
        ssize_t n = write(b->master, b->out, b->out_len);
        if (n <= 0) {
            if (b->out_len >= OUT_CAP) { /* nobody reads: drop the oldest */
                b->out_dropped += b->out_len;
                b->out_len = 0;
            }
            return;
        }
        memmove(b->out, b->out + n, b->out_len - (size_t)n);
        b->out_len -= (size_t)n;
    }
}

static void on_uart_output(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    bridge_t *b = (bridge_t *)param;
    if (b->out_len >= OUT_CAP) {
        bridge_flush_out(b);
    }
    if (b->out_len < OUT_CAP) {
        b->out[b->out_len++] = (uint8_t)value;
        b->bytes_from_avr++;
    } else {
        b->out_dropped++;
    }
    if (value == 0) {
        bridge_flush_out(b); /* end of frame: hand it over now */
    }
}

static void on_uart_xon(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)value;
    ((bridge_t *)param)->xon = 1;
}

static void on_uart_xoff(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    ((bridge_t *)param)->xon = value ? 0 : 1;
}

static void bridge_feed_in(bridge_t *b)
{
    if (b->in_pos == b->in_len) {
        ssize_t n = read(b->master, b->in, sizeof(b->in));
        if (n <= 0) {
            return;
        }
        b->in_len = (size_t)n;
        b->in_pos = 0;
    }
    while (b->xon && b->in_pos < b->in_len) {
        avr_raise_irq(b->uart_in, b->in[b->in_pos++]);
        b->bytes_to_avr++;
    }
}

static int bridge_init(bridge_t *b, avr_t *avr, char *name, size_t name_cap)
{
    struct termios raw;
    memset(&raw, 0, sizeof(raw));
    cfmakeraw(&raw);
    char path[128];
    if (openpty(&b->master, &b->slave, path, &raw, NULL) < 0) {
        fprintf(stderr, "simavr_harness: openpty failed: %s\n", strerror(errno));
        return -1;
    }
    snprintf(name, name_cap, "%s", path);
    fcntl(b->master, F_SETFL, fcntl(b->master, F_GETFL) | O_NONBLOCK);
    b->xon = 1;
    b->uart_in = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), on_uart_output, b);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON), on_uart_xon, b);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF), on_uart_xoff, b);
    return 0;
}

/* The emulator's own sleep callback would usleep(); pacing is done below. */
static void no_sleep(avr_t *avr, avr_cycle_count_t how_long)
{
    (void)avr;
    (void)how_long;
}

static void usage(void)
{
    fprintf(stderr, "usage: simavr_harness [--mcu NAME] [--freq HZ] [--no-realtime] [--adc N=MV]... "
                    "[--no-plant] [--simavr-uart-pty] firmware.elf\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *mcu = "atmega328p";
    uint32_t freq = 16000000u;
    int realtime = 1, plant = 1, use_uart_pty = 0;
    int adc_mv[8] = {-1, 3300, -1, -1, -1, -1, -1, -1};
    const char *elf = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mcu") == 0 && i + 1 < argc) {
            mcu = argv[++i];
        } else if (strcmp(argv[i], "--freq") == 0 && i + 1 < argc) {
            freq = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--no-realtime") == 0) {
            realtime = 0;
        } else if (strcmp(argv[i], "--no-plant") == 0) {
            plant = 0;
        } else if (strcmp(argv[i], "--simavr-uart-pty") == 0) {
            use_uart_pty = 1;
        } else if (strcmp(argv[i], "--adc") == 0 && i + 1 < argc) {
            int ch, mv;
            if (sscanf(argv[++i], "%d=%d", &ch, &mv) != 2 || ch < 0 || ch > 7 || mv < 0 || mv > 5000) {
                fprintf(stderr, "simavr_harness: --adc needs N=MV with N in 0..7, MV in 0..5000, got %s\n", argv[i]);
                return 2;
            }
            adc_mv[ch] = mv;
            if (ch == 0) {
                plant = 0;
            }
        } else if (argv[i][0] == '-' || elf) {
            usage();
        } else {
            elf = argv[i];
        }
    }
    if (!elf || freq == 0) {
        usage();
    }

    /* stdout carries only the port line; simavr's chatter goes to stderr. */
    int port_fd = dup(STDOUT_FILENO);
    dup2(STDERR_FILENO, STDOUT_FILENO);
    setvbuf(stdout, NULL, _IOLBF, 0);

    elf_firmware_t fw;
    memset(&fw, 0, sizeof(fw));
    if (elf_read_firmware(elf, &fw) != 0) {
        fprintf(stderr, "simavr_harness: cannot read firmware %s\n", elf);
        return 1;
    }
    if (!fw.frequency) {
        fw.frequency = freq;
    }
    if (!fw.mmcu[0]) {
        snprintf(fw.mmcu, sizeof(fw.mmcu), "%s", mcu);
    }
    avr_t *avr = avr_make_mcu_by_name(fw.mmcu);
    if (!avr) {
        fprintf(stderr, "simavr_harness: unknown MCU %s\n", fw.mmcu);
        return 1;
    }
    avr_init(avr);
    avr_load_firmware(avr, &fw);
    avr->vcc = avr->avcc = avr->aref = 5000; /* millivolts */
    if (realtime) {
        avr->sleep = no_sleep;
    }
    uint32_t flags = 0;
    avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
    flags &= ~(uint32_t)(AVR_UART_FLAG_STDIO | AVR_UART_FLAG_POLL_SLEEP);
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);

    char port[128];
    static uart_pty_t uart_pty;
    if (use_uart_pty) {
        uart_pty_init(avr, &uart_pty);
        uart_pty_connect(&uart_pty, '0');
        snprintf(port, sizeof(port), "%s", uart_pty.pty.slavename);
    } else if (bridge_init(&g_bridge, avr, port, sizeof(port)) < 0) {
        return 1;
    }
    dprintf(port_fd, "port: %s\n", port);
    close(port_fd);

    signal(SIGINT, on_stop);
    signal(SIGTERM, on_stop);
    signal(SIGUSR1, on_estop);
    signal(SIGPIPE, SIG_IGN);

    avr_irq_t *adc_irq[8];
    for (int ch = 0; ch < 8; ch++) {
        adc_irq[ch] = avr_io_getirq(avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC0 + ch);
        if (adc_mv[ch] >= 0) {
            avr_raise_irq(adc_irq[ch], (uint32_t)adc_mv[ch]);
        }
    }
    avr_irq_t *estop_pin = avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('D'), 2);
    avr_raise_irq(estop_pin, 1); /* button released: pulled up */
    avr_cycle_count_t estop_release = 0;

    const avr_cycle_count_t sync_cycles = (avr_cycle_count_t)freq / (1000000u / SYNC_US);
    avr_cycle_count_t next_sync = sync_cycles;
    double rc_volts = 0.0;
    const uint64_t t_start = mono_ns();
    uint64_t t0 = t_start; /* wall time that corresponds to emulated time 0 */
    int64_t worst_lag_ns = 0, slipped_ns = 0;
    unsigned long slips = 0;
    int state = cpu_Running;

    while (!stop_requested) {
        state = avr_run(avr);
        if (state == cpu_Done || state == cpu_Crashed) {
            break;
        }
        if (avr->pc == 0 && !estop_release) {
            /* the MCU restarted (hardware watchdog): simavr cleared the pin
             * registers, so drive the released button's level again */
            avr_raise_irq(estop_pin, 0);
            avr_raise_irq(estop_pin, 1);
        }
        if (avr->cycle < next_sync) {
            continue;
        }
        next_sync = avr->cycle + sync_cycles;
        uint64_t emu_ns = (uint64_t)((double)avr->cycle * 1e9 / (double)freq);
        if (!use_uart_pty) {
            bridge_feed_in(&g_bridge);
            bridge_flush_out(&g_bridge);
        }
        if (plant) {
            static uint64_t last_ns;
            double dt = (double)(emu_ns - last_ns) * 1e-9;
            last_ns = emu_ns;
            double target = 5.0 * avr->data[OCR0A_DATA_ADDR] / 255.0;
            rc_volts += (target - rc_volts) * (1.0 - exp(-dt / RC_TAU_S));
            avr_raise_irq(adc_irq[0], (uint32_t)(rc_volts * 1000.0 + 0.5));
        }
        if (estop_requested) {
            estop_requested = 0;
            avr_raise_irq(estop_pin, 0);
            estop_release = avr->cycle + (avr_cycle_count_t)freq / 1000000u * ESTOP_PRESS_US;
        } else if (estop_release && avr->cycle >= estop_release) {
            avr_raise_irq(estop_pin, 1);
            estop_release = 0;
        }
        if (realtime) {
            int64_t ahead_ns = (int64_t)emu_ns - (int64_t)(mono_ns() - t0);
            if (ahead_ns > 0) {
                struct timespec ts = {ahead_ns / 1000000000, ahead_ns % 1000000000};
                nanosleep(&ts, NULL);
            } else if (-ahead_ns > (int64_t)MAX_LAG_US * 1000) {
                t0 += (uint64_t)(-ahead_ns); /* skip the missed wall time */
                slipped_ns += -ahead_ns;
                slips++;
            }
            if (-ahead_ns > worst_lag_ns) {
                worst_lag_ns = -ahead_ns;
            }
        }
    }
    double wall_s = (double)(mono_ns() - t_start) * 1e-9;
    double emu_s = (double)avr->cycle / (double)freq;
    fprintf(stderr,
            "simavr_harness: %s after %.3f s emulated, %.3f s wall (%.2fx real time), worst lag %.1f ms, "
            "%lu slips skipping %.1f ms, bytes to/from AVR %llu/%llu, output dropped %llu\n",
            state == cpu_Crashed ? "CRASHED" : (state == cpu_Done ? "done" : "stopped"), emu_s, wall_s,
            wall_s > 0 ? emu_s / wall_s : 0.0, (double)worst_lag_ns * 1e-6, slips, (double)slipped_ns * 1e-6,
            (unsigned long long)g_bridge.bytes_to_avr,
            (unsigned long long)g_bridge.bytes_from_avr, (unsigned long long)g_bridge.out_dropped);
    if (use_uart_pty) {
        /* Not uart_pty_stop(): it signals its thread once and joins, which hangs when
         * the signal lands outside select(); process exit ends the thread. */
        char target[128] = {0};
        if (readlink("/tmp/simavr-uart0", target, sizeof(target) - 1) > 0 && strcmp(target, port) == 0) {
            unlink("/tmp/simavr-uart0"); /* the symlink uart_pty_connect() made */
        }
    }
    avr_terminate(avr);
    return state == cpu_Crashed ? 1 : 0;
}
