"""Cycles of one exported policy step on an emulated ATmega328P (simavr, cycle-exact).

Exports the policy to C (``--precision f32``, ``q15`` or ``q7``), builds it with avr-gcc ``-Os``
into a small program that times ``<prefix>_step`` with Timer1 at the CPU clock (prescaler 1,
overflows counted), runs that program in simavr through a libsimavr runner until it sleeps,
and prints cycles per step (first step and the next ones), the time at 16 MHz, and the
program's flash and static RAM (policy plus a minimal ``main``, no protocol).

Usage: ``python scripts/avr_step_cycles.py POLICY [--precision q15] [--steps 5] [--fixed-dt]
[--json]``.
Needs avr-gcc, avr-size, libsimavr-dev, libelf-dev (scripts/install-system-deps.sh).
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from liquidnode.controller.export import export_policy
from liquidnode.controller.export.host_build import CompiledPolicy
from liquidnode.controller.policy import Policy

F_CPU = 16_000_000

MAIN = r"""
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/sleep.h>
#include "pol.h"

#define STEPS {steps}
volatile uint32_t ln_cycles[STEPS];
volatile float ln_action[POL_ACT_DIM];
static volatile uint16_t ovf;
static pol_state s;
static const float obs[POL_OBS_DIM] = {{ {obs} }};

ISR(TIMER1_OVF_vect) {{ ++ovf; }}

int main(void) {{
    float act[POL_ACT_DIM];
    uint8_t k, i;
    TCCR1A = 0;
    TCCR1B = _BV(CS10);
    TIMSK1 = _BV(TOIE1);
    pol_reset(&s);
    for (k = 0; k < STEPS; ++k) {{
        uint16_t t1, o1;
        cli();
        ovf = 0;
        TCNT1 = 0;
        TIFR1 = _BV(TOV1);
        sei();
        pol_step(&s, obs, {dt}f, act);
        cli();
        t1 = TCNT1;
        o1 = ovf;
        if (TIFR1 & _BV(TOV1)) {{ ++o1; t1 = TCNT1; }}
        ln_cycles[k] = ((uint32_t)o1 << 16) + t1;
        for (i = 0; i < POL_ACT_DIM; ++i) ln_action[i] = act[i];
    }}
    cli();
    sleep_enable();
    sleep_cpu();
    return 0;
}}
"""

RUNNER = r"""
#include <stdio.h>
#include <stdlib.h>
#include "sim_avr.h"
#include "sim_elf.h"

int main(int argc, char **argv) {
    elf_firmware_t fw = {0};
    avr_t *avr;
    unsigned long addr;
    int n, i, state;
    unsigned long act_addr;
    int n_act;
    if (argc != 6 || elf_read_firmware(argv[1], &fw) != 0) return 2;
    avr = avr_make_mcu_by_name("atmega328p");
    if (!avr) return 2;
    avr_init(avr);
    avr->frequency = 16000000;
    avr_load_firmware(avr, &fw);
    addr = strtoul(argv[2], NULL, 0);
    n = atoi(argv[3]);
    act_addr = strtoul(argv[4], NULL, 0);
    n_act = atoi(argv[5]);
    do {
        state = avr_run(avr);
    } while (state != cpu_Done && state != cpu_Crashed);
    for (i = 0; i < n; ++i) {
        const unsigned char *p = avr->data + addr + 4 * i;
        printf("%lu\n", (unsigned long)p[0] | ((unsigned long)p[1] << 8) |
                            ((unsigned long)p[2] << 16) | ((unsigned long)p[3] << 24));
    }
    for (i = 0; i < n_act; ++i) {
        const unsigned char *p = avr->data + act_addr + 4 * i;
        printf("action %02x%02x%02x%02x\n", p[3], p[2], p[1], p[0]);
    }
    return state == cpu_Crashed;
}
"""


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {proc.stderr.strip()[:1500]}")
    return proc.stdout


def measure(
    policy_path: str, precision: str, steps: int, opt: str = "-Os", fixed_dt: bool = False
) -> dict[str, object]:
    """Build, emulate and time ``steps`` steps; returns the figures (see module docstring).
    ``fixed_dt``: the export specialised for the policy's control period (the dt stepped)."""
    policy = Policy.load(policy_path)
    obs = policy.obs_mean + 0.5 * policy.obs_std * np.random.default_rng(0).standard_normal(
        policy.obs_dim
    )
    rate = policy.metadata.control_rate_hz or 25.0
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        export_policy(
            policy, d, "c", precision, prefix="pol", fixed_dt=1.0 / rate if fixed_dt else None
        )
        (d / "main.c").write_text(
            MAIN.format(
                steps=steps, obs=", ".join(f"{v:.6g}f" for v in obs), dt=f"{1.0 / rate:.6g}"
            )
        )
        (d / "runner.c").write_text(RUNNER)
        elf = d / "cycles.elf"
        _run(
            [
                "avr-gcc",
                "-mmcu=atmega328p",
                f"-DF_CPU={F_CPU}UL",
                "-std=c99",
                "-Wall",
                "-Wextra",
                "-Werror",
                opt,
                f"-I{d}",
                "-o",
                str(elf),
                str(d / "main.c"),
                str(d / "pol.c"),
            ]
        )
        runner = d / "runner"
        _run(
            [
                "cc",
                "-O2",
                "-std=gnu99",
                "-I/usr/include/simavr",
                "-o",
                str(runner),
                str(d / "runner.c"),
                "-lsimavr",
                "-lelf",
            ]
        )
        symbols = _run(["avr-nm", str(elf)])
        addr = {
            ln.split()[2]: int(ln.split()[0], 16) & 0xFFFF
            for ln in symbols.splitlines()
            if ln.endswith((" ln_cycles", " ln_action"))
        }
        out = _run(
            [
                str(runner),
                str(elf),
                str(addr["ln_cycles"]),
                str(steps),
                str(addr["ln_action"]),
                str(policy.act_dim),
            ]
        ).splitlines()
        cycles = [int(v) for v in out if v.strip().isdigit()]  # libsimavr logs "Loaded ..."
        action = [
            struct.unpack(">f", bytes.fromhex(v.split()[1]))[0]
            for v in out
            if v.startswith("action ")
        ]
        # the same program on the host: the AVR's integer/float arithmetic must agree
        host = CompiledPolicy(d, "pol", policy.obs_dim, policy.act_dim, policy.state_dim)
        for _ in range(steps):
            host_action = host.step(obs.astype(np.float32), 1.0 / rate)
        sections = {
            ln.split()[0]: int(ln.split()[1])
            for ln in _run(["avr-size", "-A", str(elf)]).splitlines()
            if ln.startswith(".")
        }
    later = cycles[1:] or cycles
    return {
        "policy": policy_path,
        "precision": precision,
        "opt": opt,
        "cycles_per_step": {
            "first": cycles[0],
            "p50": int(np.median(later)),
            "max": int(max(later)),
        },
        "step_us_at_16mhz": round(float(np.median(later)) / F_CPU * 1e6, 1),
        "flash_bytes": sections.get(".text", 0) + sections.get(".data", 0),
        "ram_bytes": sections.get(".data", 0) + sections.get(".bss", 0),
        "action_avr": action,
        "max_abs_action_vs_host": float(np.max(np.abs(np.array(action) - host_action))),
    }


def main() -> int:
    """Command line (see module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("policy")
    p.add_argument("--precision", choices=("f32", "q15", "q7"), default="q15")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--opt", default="-Os", help="avr-gcc optimisation flag (default -Os)")
    p.add_argument(
        "--fixed-dt",
        action="store_true",
        help="specialise the export for the policy's control period (CfC: time gate folded)",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    result = measure(args.policy, args.precision, max(1, args.steps), args.opt, args.fixed_dt)
    if args.json:
        print(json.dumps(result))
    else:
        c = result["cycles_per_step"]
        print(
            f"{result['policy']} {result['precision']}: {c} cycles per step, "  # type: ignore[index]
            f"{result['step_us_at_16mhz']} us at 16 MHz, flash {result['flash_bytes']} B, "
            f"static RAM {result['ram_bytes']} B, |action - host build| "
            f"{result['max_abs_action_vs_host']:.2g}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
