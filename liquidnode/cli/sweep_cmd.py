"""``liquidnode sweep``: a search space of training runs as Ray Tune trials.

Reads a sweep file (see :mod:`liquidnode.cluster.sweep`), runs every trial as an ordinary
``liquidnode train`` run in ``runs/sweep/<name>/runs/<trial id>/`` (or ``--dir``), locally or
on the cluster at ``--address``, and prints a results table. The same command again resumes
an interrupted sweep. ``--json`` prints ``{"trials": [{config, seed, final_return, policy,
wall_s, status}], "best", "dir", "interrupted"}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys

from liquidnode.cli.arguments import Subparsers, add_json_argument, positive_int


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Register ``sweep``."""
    p = subparsers.add_parser(
        "sweep",
        help="run a grid / random search of training runs as Ray Tune trials",
        description=(
            "Run a search space of 'liquidnode train' runs (env, cell, units, seed, "
            "randomisation, PPO hyper-parameters; a TOML sweep file with [train], [grid], "
            "[random] and [search] tables) as Ray Tune trials, each writing its policy file, "
            "checkpoints and TensorBoard scalars to a run folder of its own. Without --address "
            "Ray starts on this machine; with it the same command runs on that cluster. "
            "Running it again resumes an interrupted sweep. Needs the [cluster] extra. "
            "Example: liquidnode sweep benchmarks/robustness_sweep.toml --max-concurrent 2"
        ),
    )
    p.add_argument("config", metavar="CONFIG", help="sweep file (TOML)")
    p.add_argument(
        "--address",
        metavar="ADDR",
        default=None,
        help="Ray cluster to run on (auto, HOST:6379 or ray://HOST:10001) (default: start "
        "Ray locally on this machine)",
    )
    p.add_argument(
        "--max-concurrent",
        type=positive_int,
        default=None,
        metavar="N",
        help="trials at a time (default: as many as the cluster's CPUs hold)",
    )
    p.add_argument(
        "--dir",
        metavar="DIR",
        default=None,
        help="folder of the sweep: tune/ (experiment state) and runs/<trial id>/ "
        "(default: runs/sweep/<name>)",
    )
    add_json_argument(p, "the trials and the best one")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``sweep``; 0 when every trial finished, 1 when one failed, 130 when interrupted."""
    import importlib.util

    from liquidnode.cluster.session import INSTALL_HINT, ray_session, require_ray
    from liquidnode.controller.errors import LiquidNodeError

    require_ray()
    if importlib.util.find_spec("torch") is None:
        raise LiquidNodeError(f"sweep trains policies and needs torch: {INSTALL_HINT}")
    from liquidnode.cluster.sweep import format_table, load_sweep, run_sweep, sweep_dir

    spec = load_sweep(args.config)
    root = sweep_dir(spec, args.dir)
    concurrent = args.max_concurrent or "as many as fit"
    print(
        f"sweep: {spec.name}, {spec.trials} trial(s), {concurrent} at a time; writing {root}/",
        file=sys.stderr,
        flush=True,
    )
    cpus = os.cpu_count() or 1
    if args.max_concurrent:
        cpus = max(cpus, int(args.max_concurrent * spec.cpus_per_trial + 0.999))
    # Ray Tune and the trials' workers print to stdout; keep it for the result alone.
    with ray_session(args.address, cpus=cpus), contextlib.redirect_stdout(sys.stderr):
        result = run_sweep(spec, root, args.max_concurrent)
    if args.json:
        print(json.dumps(result))
    else:
        print(format_table(result))
    if result["interrupted"]:
        print(f"sweep: interrupted; run the same command again to resume ({root})", file=sys.stderr)
        return 130
    return 1 if any(t["status"] == "error" for t in result["trials"]) else 0
