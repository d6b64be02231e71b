"""Hardware-in-the-loop figures: each policy and precision on the emulated ATmega328P.

For every ``POLICY:PRECISION`` given (default: the shipped InvertedPendulum NCP and CfC in
q15, q7 and f32), builds the HIL firmware (``make avr POLICY_DIR=... HIL=1``), runs one full
episode of ``InvertedPendulum-v5`` in simavr at real time (MuJoCo here, the policy on the
emulated MCU) and prints one row: return, ticks, cycles per step (p50, max, from Timer1),
µs at 16 MHz, flash and static RAM of the whole firmware, whether every device action equals
the host build of the same export bit for bit, and max |Δaction| against the float runtime
(``Policy.step`` fed the same observations from the same reset, dt = the control period).

Usage: ``python scripts/hil_table.py [POLICY:PRECISION ...] [--ticks N] [--json]``.
Needs avr-gcc, avr-libc, libsimavr-dev, libelf-dev (scripts/install-system-deps.sh). A
1000-tick episode takes about 40-60 s (simavr paced at real time, 25 Hz control).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from liquidnode.controller.export.host_build import CompiledPolicy
from liquidnode.controller.loop import ControlLoop, LoopConfig
from liquidnode.controller.policy import Policy
from liquidnode.firmware_bridge.handshake import handshake
from liquidnode.firmware_bridge.hil import DevicePolicy, HilPlant, check_hil_device
from liquidnode.firmware_bridge.link import SerialLink
from liquidnode.firmware_bridge.onboard_build import build_policy_firmware
from liquidnode.firmware_bridge.simavr_board import SimavrBoard
from liquidnode.policies import POLICY_DIR
from liquidnode.sim import make_plant

DEFAULT = [
    f"{POLICY_DIR / f'InvertedPendulum-v5-{cell}.safetensors'}:{prec}"
    for cell in ("ncp", "cfc")
    for prec in ("q15", "q7", "f32")
]


def measure(policy_path: str, precision: str, ticks: int | None, seed: int) -> dict[str, Any]:
    """One HIL episode of ``policy_path`` exported in ``precision``; the row's figures."""
    policy = Policy.load(policy_path)
    with tempfile.TemporaryDirectory() as tmp:
        fw = build_policy_firmware(policy_path, tmp, precision=precision, hil=True)
        shadow = CompiledPolicy(
            fw.export_dir, "policy", policy.obs_dim, policy.act_dim, policy.state_dim
        )
        with SimavrBoard(fw.elf) as board:
            link = SerialLink(board.port)
            link.open()
            try:
                info = handshake(link, 5.0)
                check_hil_device(info, board.port)
                dev = DevicePolicy(link, info, shadow=shadow)
                loop = ControlLoop(
                    HilPlant(make_plant("InvertedPendulum-v5", max_ticks=ticks), dev),
                    dev,
                    LoopConfig(realtime=False, max_ticks=ticks),
                )
                summary = loop.run(episodes=1, seed=seed)
            finally:
                dev.disarm()
                link.close()
    steps = [t for t in dev.telemetry if t.step_cycles]
    policy.reset()
    dact = 0.0
    for t in steps:
        a = policy.step(np.asarray(t.obs, np.float64), dev.dt_s)
        dact = max(dact, float(np.max(np.abs(a - np.asarray(t.policy_action)))))
    stats = dev.stats(flash_bytes=fw.flash_bytes, ram_bytes=fw.ram_bytes)
    ep = summary.episodes[0]
    return {
        "policy": Path(policy_path).name,
        "precision": precision,
        "return": ep.return_,
        "ticks": ep.ticks,
        "terminated": ep.terminated,
        "cycles_p50": stats["cycles_per_step"]["p50"],
        "cycles_max": stats["cycles_per_step"]["max"],
        "step_us_p50": stats["step_us_at_clock"],
        "flash_bytes": fw.flash_bytes,
        "ram_bytes": fw.ram_bytes,
        "bit_exact_vs_host_build": dev.action_mismatches == 0 and dev.digest_mismatches == 0,
        "max_abs_daction_vs_runtime": dact,
        "stale_telemetry": dev.stale,
        "faults": summary.faults,
        "device_status": stats["last_status"],
        "achieved_rate_hz": summary.to_json()["rate_hz"],
    }


def main() -> int:
    """Command line (see module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="*", default=DEFAULT, metavar="POLICY:PRECISION")
    p.add_argument("--ticks", type=int, default=None, help="ticks (default: the env's 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    args = p.parse_args()
    if not args.json:
        print(
            "policy | precision | return | cycles/step p50 (max) | µs @16 MHz | flash B | "
            "RAM B | = host build | max |Δaction| vs runtime"
        )
    for run in args.runs:
        path, _, precision = run.rpartition(":")
        row = measure(path, precision, args.ticks, args.seed)
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(
                f"{row['policy']} | {precision} | {row['return']:g} | {row['cycles_p50']:.0f} "
                f"({row['cycles_max']}) | {row['step_us_p50']:.0f} | {row['flash_bytes']} | "
                f"{row['ram_bytes']} | {'yes' if row['bit_exact_vs_host_build'] else 'NO'} | "
                f"{row['max_abs_daction_vs_runtime']:.3g}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
