"""Scaling out on Ray: distributed stress evaluation and a sweep, against one process.

Two comparisons, each side by side in one process on one local Ray instance (started once,
its start-up time reported apart):

- **stress**: ``liquidnode stress``'s core (:func:`liquidnode.sim.stress.stress`) on the
  shipped InvertedPendulum policy over the default grid, in this process vs. with the
  episodes on 2 Ray actors (:func:`liquidnode.cluster.episodes.run_blocks`, actors started
  inside the timed call); rounds alternate (in-process, Ray, Ray, in-process, ...); the
  figure is the median wall time per round, and the results must be identical.
- **sweep**: 8 short trainings (``liquidnode sweep``'s :func:`liquidnode.cluster.sweep.run_sweep`)
  with 1 trial at a time vs. 2 at a time; one sweep each, in that order.

Usage: ``python -m liquidnode.benchmarks.scaling [--quick] [--json]`` (needs the
``[cluster]`` extra). The 1-minute load average is printed with the figures: on a shared
machine the ratios are only meaningful next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from liquidnode.benchmarks.harness import Check, Section

KEY = "scaling"
TITLE = "Scaling on Ray: 2 workers vs. one process (local Ray, this machine)"
#: The sweep of the comparison: 8 trainings of 1,024 steps (InvertedPendulum, CfC-8).
SWEEP = """
name = "scaling"
[train]
env = "InvertedPendulum-v5"
units = 8
steps = 1024
envs = 1
rollout_steps = 256
minibatches = 4
epochs = 2
eval_interval = 0
final_eval_episodes = 2
[grid]
seed = [0, 1, 2, 3, 4, 5, 6, 7]
"""


#: The stress candidates, in the order of the first round.
STRESS_CANDIDATES = ("in-process", "2 Ray workers (started in the round)", "2 Ray workers (warm)")


def _stress(episodes: int, rounds: int) -> dict[str, Any]:
    from liquidnode.cluster.episodes import EpisodePool, run_blocks
    from liquidnode.controller.policy import Policy
    from liquidnode.policies import default_policy_path
    from liquidnode.sim.stress import DEFAULT_SEED, load_grid, stress

    env = "InvertedPendulum-v5"
    policy = Policy.load(default_policy_path(env))
    cells = load_grid()
    times: dict[str, list[float]] = {name: [] for name in STRESS_CANDIDATES}
    results: dict[str, Any] = {}
    cold, warm = STRESS_CANDIDATES[1:]
    with EpisodePool(policy, 2) as pool:
        pool.wait_ready()
        runners = {cold: lambda blocks: run_blocks(policy, blocks, 2), warm: pool.run}
        for r in range(rounds):
            k = r % len(STRESS_CANDIDATES)
            for name in STRESS_CANDIDATES[k:] + STRESS_CANDIDATES[:k]:
                t0 = time.perf_counter()
                results[name] = stress(
                    policy, env, cells, episodes, DEFAULT_SEED, run_blocks=runners.get(name)
                )
                times[name].append(time.perf_counter() - t0)
    n_episodes = episodes * (1 + sum(1 for c in cells if c.settings))
    return {
        "cells": len(cells),
        "episodes_per_cell": episodes,
        "episodes": n_episodes,
        "times_s": times,
        "identical": all(results[n] == results["in-process"] for n in STRESS_CANDIDATES),
    }


def _sweep(root: Path, trials: int) -> dict[str, Any]:
    from liquidnode.cluster.sweep import load_sweep, run_sweep

    config = root / "scaling.toml"
    config.write_text(SWEEP.replace("[0, 1, 2, 3, 4, 5, 6, 7]", str(list(range(trials)))))
    spec = load_sweep(config)
    out: dict[str, Any] = {"trials": spec.trials, "times_s": {}, "ok": {}}
    for concurrent in (1, 2):
        t0 = time.perf_counter()
        result = run_sweep(spec, root / f"c{concurrent}", concurrent)
        out["times_s"][concurrent] = time.perf_counter() - t0
        out["ok"][concurrent] = sum(t["status"] == "ok" for t in result["trials"])
    return out


def run(quick: bool = False, tiny: bool = False) -> Section:
    """Both comparisons (``quick``: fewer stress episodes and rounds; ``tiny``: also 2
    sweep trials instead of 8, a smoke test)."""
    import contextlib
    import sys

    from liquidnode.cluster.session import ray_session

    sec = Section(
        KEY, TITLE, columns=["comparison", "one process s", "2 workers s", "speed-up", "results"]
    )
    t0 = time.perf_counter()
    # 4 logical CPUs: the warm pool holds 2 while the 2 actors of a cold round start.
    with ray_session(None, cpus=4), contextlib.redirect_stdout(sys.stderr):
        startup = time.perf_counter() - t0
        st = _stress(10 if quick or tiny else 20, 2 if quick or tiny else 4)
        with tempfile.TemporaryDirectory() as tmp:
            sw = _sweep(Path(tmp), 2 if tiny else 8)
    load = os.getloadavg()[0]
    one = statistics.median(st["times_s"]["in-process"])
    for name in STRESS_CANDIDATES[1:]:
        two = statistics.median(st["times_s"][name])
        sec.rows.append(
            [
                f"stress, {name}: {st['cells']} cells, {st['episodes']} episodes of 1000 ticks",
                f"{one:.1f}",
                f"{two:.1f}",
                f"{one / two:.2f}x",
                "identical" if st["identical"] else "DIFFERENT",
            ]
        )
    two = statistics.median(st["times_s"][STRESS_CANDIDATES[2]])
    seq, par = sw["times_s"][1], sw["times_s"][2]
    sec.rows.append(
        [
            f"sweep: {sw['trials']} trainings of 1,024 steps (CfC-8, InvertedPendulum)",
            f"{seq:.1f}",
            f"{par:.1f}",
            f"{seq / par:.2f}x",
            f"{sw['ok'][1]} / {sw['ok'][2]} trials ok",
        ]
    )
    sec.checks += [
        Check(
            "stress: 2 warm workers >= 1.7x one process, identical results",
            f"{one / two:.2f}x, {'identical' if st['identical'] else 'different'}",
            one / two >= 1.7 and st["identical"],
        ),
        Check(
            "sweep: 2 concurrent trials >= 1.6x sequential", f"{seq / par:.2f}x", seq / par >= 1.6
        ),
    ]
    sec.notes += [
        f"local Ray (4 logical CPUs on the 2 cores), started once before both comparisons "
        f"({startup:.1f} s, not in the figures); 'started in the round': the 2 actors start "
        "inside the timed round (what one `liquidnode stress --workers 2` pays); 'warm': an "
        "EpisodePool started before.",
        f"stress: the three candidates rotate round by round; medians of "
        f"{len(st['times_s']['in-process'])} rounds; the shipped InvertedPendulum policy on the "
        "default grid. Sweep: one sequential (--max-concurrent 1) then one concurrent "
        f"(--max-concurrent 2) run of the same {sw['trials']} trials.",
        f"1-minute load average at the end: {load:.1f} on {os.cpu_count()} cores.",
    ]
    sec.data = {"stress": st, "sweep": sw, "ray_startup_s": startup, "load_avg_1min": load}
    return sec


def main() -> int:
    """``python -m liquidnode.benchmarks.scaling [--quick] [--json]``."""
    from liquidnode.benchmarks.report import machine, now_utc, to_markdown

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer stress episodes and rounds")
    p.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    args = p.parse_args()
    import sys

    date, t0 = now_utc(), time.perf_counter()
    sec = run(quick=args.quick)
    command = "python -m liquidnode.benchmarks.scaling" + (" --quick" if args.quick else "")
    meta: dict[str, Any] = {"machine": machine(), "command": command, "date": date}
    meta["wall_s"] = time.perf_counter() - t0
    print(json.dumps(sec.data, default=str), file=sys.stderr)  # the raw figures, always
    print(json.dumps(sec.data, default=str) if args.json else to_markdown([sec], meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
