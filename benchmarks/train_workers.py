"""One training run with in-process collection (``--workers 0``) and with Ray actors
(``--workers N``), the same seed and step budget: final return and env steps/s of each.

Each run trains with the ``liquidnode train`` defaults (CfC 32, 4 envs x 512 steps per
rollout, 10 epochs) except periodic evaluation off and the last weights kept, then evaluates
the exported numpy policy deterministically over ``--episodes`` episodes on seeds that
training never used. Reported per run: ``steps_per_s`` (env steps over the whole run's wall
time, learning included), ``collect_s`` (time the trainer waited for rollouts: acting,
stepping, and with Ray the transfers) and ``collect_steps_per_s`` (env steps over
``collect_s``), ``learn_s`` (the rest: GAE, PPO epochs, checkpoints). ``--sb3`` adds
Stable-Baselines3 PPO on the same budget (``benchmarks/train_vs_sb3.py``). Ray starts
locally with ``max(N, cores)`` CPUs; its start-up is not in the figures, the actors' is.

Usage::

    python -m liquidnode.benchmarks.train_workers --steps 50000 --seed 1 --workers 2 --sb3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from liquidnode.controller.train.config import TrainConfig
    from liquidnode.controller.train.envs import EnvInfo
    from liquidnode.controller.train.rollout.collector import (
        Acting,
        Agent,
        CollectorFactory,
        Rollout,
        RolloutCollector,
    )


class _Timed:
    """A collector that adds up the time spent in ``collect``."""

    def __init__(self, inner: RolloutCollector) -> None:
        self.inner = inner
        self.collect_s = 0.0

    @property
    def num_envs(self) -> int:
        return self.inner.num_envs

    def reset(self, seed: int) -> None:
        self.inner.reset(seed)

    def collect(self, agent: Agent, steps: int) -> Rollout:
        t0 = time.perf_counter()
        try:
            return self.inner.collect(agent, steps)
        finally:
            self.collect_s += time.perf_counter() - t0

    def close(self, interrupted: bool = False) -> None:
        self.inner.close(interrupted)


def run_one(
    env_id: str, steps: int, seed: int, workers: int, episodes: int, eval_seed: int
) -> dict[str, Any]:
    """Train once with ``workers`` (0: in-process) and evaluate the policy file."""
    from liquidnode.benchmarks.train_vs_sb3 import train_and_evaluate
    from liquidnode.controller.train.config import TrainConfig
    from liquidnode.controller.train.rollout.collector import in_process_collector

    inner: CollectorFactory = in_process_collector
    if workers:
        from liquidnode.cluster.rollouts import ray_collector

        inner = ray_collector(workers)
    timed: list[_Timed] = []

    def factory(cfg: TrainConfig, info: EnvInfo, acting: Acting) -> _Timed:
        timed.append(_Timed(inner(cfg, info, acting)))
        return timed[-1]

    cfg = TrainConfig(env=env_id, steps=steps, seed=seed)
    row = train_and_evaluate(cfg, episodes, eval_seed, "benchmarks/train_workers.py", factory)
    collect_s = timed[0].collect_s
    return {
        "trainer": f"liquidnode recurrent PPO, --workers {workers}",
        "workers": workers,
        **row,
        "collect_s": round(collect_s, 1),
        "collect_steps_per_s": round(row["steps"] / collect_s, 1),
        "learn_s": round(row["train_wall_s"] - collect_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the flags, run the trainers one after another, print a table or JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="InvertedPendulum-v5", help="Gymnasium id (Box actions)")
    p.add_argument("--steps", type=int, default=50_000, help="env steps per run")
    p.add_argument("--seed", type=int, default=1, help="training seed of every run")
    p.add_argument("--workers", type=int, default=2, help="Ray actors of the distributed run")
    p.add_argument("--episodes", type=int, default=20, help="deterministic eval episodes")
    p.add_argument("--eval-seed", type=int, default=2_000_000, help="first evaluation seed")
    p.add_argument("--sb3", action="store_true", help="also train Stable-Baselines3 PPO")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = p.parse_args(argv)

    import torch

    from liquidnode.cluster.session import ray_session

    torch.set_num_threads(1)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = [run_one(args.env, args.steps, args.seed, 0, args.episodes, args.eval_seed)]
    with ray_session(None, cpus=max(args.workers, os.cpu_count() or 1)):
        rows.append(
            run_one(args.env, args.steps, args.seed, args.workers, args.episodes, args.eval_seed)
        )
    if args.sb3:
        from liquidnode.benchmarks.train_vs_sb3 import run_sb3

        rows.append(run_sb3(args.env, args.steps, args.seed, args.episodes, args.eval_seed))
    result = {
        "env": args.env,
        "steps": args.steps,
        "seed": args.seed,
        "eval_episodes": args.episodes,
        "eval_seed": args.eval_seed,
        "started": started,
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
        "results": rows,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.env}, {args.steps} steps, seed {args.seed}, eval {args.episodes} episodes")
        print(f"{'trainer':45s} {'return':>16s} {'wall s':>8s} {'steps/s':>8s} {'collect/s':>10s}")
        for r in rows:
            ret = f"{r['mean_return']:.1f} +- {r['std_return']:.1f}"
            col = f"{r['collect_steps_per_s']:.0f}" if "collect_steps_per_s" in r else "-"
            print(
                f"{r['trainer']:45s} {ret:>16s} {r['train_wall_s']:>8.1f} "
                f"{r['steps_per_s']:>8.1f} {col:>10s}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
