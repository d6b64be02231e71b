"""``liquidnode train``: train a liquid policy with recurrent PPO and write a policy file.

Every field of :class:`controller.train.config.TrainConfig` is a flag (``--rollout-steps``,
``--dt-jitter``...), its attribute docstring the help text. torch is imported only in ``run``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import types
import typing

from liquidnode.cli.arguments import Subparsers, add_workers_arguments
from liquidnode.controller.train.config import TrainConfig, config_fields, field_docs

_SHORT_HELP = "train a CfC / LTC / NCP policy on a Gymnasium task (recurrent PPO)"


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Register ``train`` with the top-level parser."""
    p = subparsers.add_parser(
        "train",
        help=_SHORT_HELP,
        description=(
            "Train a liquid policy (CfC, LTC, or CfC with NCP wiring) with recurrent PPO on a "
            "Gymnasium MuJoCo task and write a runtime policy file (safetensors) with frozen "
            "observation normalisation, action mapping and provenance (command, steps, seed, "
            "wall time, final deterministic evaluation). Each run writes a folder of its own, "
            "runs/train/<UTC timestamp>/ (or --run-dir): policy.safetensors (unless --out "
            "names the policy file), resumable checkpoints in checkpoints/ and TensorBoard "
            "scalars in tb/; the first line on stderr says where. Shows a progress bar on "
            "stderr. Example: liquidnode train --env InvertedPendulum-v5 --cell cfc --units 16 "
            "--steps 150000 --out pendulum.safetensors"
        ),
    )
    docs = field_docs()
    defaults = TrainConfig()
    hints = typing.get_type_hints(TrainConfig)
    for f in config_fields():
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        default = getattr(defaults, f.name)
        help_text = docs.get(f.name, "")
        if kind is bool:
            p.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=default,
                help=help_text,
            )
            continue
        args = typing.get_args(kind)
        if typing.get_origin(kind) is typing.Literal:
            p.add_argument(flag, dest=f.name, choices=args, default=default, help=help_text)
            continue
        if typing.get_origin(kind) in (typing.Union, types.UnionType):
            kind = next(a for a in args if a is not type(None))
        names = {"env": "ID", "out": "PATH", "run_dir": "DIR", "resume": "CKPT", "seed": "S"}
        more = {
            "dt_jitter": "FRAC",
            "randomize": "SPEC",
            "smoothness": "W",
            "init_from": "POLICY",
            "obs_cost": "I=W|I>L=W|I<L=W[,...]",
            "action_low_pass": "HZ",
        }
        metavar = names.get(f.name) or more.get(f.name) or ("N" if kind is int else "X")
        p.add_argument(
            flag, dest=f.name, type=kind, default=default, metavar=metavar, help=help_text
        )
    add_workers_arguments(
        p,
        "the --envs environments (collection only; the learner stays in this process; "
        "needs --envs >= N)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the result (policy path, steps, wall time, evaluation) as one "
        "JSON object on stdout",
    )
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Build the config from the flags, train, print the result."""
    import importlib.util

    from liquidnode.controller.errors import LiquidNodeError

    missing = [m for m in ("torch", "ncps") if importlib.util.find_spec(m) is None]
    if missing:
        raise LiquidNodeError(
            f"training needs {' and '.join(missing)}, which the runtime install leaves out: "
            "pip install -c constraints.txt -e '.[train]'"
        )
    from liquidnode.controller.train.config import run_paths, with_run_paths
    from liquidnode.controller.train.envs import env_info
    from liquidnode.controller.train.ppo import train

    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in config_fields()})
    cfg.validate()
    if args.address and not args.workers:
        raise LiquidNodeError("--address needs --workers N (N >= 1)")
    if args.workers:
        from liquidnode.cluster.rollouts import env_slices
        from liquidnode.cluster.session import require_ray

        env_slices(cfg.envs, args.workers)  # --envs >= --workers
        require_ray()
    env_info(cfg.env)  # a bad env id is one error line before anything is written
    cfg = with_run_paths(cfg)
    paths = run_paths(cfg)
    where = (
        f"train: {cfg.env} {cfg.cell}, seed {cfg.seed}; writing {paths.run_dir}/ (checkpoints/, tb/"
    )
    if paths.policy.parent == paths.run_dir:
        where += f", {paths.policy.name})"
    else:
        where += f"); policy to {paths.policy}"
    print(where, file=sys.stderr, flush=True)
    command = "liquidnode " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "liquidnode train"
    if args.workers:
        import os

        from liquidnode.cluster.rollouts import ray_collector
        from liquidnode.cluster.session import ray_session

        with ray_session(args.address, cpus=max(args.workers, os.cpu_count() or 1)):
            result = train(cfg, command=command, collector=ray_collector(args.workers))
    else:
        result = train(cfg, command=command)
    ev = result.evaluation
    summary = {
        "policy": str(result.policy_path),
        "run_dir": str(paths.run_dir),
        "env": cfg.env,
        "cell": cfg.cell,
        "steps": result.steps,
        "wall_time_s": round(result.wall_time_s, 1),
        "mean_return": ev["mean_return"],
        "std_return": ev["std_return"],
        "eval_episodes": ev["episodes"],
        "eval_seed": ev["seed"],
        "workers": args.workers,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"wrote {summary['policy']}: {cfg.env} {cfg.cell}, {result.steps} steps in "
            f"{summary['wall_time_s']} s; deterministic eval over {ev['episodes']} episodes "
            f"(seeds {ev['seed']}..): {ev['mean_return']:.1f} +- {ev['std_return']:.1f}"
        )
    return 0
