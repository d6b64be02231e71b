"""``liquidnode deploy``: close the control loop over a serial device.

Same loop, safety layer and logging as ``liquidnode sim``; the plant is a
:class:`firmware_bridge.serial_plant.SerialPlant` on the given port (a microcontroller running
the reference firmware, or ``liquidnode twin``). The device streams observations on its own
clock; the policy answers each one with a command.

``--duration D`` runs for D seconds across episodes: when the device ends an episode (the
pendulum of a twin falls) deploy re-arms it, which starts the next one; an episode that ended
in a device fault (watchdog, e-stop) ends the run instead. Without ``--duration`` one episode
runs (``--episodes N`` for more). Returns are not measured: the wire protocol carries no
reward, so they print as ``n/a`` and serialise as null.

On a real port (not a pty or a ``socket://`` URL) deploy waits ``--boot-wait`` (2 s) after
opening it, since an Arduino Uno resets when its port opens and its bootloader runs first,
and refuses a policy whose file says it is untrained unless ``--allow-untrained``. A device
whose own e-stop is latched refuses ARM; deploy then exits with an error that says so (the
host cannot clear it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import TYPE_CHECKING

from liquidnode.cli.arguments import (
    Subparsers,
    add_json_argument,
    add_latency_argument,
    latency_seconds,
    positive_int,
)

if TYPE_CHECKING:
    from liquidnode.controller.policy import Policy
    from liquidnode.firmware_bridge.serial_plant import SerialPlant

#: Why deploy's returns are not measured (printed as ``return n/a (...)``).
NO_REWARD = "reward not sent over serial"


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Register ``deploy``."""
    from liquidnode.cli.arguments import positive_float
    from liquidnode.firmware_bridge.ports import BOOT_WAIT_S

    p = subparsers.add_parser(
        "deploy",
        help="run a policy on a serial device (microcontroller or 'liquidnode twin')",
        description=(
            "Connect to a device speaking liquidnode's serial protocol (see "
            "firmware_bridge/PROTOCOL.md), check that its observation/action channels match the "
            "policy, arm it and run the control loop at the device's rate: each observation the "
            "device streams is answered with the policy's command, through the safety layer "
            "(clamp, NaN guard). On link loss (no observation within the timeout, port gone) "
            "the device's watchdog makes it safe; deploy records the event and exits with an "
            "error, or with --reconnect waits for the port and carries on. However it exits, "
            "the device is left on its safe action."
        ),
    )
    p.add_argument(
        "--port",
        required=True,
        metavar="DEV",
        help="serial port or pyserial URL: /dev/ttyACM0, /dev/pts/N, socket://host:port",
    )
    p.add_argument("--policy", required=True, metavar="PATH", help="policy file (.safetensors)")
    p.add_argument("--baud", type=int, default=115200, metavar="B", help="baud rate")
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="run for S seconds, re-arming the device whenever it ends an episode "
        "(default: until Ctrl-C or the end of the last episode)",
    )
    p.add_argument(
        "--episodes",
        type=positive_int,
        default=None,
        metavar="N",
        help="stop after N episodes (default: 1, or as many as fit in --duration)",
    )
    p.add_argument(
        "--reconnect",
        action="store_true",
        help="on link loss wait for the port to come back and reconnect instead of exiting",
    )
    p.add_argument(
        "--obs-timeout-ms",
        type=float,
        default=None,
        metavar="MS",
        help="link-loss timeout without an observation (default: 5 device periods, >= 250 ms)",
    )
    p.add_argument(
        "--handshake-timeout",
        type=positive_float,
        default=2.0,
        metavar="S",
        help="how long to wait for the device's handshake answer, s",
    )
    p.add_argument(
        "--boot-wait",
        type=float,
        default=None,
        metavar="S",
        help="wait S seconds after opening the port before the handshake: an Arduino Uno "
        "resets when its port opens and its bootloader listens about 1 s (default: "
        f"{BOOT_WAIT_S:g} s for a real port, 0 for a pty or socket:// URL)",
    )
    p.add_argument(
        "--allow-untrained",
        action="store_true",
        help="run a policy whose file says it is untrained (random placeholder weights) on a "
        "real port; without it deploy refuses",
    )
    p.add_argument(
        "--ping-every",
        type=int,
        default=10,
        metavar="N",
        help="measure the link round-trip time with a PING every N ticks (0: never)",
    )
    add_json_argument(p, "the run summary")
    from liquidnode.cli.arguments import add_rt_priority_argument
    from liquidnode.controller.logs.options import add_log_arguments

    add_rt_priority_argument(p)
    add_latency_argument(p, device=True)
    add_log_arguments(p)
    p.set_defaults(run=run)
    return p


#: Seconds a run with ``--duration D`` may take beyond D before the hard time bound stops it
#: (handshake, link-loss detection, shutdown); it ends with exit code 3.
HARD_BOUND_GRACE_S = 5.0


def run(args: argparse.Namespace) -> int:
    """Deploy; returns an exit code of :mod:`liquidnode.controller.shutdown`: 0, 3 after a
    link loss that was not restored or the hard time bound, 4 if the log is incomplete, 128+N
    after signal N (the device is left safe and the summary printed in every case)."""
    import time

    from liquidnode.controller.errors import LiquidNodeError
    from liquidnode.controller.policy import Policy
    from liquidnode.controller.shutdown import hard_time_bound
    from liquidnode.firmware_bridge.serial_plant import SerialPlant

    if args.duration is not None and not args.duration > 0:
        raise LiquidNodeError(f"--duration must be > 0 seconds, got {args.duration}")
    from liquidnode.firmware_bridge.ports import BOOT_WAIT_S, is_virtual_port

    if args.boot_wait is not None and not args.boot_wait >= 0:
        raise LiquidNodeError(f"--boot-wait must be >= 0 seconds, got {args.boot_wait}")
    policy = Policy.load(args.policy)
    virtual = is_virtual_port(args.port)
    if not policy.is_trained:
        if not (virtual or args.allow_untrained):
            raise LiquidNodeError(
                f"policy {args.policy} is UNTRAINED (random placeholder weights); refusing to "
                f"drive the real port {args.port} with it: train one with 'liquidnode train', "
                "or pass --allow-untrained"
            )
        print(
            f"liquidnode deploy: warning: policy {args.policy} is UNTRAINED (random "
            "placeholder weights)",
            file=sys.stderr,
        )
    boot_wait = args.boot_wait if args.boot_wait is not None else (0.0 if virtual else BOOT_WAIT_S)
    plant = SerialPlant(
        args.port,
        baud=args.baud,
        obs_dim=policy.obs_dim,
        act_dim=policy.act_dim,
        obs_timeout_s=None if args.obs_timeout_ms is None else args.obs_timeout_ms / 1000,
        ping_every=args.ping_every,
        reconnect=args.reconnect,
        handshake_timeout_s=args.handshake_timeout,
        boot_wait_s=boot_wait,
    )
    bound = None
    if args.duration is not None:
        setup_s = plant.handshake_timeout_s + plant.boot_wait_s
        plant.give_up_at = time.monotonic() + setup_s + args.duration  # moved up on connect
        bound = setup_s + args.duration + HARD_BOUND_GRACE_S
    with hard_time_bound(bound):
        return _deploy(args, policy, plant)


def _deploy(args: argparse.Namespace, policy: Policy, plant: SerialPlant) -> int:
    """Connect, run, leave the device safe, print the summary; returns the exit code."""
    import time

    from liquidnode.cli.arguments import rt_priority
    from liquidnode.controller.errors import LinkError
    from liquidnode.controller.logs.options import open_recorder
    from liquidnode.controller.loop import ControlLoop, LoopConfig
    from liquidnode.controller.shutdown import EXIT_RUN_FAULT, run_exit_code

    summary = None
    loop = None
    error: LinkError | None = None
    try:
        plant.connect()
        if args.duration is not None:  # reconnecting never outlasts the run's duration
            plant.give_up_at = time.monotonic() + args.duration
        from liquidnode.firmware_bridge.channel_check import check_policy_fits_device

        ident = plant.device.identity.device_id if plant.device is not None else "?"
        device = f"device {ident!r} on {args.port!r}"
        check_policy_fits_device(policy.metadata, plant.spec, device)
        rate = policy.metadata.control_rate_hz
        if rate and abs(rate * plant.spec.control_period_s - 1) > 1e-6:
            print(
                f"liquidnode deploy: warning: the policy was made for {rate:g} Hz but the "
                f"device runs at {plant.spec.rate_hz:g} Hz",
                file=sys.stderr,
            )
        log_meta = {"port": args.port, "device": plant.summary().get("device")}
        # the log is created when the run begins, inside its shutdown path (see sim_cmd)
        loop = ControlLoop(
            plant,
            policy,
            LoopConfig(run_duration_s=args.duration, latency_s=latency_seconds(args)),
            open_recorder=lambda: open_recorder(args, "deploy", log_meta),
            policy_path=args.policy,
        )
        try:
            with rt_priority(args, "deploy"):
                summary = loop.run(episodes=_episodes(args))
        except LinkError as exc:
            error = exc
            summary = loop.summary
    finally:
        plant.safe_stop()  # also when stopped before the loop started (idempotent)
        plant.disconnect()
    if summary is not None:
        summary = dataclasses.replace(summary, returns_unmeasured=NO_REWARD)
        if args.json:
            out = summary.to_json()
            out["link"] = out.get("plant", {}).get("link")
            out["device"] = out.get("plant", {}).get("device")
            log_error = "; ".join(summary.log_errors) or None
            out["error"] = str(error) if error is not None else log_error
            print(json.dumps(out))
        else:
            print(summary.format_text())
    if error is not None:
        print(f"liquidnode deploy: error: {error}", file=sys.stderr)
        return EXIT_RUN_FAULT
    if loop is None:
        return EXIT_RUN_FAULT
    return run_exit_code(loop.stopped_by, summary.log_errors if summary else None)


def _episodes(args: argparse.Namespace) -> int | None:
    """Episodes to run: ``--episodes``, else 1, or with ``--duration`` as many as fit (None)."""
    if args.episodes is not None:
        return int(args.episodes)
    return None if args.duration is not None else 1
