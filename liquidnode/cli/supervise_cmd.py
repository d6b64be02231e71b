"""``liquidnode supervise``: supervise a device that runs its policy on its own sensors.

The device's firmware has the policy inside (``make avr POLICY_DIR=DIR``, see
firmware_bridge/firmware/README.md): it reads its sensors and steps the policy at its own
control period. This command arms it (each episode starts from a zero hidden state), feeds
its link watchdog, records every tick's TELEMETRY (observation, the device's action, the
cycles the step took) to an MCAP log like ``liquidnode deploy`` does (``logs`` reads it) and
DISARMs it however the run ends (Ctrl-C, SIGTERM, ``--duration``, link loss). ``--json``
prints the run summary with ``device`` (precision, cycles per step, µs at the clock).
"""

from __future__ import annotations

import argparse
import json
import sys

from liquidnode.cli.arguments import Subparsers, add_json_argument, positive_float, positive_int


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Register ``supervise``."""
    p = subparsers.add_parser(
        "supervise",
        help="arm, watch and log a device that runs its own policy (on-device inference)",
        description=(
            "Connect to a device whose firmware runs an exported policy on its own sensors, "
            "arm it, log its telemetry like a host-side run and disarm it on exit."
        ),
    )
    p.add_argument("--port", required=True, metavar="DEV", help="serial port or pyserial URL")
    p.add_argument("--baud", type=int, default=115200, metavar="B", help="baud rate")
    p.add_argument(
        "--duration", type=positive_float, default=None, metavar="S",
        help="run for S seconds (default: one episode, until Ctrl-C or a device fault)",
    )  # fmt: skip
    p.add_argument("--episodes", type=positive_int, default=None, metavar="N", help="episodes")
    p.add_argument(
        "--max-ticks", type=positive_int, default=None, metavar="N", help="ticks per episode"
    )
    p.add_argument(
        "--handshake-timeout", type=positive_float, default=2.0, metavar="S",
        help="how long to wait for the device's handshake, s",
    )  # fmt: skip
    add_json_argument(p, "the run summary")
    from liquidnode.controller.logs.options import add_log_arguments

    add_log_arguments(p)
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Supervise; returns an exit code of :mod:`liquidnode.controller.shutdown` (0 ok, 3 link
    fault, 4 log incomplete, 128+N after signal N). The device is left DISARMED."""
    from liquidnode.controller.errors import LinkError
    from liquidnode.controller.logs.options import open_recorder
    from liquidnode.controller.loop import ControlLoop, LoopConfig
    from liquidnode.controller.shutdown import EXIT_RUN_FAULT, run_exit_code
    from liquidnode.firmware_bridge.handshake import handshake
    from liquidnode.firmware_bridge.link import SerialLink
    from liquidnode.firmware_bridge.onboard import (
        OnboardDevice,
        OnboardPolicy,
        check_onboard_device,
    )

    link = SerialLink(args.port, baud=args.baud)
    link.open()
    loop = summary = None
    error: LinkError | None = None
    device: OnboardDevice | None = None
    try:
        info = handshake(link, args.handshake_timeout)
        check_onboard_device(info, args.port)
        assert info.policy is not None
        device = OnboardDevice(link, info)
        config = LoopConfig(max_ticks=args.max_ticks, run_duration_s=args.duration)
        log_meta = {
            "port": args.port,
            "device": {"id": info.identity.device_id, "policy": info.policy.name},
        }
        # the log is created when the run begins, inside its shutdown path (see sim_cmd)
        loop = ControlLoop(
            device,
            OnboardPolicy(device),
            config,
            open_recorder=lambda: open_recorder(args, "supervise", log_meta),
        )
        if not args.json:
            print(
                f"supervise: {info.policy.name!r} on {info.identity.device_id!r} at "
                f"{args.port}, {info.spec.rate_hz:g} Hz",
                file=sys.stderr,
            )
        episodes = args.episodes or (None if args.duration is not None else 1)
        try:
            summary = loop.run(episodes=episodes)
        except LinkError as exc:
            error, summary = exc, loop.summary
    finally:
        if device is not None:
            device.safe_stop()
        link.close()
    if summary is not None:
        import dataclasses

        summary = dataclasses.replace(summary, returns_unmeasured="reward not sent over serial")
        if args.json:
            out = summary.to_json()
            out["device"] = out.get("plant", {}).get("device")
            out["error"] = None if error is None else str(error)
            print(json.dumps(out))
        else:
            print(summary.format_text())
    if error is not None:
        print(f"liquidnode supervise: error: {error}", file=sys.stderr)
        return EXIT_RUN_FAULT
    assert loop is not None
    return run_exit_code(loop.stopped_by, summary.log_errors if summary else None)
