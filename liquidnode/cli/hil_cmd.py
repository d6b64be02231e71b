"""``liquidnode hil``: hardware in the loop, the plant simulated here, the policy on the device.

The device (firmware built with ``make avr POLICY_DIR=DIR HIL=1``, see
firmware_bridge/firmware/README.md) runs the exported policy; each tick this command writes
the MuJoCo simulation's sensor values to it (SENSORS), the device steps the policy at its own
control period and answers with the action it applied (TELEMETRY: also the cycles the step
took and a digest of the hidden state), which this command applies to the simulation.
``--simavr`` builds that firmware from ``--policy`` and runs it on an emulated ATmega328P
(simavr, cycle-exact) instead of ``--port``. With ``--policy`` the same export is built for
this machine and every device step is checked against it (action bits, state digest).

The run goes through the same loop, summary and MCAP log as ``liquidnode sim`` (``logs`` and
``replay`` read it); ``--json`` prints sim's keys plus ``device``: target, precision,
cycles_per_step {p50, max}, step_us_at_clock (p50), clock_hz, flash_bytes, ram_bytes and the
checks. However it exits, the device is left DISARMED on its safe action.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from liquidnode.cli.arguments import (
    Subparsers,
    add_json_argument,
    add_seed_argument,
    positive_float,
    positive_int,
)
from liquidnode.controller.errors import LiquidNodeError

PRECISIONS = ("f32", "q15", "q7")


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Register ``hil``."""
    p = subparsers.add_parser(
        "hil",
        help="hardware in the loop: MuJoCo here, the policy on the device (or simavr)",
        description=(
            "Simulate the plant (MuJoCo) on this machine and run the policy on the device: each "
            "tick the simulated sensor values go to the device, which steps its exported policy "
            "at its own control period and returns the action it applied, with the cycles the "
            "step took. --simavr builds the firmware from --policy and runs it on an emulated "
            "ATmega328P. Logged and summarised like 'liquidnode sim'."
        ),
    )
    p.add_argument(
        "--env", required=True, metavar="ID", help="Gymnasium MuJoCo id, e.g. InvertedPendulum-v5"
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--port", metavar="DEV", help="serial port of a HIL device (or pyserial URL)"
    )
    where.add_argument(
        "--simavr",
        action="store_true",
        help="build the HIL firmware from --policy and run it in simavr (emulated ATmega328P)",
    )
    where.add_argument(
        "--qemu",
        action="store_true",
        help="build the HIL firmware from --policy for a Cortex-M4F and run it in "
        "qemu-system-arm (mps2-an386, -icount: cycles are instructions, µs at 168 MHz)",
    )
    p.add_argument(
        "--policy",
        metavar="PATH",
        default=None,
        help="policy file: what --simavr/--qemu build; with --port, the device's steps are "
        "checked against its export (default: the shipped policies/<env>-ncp.safetensors "
        "with --simavr/--qemu, none with --port)",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="the export's arithmetic for --simavr/--qemu; with --port the device's must be "
        "this one (default: q15 on the AVR, f32 on the Cortex-M4F, the device's with --port)",
    )
    p.add_argument(
        "--board", metavar="FILE", default=None, help="board file for --simavr (default: the env's)"
    )
    p.add_argument(
        "--elf",
        metavar="PATH",
        default=None,
        help="the device's image, for its flash/RAM figures (--port)",
    )
    p.add_argument("--baud", type=int, default=115200, metavar="B", help="baud rate")
    p.add_argument(
        "--duration", type=positive_float, default=None, metavar="S",
        help="run for S seconds across episodes (default: --episodes)",
    )  # fmt: skip
    p.add_argument(
        "--episodes",
        type=positive_int,
        default=None,
        metavar="N",
        help="episodes (default: 1, or as many as fit in --duration)",
    )
    p.add_argument(
        "--max-ticks", type=positive_int, default=None, metavar="N",
        help="ticks per episode at most (default: the env's limit)",
    )  # fmt: skip
    p.add_argument(
        "--handshake-timeout", type=positive_float, default=2.0, metavar="S",
        help="how long to wait for the device's handshake, s",
    )  # fmt: skip
    add_seed_argument(p, "episode 0's reset; episode i uses S+i")
    add_json_argument(p, "the run summary")
    from liquidnode.controller.logs.options import add_log_arguments

    add_log_arguments(p)
    p.set_defaults(run=run)
    return p


def avr_sizes(elf: str | Path) -> tuple[int, int]:
    """(flash, static RAM) bytes of an AVR image (avr-size -A: .text + .data, .data + .bss +
    .noinit).

    Raises:
        LiquidNodeError: avr-size missing or the file unreadable.
    """
    if not shutil.which("avr-size"):
        raise LiquidNodeError("avr-size not found (binutils-avr; scripts/install-system-deps.sh)")
    proc = subprocess.run(["avr-size", "-A", str(elf)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LiquidNodeError(f"avr-size {elf}: {proc.stderr.strip()}")
    sec = {m[0]: int(m[1]) for m in re.findall(r"^(\.\w+)\s+(\d+)", proc.stdout, re.M)}
    return sec.get(".text", 0) + sec.get(".data", 0), sum(
        sec.get(s, 0) for s in (".data", ".bss", ".noinit")
    )


def run(args: argparse.Namespace) -> int:
    """Run ``hil``; returns an exit code of :mod:`liquidnode.controller.shutdown` (0 ok, 3 link
    fault, 4 log incomplete, 128+N after signal N)."""
    policy_path = args.policy
    emulated = args.simavr or args.qemu
    if emulated and policy_path is None:
        from liquidnode.policies import POLICY_DIR

        policy_path = str(POLICY_DIR / f"{args.env}-ncp.safetensors")
        if not Path(policy_path).exists():
            raise LiquidNodeError(f"no shipped NCP policy for {args.env}: pass --policy PATH")
    if args.board and not emulated:
        raise LiquidNodeError(
            "--board selects what --simavr/--qemu build; a --port device has its own"
        )
    with tempfile.TemporaryDirectory(prefix="liquidnode-hil-") as tmp:
        if args.simavr:
            from liquidnode.firmware_bridge.onboard_build import build_policy_firmware
            from liquidnode.firmware_bridge.simavr_board import SimavrBoard

            fw = build_policy_firmware(
                policy_path, Path(tmp) / "fw", precision=args.precision or "q15",
                board_path=args.board, hil=True,
            )  # fmt: skip
            with SimavrBoard(fw.elf) as board:
                built = {"target": "atmega328p (simavr)", "flash_bytes": fw.flash_bytes,
                         "ram_bytes": fw.ram_bytes}  # fmt: skip
                return _run(args, board.port, policy_path, fw.export_dir, built, tmp)
        if args.qemu:
            from liquidnode.firmware_bridge.onboard_build import build_policy_firmware
            from liquidnode.firmware_bridge.qemu_board import QemuBoard

            fw = build_policy_firmware(
                policy_path, Path(tmp) / "fw", precision=args.precision or "f32",
                board_path=args.board, hil=True, target="cm4",
            )  # fmt: skip
            with QemuBoard(fw.elf) as qboard:
                built = {"target": "cortex-m4f (qemu mps2-an386, instructions)",
                         "flash_bytes": fw.flash_bytes, "ram_bytes": fw.ram_bytes}  # fmt: skip
                return _run(args, qboard.port, policy_path, fw.export_dir, built, tmp)
        stats: dict[str, Any] = {}
        if args.elf:
            stats["flash_bytes"], stats["ram_bytes"] = avr_sizes(args.elf)
        return _run(args, args.port, policy_path, None, stats, tmp)


def _shadow(policy_path: str, export_dir: Path | None, precision: str, tmp: str) -> Any:
    """The export of ``policy_path`` built for this machine (the device's precision)."""
    from liquidnode.controller.export import export_policy
    from liquidnode.controller.export.host_build import CompiledPolicy
    from liquidnode.controller.policy import Policy

    policy = Policy.load(policy_path)
    if export_dir is None:
        export_dir = Path(tmp) / "check"
        export_policy(policy, export_dir, "c", precision, prefix="policy")
    return CompiledPolicy(
        export_dir, "policy", policy.obs_dim, policy.act_dim, policy.state_dim, policy.metadata
    )


def _run(
    args: argparse.Namespace,
    port: str,
    policy_path: str | None,
    export_dir: Path | None,
    stats: dict[str, Any],
    tmp: str,
) -> int:
    from liquidnode.controller.errors import LinkError
    from liquidnode.controller.logs.options import open_recorder
    from liquidnode.controller.loop import ControlLoop, LoopConfig
    from liquidnode.controller.shutdown import EXIT_RUN_FAULT, run_exit_code
    from liquidnode.firmware_bridge.handshake import handshake
    from liquidnode.firmware_bridge.hil import DevicePolicy, HilPlant, check_hil_device
    from liquidnode.firmware_bridge.link import SerialLink
    from liquidnode.firmware_bridge.protocol import Precision
    from liquidnode.sim import make_plant

    link = SerialLink(port, baud=args.baud)
    link.open()
    summary = loop = None
    error: LinkError | None = None
    device: DevicePolicy | None = None
    try:
        info = handshake(link, args.handshake_timeout)
        check_hil_device(info, port)
        assert info.policy is not None
        precision = Precision(info.policy.precision).name.lower()
        if args.precision and args.precision != precision:
            raise LiquidNodeError(f"the device on {port!r} runs {precision}, not {args.precision}")
        shadow = _shadow(policy_path, export_dir, precision, tmp) if policy_path else None
        device = DevicePolicy(link, info, shadow=shadow)
        simulation = make_plant(args.env, max_ticks=args.max_ticks)
        spec = simulation.spec
        if (spec.obs_dim, spec.act_dim) != (device.obs_dim, device.act_dim):
            raise LiquidNodeError(
                f"{args.env} has {spec.obs_dim} observations and {spec.act_dim} actions, the "
                f"device on {port!r} {device.obs_dim} and {device.act_dim}"
            )
        if abs(spec.control_period_s - device.dt_s) > 1e-9:
            print(
                f"liquidnode hil: warning: {args.env} steps {spec.control_period_s:g} s per "
                f"tick, the device's control period is {device.dt_s:g} s",
                file=sys.stderr,
            )
        plant = HilPlant(simulation, device, **stats)
        config = LoopConfig(realtime=False, max_ticks=args.max_ticks, run_duration_s=args.duration)
        log_meta = {
            "env": args.env,
            "port": port,
            "policy_path": policy_path,
            "seed": args.seed,
            "device": {
                "id": info.identity.device_id,
                "policy": info.policy.name,
                "precision": precision,
                "clock_hz": info.policy.clock_hz,
            },
        }
        # the log is created when the run begins, inside its shutdown path (see sim_cmd)
        loop = ControlLoop(
            plant,
            device,
            config,
            policy_path=policy_path,
            open_recorder=lambda: open_recorder(args, "hil", log_meta),
        )
        if not args.json:
            print(
                f"hil: {args.env} here, policy {info.policy.name!r} ({precision}) on "
                f"{info.identity.device_id!r} at {port}, {1 / device.dt_s:g} Hz",
                file=sys.stderr,
            )
        episodes = args.episodes or (None if args.duration is not None else 1)
        try:
            summary = loop.run(episodes=episodes, seed=args.seed)
        except LinkError as exc:
            error, summary = exc, loop.summary
        finally:
            plant.disconnect()
    finally:
        if device is not None:
            device.disarm()
        link.close()
    if summary is not None:
        if args.json:
            out = summary.to_json()
            log = getattr(loop.recorder, "path", None) if loop is not None else None
            out.update(
                env=args.env, policy=policy_path, seed=args.seed, port=port,
                log=None if log is None else str(log),
                device=out.get("plant", {}).get("device"),
                error=None if error is None else str(error),
            )  # fmt: skip
            print(json.dumps(out))
        else:
            print(summary.format_text())
    if error is not None:
        print(f"liquidnode hil: error: {error}", file=sys.stderr)
        return EXIT_RUN_FAULT
    assert loop is not None
    return run_exit_code(loop.stopped_by, summary.log_errors if summary else None)
