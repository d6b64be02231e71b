"""``liquidnode stress``: a policy's robustness across a grid of perturbations.

Evaluates the policy nominally and in every cell of a grid (default
``sim/randomization/grids/default.toml``): actuation latency, masses, observation noise, dt
jitter, pushes, actuator gain, one at a time and combined; prints return retained (% of
nominal), falls and action smoothness per cell (see :mod:`liquidnode.sim.stress`).
``--json`` prints exactly ``{"nominal": {"mean_return", "falls", "smoothness"}, "cells":
[{"perturbation", "value", "mean_return", "retained", "falls", "smoothness"}, ...]}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from liquidnode.cli.arguments import (
    Subparsers,
    add_workers_arguments,
    non_negative_int,
    positive_int,
)

if TYPE_CHECKING:
    from liquidnode.controller.policy import Policy
    from liquidnode.sim.stress import GridCell


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Register ``stress``."""
    p = subparsers.add_parser(
        "stress",
        help="evaluate a policy across a grid of perturbations (latency, mass, noise, ...)",
        description=(
            "Evaluate a policy nominally and under each perturbation of a grid (actuation "
            "latency in control periods, mass scaling, observation noise, dt jitter, pushes, "
            "actuator gain; one at a time and combined), fast and deterministic like 'eval'. "
            "Prints return retained (% of nominal), falls (terminated episodes) and action "
            "smoothness (mean |Δaction| per tick as % of the range; % of ticks whose action "
            "changes sign). Every cell runs the same reset seeds S..S+N-1 with the "
            "randomisation seeded by S; the default S = 2000000 is never used in training."
        ),
    )
    p.add_argument(
        "--policy",
        metavar="PATH",
        default=None,
        help="policy file (default: the shipped policy for --env, else the default policy)",
    )
    p.add_argument(
        "--env", metavar="ID|MJCF", default=None, help="environment (default: the policy's)"
    )
    p.add_argument(
        "--grid",
        metavar="SPEC",
        default=None,
        help="grid TOML file ([axes] perturbation = [values], [[combined]] tables) or the "
        "name of a shipped grid: quick, starts (wider initial states) "
        "(default: sim/randomization/grids/default.toml)",
    )
    p.add_argument(
        "--episodes", type=positive_int, default=50, metavar="N", help="episodes per cell"
    )
    p.add_argument(
        "--seed",
        type=non_negative_int,
        default=None,
        metavar="S",
        help="first reset seed and randomisation seed (default: 2000000, a seed training "
        "never uses)",
    )
    p.add_argument("--plot", metavar="PNG", default=None, help="write a heatmap of retained %%")
    add_workers_arguments(p, "the cells' episodes (same figures as in-process)")
    p.add_argument(
        "--json", action="store_true", help="print the result as one JSON object on stdout"
    )
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``stress``; returns 0."""
    from liquidnode.cli.loading import load_policy_and_env
    from liquidnode.sim.stress import DEFAULT_SEED, format_table, load_grid, plot_heatmap, stress

    if args.address and not args.workers:
        from liquidnode.controller.errors import LiquidNodeError

        raise LiquidNodeError("--address needs --workers N (N >= 1)")
    policy, policy_path, env = load_policy_and_env(args, "stress")
    cells = load_grid(args.grid)
    seed = DEFAULT_SEED if args.seed is None else args.seed

    def progress(done: int, total: int, label: str) -> None:
        print(f"\rstress: {done}/{total} cells ({label})      ", end="", file=sys.stderr)

    print(
        f"stress: {policy_path} on {env}, {len(cells)} cells x {args.episodes} episodes, "
        f"seeds {seed}..{seed + args.episodes - 1}",
        file=sys.stderr,
    )
    tty = sys.stderr.isatty()
    if args.workers:
        result = _distributed(args, policy, env, cells, seed, tty)
    else:
        result = stress(policy, env, cells, args.episodes, seed, progress=progress if tty else None)
    if tty:
        print(file=sys.stderr)
    if args.plot:
        plot_heatmap(result, args.plot, f"{policy_path} on {env}, {args.episodes} episodes/cell")
    if args.json:
        print(json.dumps(result))
    else:
        print(format_table(result, args.episodes))
    return 0


def _distributed(
    args: argparse.Namespace,
    policy: Policy,
    env: str,
    cells: list[GridCell],
    seed: int,
    tty: bool,
) -> dict[str, Any]:
    """:func:`~liquidnode.sim.stress.stress` with the episodes on ``args.workers`` Ray actors."""
    import os

    from liquidnode.cluster.episodes import run_blocks
    from liquidnode.cluster.session import ray_session
    from liquidnode.sim.episodes import EpisodeBlock, EpisodeOutcome
    from liquidnode.sim.stress import stress

    def progress(done: int, total: int) -> None:
        print(f"\rstress: {done}/{total} blocks of episodes      ", end="", file=sys.stderr)

    def on_workers(blocks: list[EpisodeBlock]) -> list[list[EpisodeOutcome]]:
        return run_blocks(policy, blocks, args.workers, progress=progress if tty else None)

    with ray_session(args.address, cpus=max(args.workers, os.cpu_count() or 1)):
        return stress(policy, env, cells, args.episodes, seed, run_blocks=on_workers)
