"""The policy on the microcontroller: cycles, time, flash and RAM of an exported policy stepped
on an emulated MCU in a hardware-in-the-loop episode.

:func:`measure` builds the HIL firmware around an export (``make avr|cm4 POLICY_DIR=...
HIL=1``), runs one episode of the policy's env (MuJoCo on this machine, the policy on the
emulated MCU: ``avr`` an ATmega328P in simavr, ``cm4`` a Cortex-M4F on QEMU's mps2-an386)
and returns: return, ticks, cycles per step (p50, max; AVR: Timer1 cycles of the step inside
the running firmware, cm4: instructions under ``-icount``, shown at one per cycle; on
silicon multi-cycle instructions make it more), µs at the target clock (16 MHz; 168 MHz for
cm4), flash and static RAM of the whole firmware (protocol, board and policy), whether
every device action and state digest equals the host build of the same export bit for bit,
and max |Δaction| against the float runtime (``Policy.step`` fed the device's observations
from the same reset, dt = the control period).

:func:`run` is the ``device`` section of ``liquidnode bench``: full mode one 1,000-tick
episode per row, ``--quick`` 25-tick runs of the target rows (the cycles per step do not
depend on the episode's length; the return and |Δaction| of a short run say less).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from liquidnode.benchmarks.harness import Check, Section, unavailable

KEY = "device"
TITLE = "The policy on the microcontroller (HIL on simavr / QEMU)"

#: Host tools each target needs (the simavr runner is built with cc from libsimavr).
TOOLS = {
    "avr": ("avr-gcc", "avr-size", "make", "cc"),
    "cm4": ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm", "make"),
}
#: Step-time targets: (target, policy stem, precisions, µs at the target's clock).
TARGETS = (
    ("avr", "InvertedPendulum-v5-ncp", ("q15", "q7"), 4000.0),
    ("avr", "InvertedPendulum-v5-cfc", ("q15", "q7"), 4000.0),
    ("cm4", "InvertedPendulum-v5-ncp", ("f32",), 100.0),
    ("cm4", "InvertedPendulum-v5-cfc", ("f32",), 100.0),
    ("cm4", "InvertedDoublePendulum-v5-cfc", ("f32",), 100.0),
)


@dataclass(frozen=True)
class Row:
    """One measurement: a shipped policy (file stem), its export precision, the target."""

    stem: str
    precision: str
    target: str


FULL = [
    Row("InvertedPendulum-v5-ncp", "q15", "avr"),
    Row("InvertedPendulum-v5-ncp", "q7", "avr"),
    Row("InvertedPendulum-v5-cfc", "q15", "avr"),
    Row("InvertedPendulum-v5-cfc", "q7", "avr"),
    Row("InvertedPendulum-v5-ltc", "q15", "avr"),
    Row("InvertedPendulum-v5-ltc", "q7", "avr"),
    Row("InvertedPendulum-v5-ncp", "f32", "cm4"),
    Row("InvertedPendulum-v5-ncp", "q15", "cm4"),
    Row("InvertedPendulum-v5-cfc", "f32", "cm4"),
    Row("InvertedPendulum-v5-cfc", "q15", "cm4"),
    Row("InvertedPendulum-v5-ltc", "f32", "cm4"),
    Row("InvertedPendulum-v5-ltc", "q15", "cm4"),
    Row("InvertedDoublePendulum-v5-cfc", "f32", "cm4"),
]
QUICK = [
    r
    for r in FULL
    if any(r.target == t and r.stem == s and r.precision in ps for t, s, ps, _ in TARGETS)
]
TINY = [Row("InvertedPendulum-v5-ncp", "q7", "avr"), Row("InvertedPendulum-v5-ncp", "f32", "cm4")]


def missing_tools(target: str) -> list[str]:
    """The host tools ``target`` needs that are not on PATH (simavr: its headers too)."""
    missing = [t for t in TOOLS[target] if shutil.which(t) is None]
    if target == "avr" and not Path("/usr/include/simavr/sim_avr.h").exists():
        missing.append("libsimavr-dev")
    return missing


def measure(
    policy_path: str | Path,
    precision: str,
    target: str,
    ticks: int | None = None,
    seed: int = 0,
    opt: str = "-Os",
) -> dict[str, Any]:
    """One HIL episode of ``policy_path`` exported in ``precision`` on ``target``.

    Args:
        policy_path: a policy file (.safetensors).
        precision: ``f32``, ``q15`` or ``q7``.
        target: ``avr`` or ``cm4``.
        ticks: episode length (None: the env's own, 1,000 for the pendulums).
        seed: the episode's seed.
        opt: avr-gcc optimisation of the policy's file (AVR only; the rest is ``-Os``).

    Returns:
        The row's figures (see the module docstring), JSON-able.
    """
    from liquidnode.controller.export.host_build import CompiledPolicy
    from liquidnode.controller.loop import ControlLoop, LoopConfig
    from liquidnode.controller.policy import Policy
    from liquidnode.firmware_bridge.handshake import handshake
    from liquidnode.firmware_bridge.hil import DevicePolicy, HilPlant, check_hil_device
    from liquidnode.firmware_bridge.link import SerialLink
    from liquidnode.firmware_bridge.onboard_build import build_policy_firmware
    from liquidnode.firmware_bridge.qemu_board import QemuBoard
    from liquidnode.firmware_bridge.simavr_board import SimavrBoard
    from liquidnode.sim import make_plant

    policy = Policy.load(policy_path)
    env = policy.metadata.env_id or "InvertedPendulum-v5"
    with tempfile.TemporaryDirectory() as tmp:
        fw = build_policy_firmware(
            policy_path, tmp, precision=precision, hil=True, target=target, policy_opt=opt
        )
        shadow = CompiledPolicy(
            fw.export_dir, "policy", policy.obs_dim, policy.act_dim, policy.state_dim
        )
        emulator = SimavrBoard(fw.elf) if target == "avr" else QemuBoard(fw.elf)
        with emulator as board:
            link = SerialLink(board.port)
            link.open()
            try:
                info = handshake(link, 5.0)
                check_hil_device(info, board.port)
                dev = DevicePolicy(link, info, shadow=shadow)
                loop = ControlLoop(
                    HilPlant(make_plant(env, max_ticks=ticks), dev),
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
        "target": target,
        "policy_opt": opt if target == "avr" else "-O2",
        "return": ep.return_,
        "ticks": ep.ticks,
        "terminated": ep.terminated,
        "cycles_p50": stats["cycles_per_step"]["p50"],
        "cycles_max": stats["cycles_per_step"]["max"],
        "step_us_p50": stats["step_us_at_clock"],
        "clock_hz": stats["clock_hz"],
        "flash_bytes": fw.flash_bytes,
        "ram_bytes": fw.ram_bytes,
        "bit_exact_vs_host_build": dev.action_mismatches == 0 and dev.digest_mismatches == 0,
        "max_abs_daction_vs_runtime": dact,
        "stale_telemetry": dev.stale,
        "faults": summary.faults,
        "device_status": stats["last_status"],
        "achieved_rate_hz": summary.to_json()["rate_hz"],
    }


_TARGET_NAMES = {"avr": "ATmega328P 16 MHz", "cm4": "Cortex-M4F 168 MHz"}
COLUMNS = [
    "policy",
    "precision",
    "target",
    "return (ticks)",
    "cycles/step p50 (max)",
    "µs at clock",
    "flash B",
    "static RAM B",
    "= host build",
    "max |Δaction| vs runtime",
]


def table_row(r: dict[str, Any]) -> list[Any]:
    """A result of :func:`measure` as a row of :data:`COLUMNS`."""
    return [
        r["policy"].removesuffix(".safetensors"),
        r["precision"],
        _TARGET_NAMES[r["target"]],
        f"{r['return']:g} ({r['ticks']})",
        f"{r['cycles_p50']:.0f} ({r['cycles_max']})",
        f"{r['step_us_p50']:.1f}",
        r["flash_bytes"],
        r["ram_bytes"],
        "yes" if r["bit_exact_vs_host_build"] else "NO",
        f"{r['max_abs_daction_vs_runtime']:.2g}",
    ]


def _checks(results: list[dict[str, Any]]) -> list[Check]:
    checks = []
    for target, stem, precisions, limit in TARGETS:
        for prec in precisions:
            got = [
                r
                for r in results
                if r["target"] == target
                and r["precision"] == prec
                and r["policy"] == stem + ".safetensors"
            ]
            name = f"{stem} {prec} on {_TARGET_NAMES[target]}: <= {limit:g} µs per step"
            if got:
                us = got[0]["step_us_p50"]
                checks.append(Check(name, f"{us:.1f} µs", us <= limit))
    exact = all(r["bit_exact_vs_host_build"] for r in results)
    checks.append(
        Check(
            "every device step equals the host build of the export", "yes" if exact else "no", exact
        )
    )
    return checks


def run(quick: bool = False, tiny: bool = False) -> Section:
    """The ``device`` bench section (see the module docstring)."""
    from liquidnode.policies import POLICY_DIR

    rows = TINY if tiny else QUICK if quick else FULL
    ticks = 3 if tiny else 25 if quick else None
    lacking = {t: missing_tools(t) for t in TOOLS}
    if all(lacking.values()):
        reason = "; ".join(f"{t}: {', '.join(m)} not found" for t, m in lacking.items())
        return unavailable(KEY, TITLE, f"{reason} (scripts/install-system-deps.sh)")
    sec = Section(KEY, TITLE, columns=list(COLUMNS))
    results = []
    for row in rows:
        if lacking[row.target]:
            continue
        r = measure(POLICY_DIR / f"{row.stem}.safetensors", row.precision, row.target, ticks)
        results.append(r)
        sec.rows.append(table_row(r))
    sec.checks = _checks(results)
    sec.data["rows"] = results
    for target, miss in lacking.items():
        if miss:
            sec.notes.append(f"{target} rows skipped: {', '.join(miss)} not found")
    sec.notes.append(
        "one HIL episode per row (seed 0"
        + (f", {ticks} ticks" if ticks else ", the env's 1,000 ticks")
        + "); AVR cycles from Timer1 around the step in the running firmware (avr-gcc -Os), "
        "cm4 instructions under QEMU -icount (arm-none-eabi-gcc -O2 -mfpu=fpv4-sp-d16 "
        "-mfloat-abi=hard), shown at one per cycle (on silicon more: a VLDM of n words takes "
        "1 + n cycles, VMLA 3, VDIV 14)"
    )
    return sec
