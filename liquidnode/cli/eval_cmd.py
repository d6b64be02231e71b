"""``liquidnode eval``: fast, deterministic evaluation of a policy on a MuJoCo simulation.

Runs N episodes in fast mode (no waiting, ``dt`` = nominal period) with seeds S, S+1, ...
and reports the mean and standard deviation of the returns. The same arguments give the same
numbers. ``--json`` prints one object: ``mean_return``, ``std_return``, ``returns`` (plus
``ticks``, ``env``, ``policy``, ``seed``, ``episodes``).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING

from liquidnode.cli.arguments import (
    Subparsers,
    add_json_argument,
    add_latency_argument,
    add_policy_env_arguments,
    add_randomize_argument,
    add_seed_argument,
    add_workers_arguments,
    latency_seconds,
    positive_float,
    positive_int,
    randomize_options,
)
from liquidnode.cli.loading import load_policy_and_env, warn_if_rate_differs

if TYPE_CHECKING:
    from liquidnode.controller.policy import Policy


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Register ``eval``."""
    p = subparsers.add_parser(
        "eval",
        help="evaluate a policy: mean and std of returns over episodes (fast, deterministic)",
        description=(
            "Run a policy for N episodes against a MuJoCo simulation in fast mode (no "
            "wall-clock pacing; dt = the nominal control period) with reset seeds S, S+1, ... "
            "and print the mean and standard deviation of the episode returns. Deterministic: "
            "the same arguments give the same numbers. No episode log is written."
        ),
    )
    add_policy_env_arguments(p)
    p.add_argument(
        "--episodes", type=positive_int, default=10, metavar="N", help="episodes to average over"
    )
    add_seed_argument(p, "episode 0's reset; episode i uses S+i")
    p.add_argument(
        "--rate",
        type=positive_float,
        default=None,
        metavar="HZ",
        help="control rate in Hz, a whole multiple of the physics step (default: the env's)",
    )
    p.add_argument(
        "--max-ticks",
        type=positive_int,
        default=None,
        metavar="N",
        help="episode length in ticks, replacing the environment's time limit (default: its own)",
    )
    add_randomize_argument(p)
    add_latency_argument(p, device=False)
    add_workers_arguments(p, "the episodes (same returns as in-process)")
    add_json_argument(p)
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``eval``; returns 0, or 128+N after signal N (partial result printed)."""
    import numpy as np

    from liquidnode.controller.errors import LiquidNodeError
    from liquidnode.controller.loop import ControlLoop, LoopConfig
    from liquidnode.sim import make_plant

    if args.address and not args.workers:
        raise LiquidNodeError("--address needs --workers N (N >= 1)")
    policy, policy_path, env = load_policy_and_env(args, "eval")
    plant = make_plant(
        env,
        rate_hz=args.rate,
        max_ticks=args.max_ticks,
        **randomize_options(args, policy, args.seed),
    )
    warn_if_rate_differs(policy, plant, "eval")
    if args.workers:
        plant.disconnect()
        returns, ticks, faults = _distributed(args, policy, env)
        interrupted, stopped_by = False, None
    else:
        try:
            loop = ControlLoop(
                plant,
                policy,
                LoopConfig(
                    realtime=False, max_ticks=args.max_ticks, latency_s=latency_seconds(args)
                ),
                policy_path=policy_path,
            )
            summary = loop.run(episodes=args.episodes, seed=args.seed)
        finally:
            plant.disconnect()
        returns = [e.return_ for e in summary.episodes]
        ticks = [e.ticks for e in summary.episodes]
        faults, interrupted, stopped_by = summary.faults, summary.interrupted, loop.stopped_by
    mean = float(np.mean(returns)) if returns else float("nan")
    std = float(np.std(returns)) if returns else float("nan")
    if args.json:
        print(
            json.dumps(
                {
                    "mean_return": mean,
                    "std_return": std,
                    "returns": returns,
                    "ticks": ticks,
                    "episodes": len(returns),
                    "env": env,
                    "policy": policy_path,
                    "seed": args.seed,
                    "randomize": args.randomize,
                    "faults": faults,
                    "interrupted": interrupted,
                    "workers": args.workers,
                }
            )
        )
    else:
        for i, (ret, n) in enumerate(zip(returns, ticks, strict=True)):
            print(f"episode {i:>3} (seed {args.seed + i}): return {ret:10.2f}, {n} ticks")
        print(
            f"{env}: mean return {mean:.2f} ± {std:.2f} (std) over {len(returns)} episode(s), "
            f"policy {policy_path}"
        )
    from liquidnode.controller.shutdown import run_exit_code

    return run_exit_code(stopped_by)


def _distributed(
    args: argparse.Namespace, policy: Policy, env: str
) -> tuple[list[float], list[int], int]:
    """Returns, ticks and fault count of the episodes, run on ``args.workers`` Ray actors
    (Ctrl-C raises KeyboardInterrupt after the actors are killed: no partial result)."""
    from liquidnode.cluster.episodes import run_blocks
    from liquidnode.cluster.session import ray_session
    from liquidnode.sim.episodes import EpisodeBlock, split

    spec = randomize_options(args, policy, args.seed).get("randomize")
    blocks = [
        EpisodeBlock(
            env,
            args.seed,
            first,
            count,
            rate_hz=args.rate,
            max_ticks=args.max_ticks,
            randomize=spec,
            randomize_seed=args.seed,
            latency_s=latency_seconds(args),
        )
        for first, count in split(args.episodes, 4 * args.workers)
    ]
    with ray_session(args.address, cpus=max(args.workers, os.cpu_count() or 1)):
        outcomes = [o for block in run_blocks(policy, blocks, args.workers) for o in block]
    return (
        [o.return_ for o in outcomes],
        [o.ticks for o in outcomes],
        sum(o.faults for o in outcomes),
    )
