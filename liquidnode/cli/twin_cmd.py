"""``liquidnode twin``: a virtual robot on a pseudo-terminal.

Creates a pty, prints ``port: /dev/pts/N`` as the first line on stdout, and serves the wire
protocol (firmware_bridge/PROTOCOL.md) exactly as a device would, with a MuJoCo plant behind
it stepping at its control period on its own clock, its own watchdog and safe action. Runs
until Ctrl-C / SIGTERM or ``--duration``. Connect with ``liquidnode deploy --port /dev/pts/N``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``twin``."""
    p = subparsers.add_parser(
        "twin",
        help="virtual robot: a MuJoCo plant served over a pty with the serial protocol",
        description=(
            "Create a pseudo-terminal and serve liquidnode's serial protocol on it as a device "
            "would (handshake, observations every control period, commands, watchdog, e-stop), "
            "with a MuJoCo simulation behind it. The first line on stdout is "
            "'port: /dev/pts/N'; pass that path to 'liquidnode deploy --port'. When the "
            "simulated episode ends (e.g. the pendulum falls) the twin disarms and reports "
            "STATUS fault 4 (plant terminated); each ARM starts a fresh episode."
        ),
    )
    p.add_argument(
        "--env",
        required=True,
        metavar="ID",
        help="Gymnasium MuJoCo id (e.g. InvertedPendulum-v5) or an MJCF .xml file",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        metavar="HZ",
        help="control rate in Hz (default: the model's own, 25 Hz for InvertedPendulum-v5); "
        "its period must be a whole multiple of the physics step",
    )
    p.add_argument(
        "--watchdog-ms",
        type=int,
        default=None,
        metavar="MS",
        help="device watchdog: ms without a valid command (while armed) before the safe action "
        "is applied (default: 3 control periods, at least 100 ms)",
    )
    p.add_argument(
        "--link",
        default=None,
        metavar="PATH",
        help="also create a symlink PATH -> /dev/pts/N (a stable port name across restarts, "
        "for 'deploy --reconnect')",
    )
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the first episode (then +1 per episode)"
    )
    p.set_defaults(run=run)
    return p


def _symlink(target: str, link: str) -> None:
    tmp = f"{link}.{os.getpid()}.tmp"
    os.symlink(target, tmp)
    os.replace(tmp, link)


def run(args: argparse.Namespace) -> int:
    """Serve the twin until interrupted; returns 0."""
    from liquidnode.controller.errors import LiquidNodeError
    from liquidnode.firmware_bridge.twin import VirtualRobot, make_twin_plant

    if args.watchdog_ms is not None and not 1 <= args.watchdog_ms <= 65535:
        raise LiquidNodeError(f"--watchdog-ms must be within 1..65535, got {args.watchdog_ms}")
    plant = make_twin_plant(args.env, rate_hz=args.rate)
    robot = VirtualRobot(plant, watchdog_ms=args.watchdog_ms, seed=args.seed)
    port = robot.open()
    if args.link:
        _symlink(port, args.link)
    print(f"port: {port}", flush=True)
    cfg = robot.config
    print(
        f"twin: {cfg.device_id} on {port}: {1 / cfg.spec.control_period_s:g} Hz, "
        f"{cfg.spec.obs_dim} observations, {cfg.spec.act_dim} actions, "
        f"watchdog {cfg.watchdog_timeout_ms} ms",
        file=sys.stderr,
        flush=True,
    )
    previous = signal.signal(signal.SIGTERM, lambda *_: robot.stop())
    try:
        robot.serve(duration_s=args.duration)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        robot.close()
        if args.link:
            with contextlib.suppress(OSError):
                if os.readlink(args.link) == port:
                    os.remove(args.link)
        with contextlib.suppress(Exception):
            plant.disconnect()
    print(
        f"twin: {robot.ticks} ticks, {robot.episodes} episodes, {robot.overruns} overruns, "
        f"received crc_errors {robot.deframer.stats.crc_errors}, dropped "
        f"{robot.deframer.stats.dropped_total}",
        file=sys.stderr,
    )
    return 0
