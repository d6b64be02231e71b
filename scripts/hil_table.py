"""Hardware-in-the-loop figures: each policy and precision on an emulated microcontroller.

For every ``POLICY:PRECISION[:TARGET]`` given (default: the shipped InvertedPendulum NCP and
CfC in q15, q7 and f32 on the AVR), builds the HIL firmware (``make avr|cm4 POLICY_DIR=...
HIL=1``), runs one full episode of the policy's env (MuJoCo here, the policy on the emulated
MCU: ``avr`` an ATmega328P in simavr, ``cm4`` a Cortex-M4F on QEMU's mps2-an386) and prints
one row (:func:`liquidnode.benchmarks.device.measure`; ``liquidnode bench --only device``
produces the same table for the shipped policies): return, ticks, cycles per step (p50, max;
AVR: Timer1 cycles, cm4: instructions under ``-icount``), µs at the target clock (16 MHz;
168 MHz for cm4), flash and static RAM of the whole firmware, whether every device action
equals the host build of the same export bit for bit, and max |Δaction| against the float
runtime (``Policy.step`` fed the same observations from the same reset, dt = the control
period).

Usage: ``python scripts/hil_table.py [POLICY:PRECISION[:TARGET] ...] [--ticks N] [--json]``.
Needs avr-gcc, avr-libc, libsimavr-dev, libelf-dev, gcc-arm-none-eabi, qemu-system-arm
(scripts/install-system-deps.sh). A 1000-tick episode takes 40 s or more (the emulators
are paced at real time, 25 Hz control; slower on a busy machine).
"""

from __future__ import annotations

import argparse
import json
import sys

from liquidnode.benchmarks.device import measure
from liquidnode.policies import POLICY_DIR

DEFAULT = [
    f"{POLICY_DIR / f'InvertedPendulum-v5-{cell}.safetensors'}:{prec}"
    for cell in ("ncp", "cfc")
    for prec in ("q15", "q7", "f32")
]


def main() -> int:
    """Command line (see module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="*", default=DEFAULT, metavar="POLICY:PRECISION[:TARGET]")
    p.add_argument("--ticks", type=int, default=None, help="ticks (default: the env's 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--opt", default="-Os", help="avr-gcc flag for the policy's file (AVR)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    args = p.parse_args()
    if not args.json:
        print(
            "policy | precision | target | return | cycles/step p50 (max) | µs at clock | "
            "flash B | RAM B | = host build | max |Δaction| vs runtime"
        )
    for run in args.runs:
        parts = run.split(":")
        target = parts.pop() if parts[-1] in ("avr", "cm4") else "avr"
        path, precision = ":".join(parts[:-1]), parts[-1]
        row = measure(path, precision, target, args.ticks, args.seed, args.opt)
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(
                f"{row['policy']} | {precision} | {target} | {row['return']:g} | "
                f"{row['cycles_p50']:.0f} ({row['cycles_max']}) | {row['step_us_p50']:.1f} | "
                f"{row['flash_bytes']} | "
                f"{row['ram_bytes']} | {'yes' if row['bit_exact_vs_host_build'] else 'NO'} | "
                f"{row['max_abs_daction_vs_runtime']:.3g}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
