"""Train one env for the same number of steps with liquidnode's recurrent PPO and with
Stable-Baselines3 PPO (MlpPolicy), side by side, and compare returns and wall time.

Both runs: one torch thread, the same seed, ``--steps`` environment steps, then a
deterministic evaluation over ``--episodes`` episodes on seeds ``--eval-seed ..`` that neither
run trained on. liquidnode is evaluated through its exported numpy policy (the file users
ship), SB3 through ``model.predict(deterministic=True)``. liquidnode runs with the
``liquidnode train`` defaults (CfC, 4 parallel envs, periodic evaluation off, last weights
kept) except where flags below say otherwise; SB3 runs with its PPO defaults (one env,
n_steps 2048, no normalisation), as a user would start. Runs are sequential, so a burst of
load on a shared machine can hit one more than the other: repeat before trusting small
wall-time gaps.

Usage::

    python benchmarks/train_vs_sb3.py --env InvertedPendulum-v5 --steps 50000 --seed 1 --json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from liquidnode.controller.train.config import CellType, TrainConfig
    from liquidnode.controller.train.rollout.collector import CollectorFactory


def train_and_evaluate(
    cfg: TrainConfig,
    episodes: int,
    eval_seed: int,
    command: str,
    collector: CollectorFactory | None = None,
) -> dict[str, Any]:
    """Train ``cfg`` quietly (no periodic evaluations, no progress, no TensorBoard) in a
    temporary run folder, then evaluate the exported numpy policy on ``episodes`` seeds from
    ``eval_seed``. Returns ``steps``, ``train_wall_s``, ``steps_per_s``, ``mean_return``,
    ``std_return``."""
    from liquidnode.controller.policy import Policy
    from liquidnode.controller.train.evaluate import evaluate_policy
    from liquidnode.controller.train.ppo import train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = dataclasses.replace(cfg, run_dir=tmp, out=None, progress=False, tensorboard=False)
        cfg = dataclasses.replace(cfg, eval_interval=0, keep_best=False, final_eval_episodes=1)
        t0 = time.perf_counter()
        result = train(cfg, command=command, collector=collector)
        wall = time.perf_counter() - t0
        ev = evaluate_policy(Policy.load(Path(result.policy_path)), cfg.env, episodes, eval_seed)
    return {
        "steps": result.steps,
        "train_wall_s": round(wall, 1),
        "steps_per_s": round(result.steps / wall, 1),
        "mean_return": round(ev["mean_return"], 2),
        "std_return": round(ev["std_return"], 2),
    }


def run_liquidnode(
    env_id: str, steps: int, seed: int, episodes: int, eval_seed: int, cell: CellType, units: int
) -> dict[str, Any]:
    """Train with :func:`controller.train.ppo.train`; evaluate the exported numpy policy."""
    from liquidnode.controller.train.config import TrainConfig

    cfg = TrainConfig(env=env_id, cell=cell, units=units, steps=steps, seed=seed)
    row = train_and_evaluate(cfg, episodes, eval_seed, "benchmarks/train_vs_sb3.py")
    return {"trainer": f"liquidnode recurrent PPO ({cell}, {units} units)", **row}


def run_sb3(env_id: str, steps: int, seed: int, episodes: int, eval_seed: int) -> dict[str, Any]:
    """Train SB3 PPO (MlpPolicy, defaults) and evaluate it deterministically."""
    from stable_baselines3 import PPO

    from liquidnode.sim import make_env

    env = make_env(env_id)
    model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0)
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - t0
    env.close()

    eval_env = make_env(env_id)
    returns = []
    for k in range(episodes):
        obs, _ = eval_env.reset(seed=eval_seed + k)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = eval_env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    eval_env.close()
    return {
        "trainer": "stable-baselines3 PPO (MlpPolicy, defaults)",
        "steps": int(model.num_timesteps),
        "train_wall_s": round(wall, 1),
        "steps_per_s": round(model.num_timesteps / wall, 1),
        "mean_return": round(float(np.mean(returns)), 2),
        "std_return": round(float(np.std(returns)), 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the flags, run both trainers, print a table or one JSON object."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="InvertedPendulum-v5", help="Gymnasium id (Box actions)")
    p.add_argument("--steps", type=int, default=50_000, help="env steps per trainer")
    p.add_argument("--seed", type=int, default=1, help="training seed of both trainers")
    p.add_argument("--episodes", type=int, default=20, help="deterministic eval episodes")
    p.add_argument("--eval-seed", type=int, default=2_000_000, help="first evaluation seed")
    p.add_argument("--cell", default="cfc", choices=["cfc", "ltc", "ncp"], help="liquid cell")
    p.add_argument("--units", type=int, default=32, help="liquid cell units")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    rows = [
        run_liquidnode(
            args.env, args.steps, args.seed, args.episodes, args.eval_seed, args.cell, args.units
        ),
        run_sb3(args.env, args.steps, args.seed, args.episodes, args.eval_seed),
    ]
    result = {
        "env": args.env,
        "steps": args.steps,
        "seed": args.seed,
        "eval_episodes": args.episodes,
        "eval_seed": args.eval_seed,
        "results": rows,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.env}, {args.steps} steps, seed {args.seed}, eval {args.episodes} episodes")
        print(f"{'trainer':50s} {'return':>16s} {'train wall s':>13s} {'steps/s':>9s}")
        for r in rows:
            ret = f"{r['mean_return']:.1f} +- {r['std_return']:.1f}"
            print(
                f"{r['trainer']:50s} {ret:>16s} {r['train_wall_s']:>13.1f} {r['steps_per_s']:>9.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
