"""``liquidnode twin``: a virtual robot on a pseudo-terminal.

Creates a pty, prints ``port: /dev/pts/N`` as the first line on stdout, and serves the wire
protocol (firmware_bridge/PROTOCOL.md) exactly as a device would, with a MuJoCo plant behind
it stepping at its control period on its own clock, its own watchdog and safe action. Runs
until Ctrl-C / SIGTERM / SIGHUP (it then closes the pty, prints its stop line and exits 128+N:
130, 143, 129) or ``--duration`` (exit 0). Connect with ``liquidnode deploy --port /dev/pts/N``.

``--json`` prints two JSON lines on stdout instead: one when the port is ready (``port``,
``env``, ``device_id``, ``rate_hz``, ``obs_dim``, ``act_dim``, ``watchdog_ms``, ``seed``,
``link``) and one when the twin stops (``ticks``, ``episodes``, ``overruns``, ``crc_errors``,
``dropped``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from typing import Any

from liquidnode.cli.arguments import Subparsers, add_json_argument, add_seed_argument


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
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
            "STATUS fault 4 (plant terminated); each ARM starts a fresh episode. SIGUSR1 "
            "presses the device's e-stop button (latched: the host's ARM is refused), SIGUSR2 "
            "its clear button."
        ),
    )
    p.add_argument(
        "--env",
        default=None,
        metavar="ID|MJCF",
        help="Gymnasium MuJoCo id (e.g. InvertedPendulum-v5) or an MJCF .xml file (default: "
        "the env of the shipped default policy, as for 'liquidnode sim')",
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
    _add_link_arguments(p)
    add_seed_argument(p, "the first episode's reset (then +1 per episode)")
    add_json_argument(
        p,
        "a line when the port is ready (port, env, device_id, rate_hz, ...) and one when the "
        "twin stops (ticks, episodes, ...), each",
    )
    p.set_defaults(run=run)
    return p


def _symlink(target: str, link: str) -> None:
    tmp = f"{link}.{os.getpid()}.tmp"
    os.symlink(target, tmp)
    os.replace(tmp, link)


def run(args: argparse.Namespace) -> int:
    """Serve the twin until ``--duration`` (returns 0) or a signal (re-raised as
    :class:`~liquidnode.controller.shutdown.Interrupted` once the twin is closed and its stop
    line printed: exit 128+N)."""
    from liquidnode.controller.errors import LiquidNodeError
    from liquidnode.controller.shutdown import Interrupted
    from liquidnode.firmware_bridge.twin import VirtualRobot, make_twin_plant

    if args.watchdog_ms is not None and not 1 <= args.watchdog_ms <= 65535:
        raise LiquidNodeError(f"--watchdog-ms must be within 1..65535, got {args.watchdog_ms}")
    env = args.env or _default_env()
    plant = make_twin_plant(env, rate_hz=args.rate, **_link_options(args, env, args.rate))
    robot = VirtualRobot(plant, watchdog_ms=args.watchdog_ms, seed=args.seed)
    port = robot.open()
    if args.link:
        _symlink(port, args.link)
    cfg = robot.config
    ready = {
        "port": port,
        "env": env,
        "device_id": cfg.device_id,
        "rate_hz": 1 / cfg.spec.control_period_s,
        "obs_dim": cfg.spec.obs_dim,
        "act_dim": cfg.spec.act_dim,
        "watchdog_ms": cfg.watchdog_timeout_ms,
        "seed": args.seed,
        "link": args.link,
    }
    if args.json:
        print(json.dumps(ready), flush=True)
    else:
        print(f"port: {port}", flush=True)
        print(
            f"twin: {cfg.device_id} ({env}) on {port}: {ready['rate_hz']:g} Hz, "
            f"{cfg.spec.obs_dim} observations, {cfg.spec.act_dim} actions, "
            f"watchdog {cfg.watchdog_timeout_ms} ms, seed {args.seed}",
            file=sys.stderr,
            flush=True,
        )
    stopped_by: KeyboardInterrupt | None = None

    def on_sigterm(signum: int, frame: object) -> None:  # stop serving at a clean point
        nonlocal stopped_by
        stopped_by = stopped_by or Interrupted(signum)
        robot.stop()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGUSR1, lambda *_: robot.press_estop())  # the device's e-stop button
    signal.signal(signal.SIGUSR2, lambda *_: robot.press_clear())  # its clear button
    try:
        robot.serve(duration_s=args.duration)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGHUP
        stopped_by = stopped_by or exc
    finally:
        signal.signal(signal.SIGTERM, previous)
        robot.close()
        if args.link:
            with contextlib.suppress(OSError):
                if os.readlink(args.link) == port:
                    os.remove(args.link)
        with contextlib.suppress(Exception):
            plant.disconnect()
    stats = robot.deframer.stats
    if args.json:
        end = {
            "ticks": robot.ticks,
            "episodes": robot.episodes,
            "overruns": robot.overruns,
            "crc_errors": stats.crc_errors,
            "dropped": stats.dropped_total,
        }
        print(json.dumps(end), flush=True)
    else:
        print(
            f"twin: {robot.ticks} ticks, {robot.episodes} episodes, {robot.overruns} overruns, "
            f"received crc_errors {stats.crc_errors}, dropped {stats.dropped_total}",
            file=sys.stderr,
        )
    if stopped_by is not None:
        raise stopped_by  # the command line prints the one 'interrupted' line, exits 128+N
    return 0


def _default_env() -> str:
    """The environment of the shipped default policy (what ``liquidnode sim`` runs)."""
    from liquidnode.controller.errors import LiquidNodeError
    from liquidnode.controller.policy import Policy
    from liquidnode.policies import default_policy_path

    path = default_policy_path()
    env = Policy.load(path).metadata.env_id
    if not env:
        raise LiquidNodeError(f"the default policy {path} names no environment; pass --env")
    return env


def _add_link_arguments(p: argparse.ArgumentParser) -> None:
    """``--latency-ms``, ``--jitter-ms``, ``--noise``, ``--randomize``: an imperfect robot."""
    from liquidnode.cli.arguments import add_randomize_argument

    p.add_argument(
        "--latency-ms",
        metavar="A[:B]",
        default=None,
        help="actuation latency: each command reaches the actuators A ms (or U(A, B) ms, "
        "drawn per command, in order) after the observation it answers, resolved at the "
        "physics step (default: none, the command acts at once)",
    )
    p.add_argument(
        "--jitter-ms",
        type=float,
        default=0.0,
        metavar="J",
        help="the device's control period varies by U(-J, J) ms per tick (the simulation "
        "steps exactly that long, and the twin ticks at those intervals)",
    )
    p.add_argument(
        "--noise",
        type=float,
        default=0.0,
        metavar="FRAC",
        help="observation noise: white noise of FRAC x each channel's standard deviation "
        "(scales from the env's preset in sim/randomization/)",
    )
    add_randomize_argument(p)


def _link_options(args: argparse.Namespace, env: str, rate_hz: float | None) -> dict[str, Any]:
    """``make_twin_plant`` options for the link flags (empty when there are none)."""
    if args.latency_ms is None and not args.jitter_ms and not args.noise and not args.randomize:
        return {}
    from liquidnode.controller.errors import LiquidNodeError
    from liquidnode.firmware_bridge.twin import make_twin_plant
    from liquidnode.sim import randomization_spec
    from liquidnode.sim.randomization.link import channel_scales, link_spec, parse_latency_ms

    try:
        latency = None if args.latency_ms is None else parse_latency_ms(args.latency_ms)
    except ValueError as exc:
        raise LiquidNodeError(f"--latency-ms: {exc}") from None
    nominal = make_twin_plant(env, rate_hz=rate_hz)
    period = nominal.spec.control_period_s
    nominal.disconnect()
    spec = link_spec(
        period,
        base=None if args.randomize is None else randomization_spec(args.randomize),
        latency_ms=latency,
        jitter_ms=args.jitter_ms,
        noise=args.noise,
        obs_scale=channel_scales(env),
    )
    return {"randomize": spec, "randomize_seed": args.seed or 0}
