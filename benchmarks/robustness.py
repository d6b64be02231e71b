"""Liquid cells vs. LSTM / GRU / MLP under perturbations the policies were not trained on.

Every candidate (CfC, wired CfC (NCP), LTC, LSTM, GRU, MLP; sizes in :data:`CANDIDATES`, the
baselines sized to about the CfC's parameter count) is trained by the same trainer
(:func:`controller.train.ppo.train`, recurrent PPO) with the same randomisation preset, the
same step budget and the same seeds, then evaluated by the core of ``liquidnode stress``
(:func:`liquidnode.sim.stress.stress`: the control loop in fast mode with the safety layer,
deterministic policy) on a held-out grid (``robustness_grid.toml`` next to this file: values
outside the training ranges). Each (candidate, seed) run is a subprocess of its own and writes
``<out>/<env>/<name>-s<seed>.json``; a rerun skips the runs whose file exists, so an
interrupted benchmark continues where it stopped (a run killed midway leaves its
``<name>-s<seed>.lock``: delete it to run that one again). Several runners may share one
``--out`` folder; each run is claimed by its lock file. ``--table-only`` tabulates what is
there.

The table gives, per candidate, the mean over seeds (± the standard deviation over seeds) of
each policy's mean return: nominal, and averaged over the grid cells of each perturbation;
falls are terminated episodes over all perturbed cells; smoothness is the nominal mean
``|a_t - a_{t-1}|`` as % of the action range and the % of ticks whose action changes sign.

Usage::

    python -m liquidnode.benchmarks.robustness --env InvertedPendulum-v5 --seeds 1 2 3 \\
        --steps 40000 --episodes 20 --jobs 5 --out runs/robustness

``liquidnode bench`` runs it in full mode only (it trains 7 x 3 policies: about an hour on an
idle 2-core machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liquidnode.benchmarks.harness import Section

KEY = "robustness"
TITLE = "Robustness: liquid vs. LSTM / GRU / MLP cells on a held-out stress grid"
HELD_OUT_GRID = Path(__file__).resolve().with_name("robustness_grid.toml")
#: First reset seed of the stress episodes (the trainer never resets from it).
STRESS_SEED = 3_000_000


@dataclass(frozen=True)
class Candidate:
    """One cell configuration of the comparison.

    Attributes:
        name: label in the table (``CfC``, ``LSTM``...), also the run file's stem.
        cell: ``liquidnode train --cell``.
        units: ``--units``.
        frames: ``--frames`` (mlp only).
    """

    name: str
    cell: str
    units: int
    frames: int = 1


#: The CfC's backbone is the trainer default (64); LSTM / GRU / MLP widths give about the
#: CfC-16's parameter count on InvertedPendulum (4 -> 1); NCP and LTC are the shipped sizes.
#: ``MLP-3f`` sees the last three observations (stacked frames), the usual way to give a
#: feed-forward policy some memory of the latency it acts under.
CANDIDATES: tuple[Candidate, ...] = (
    Candidate("CfC", "cfc", 16),
    Candidate("NCP", "ncp", 16),
    Candidate("LTC", "ltc", 16),
    Candidate("LSTM", "lstm", 32),
    Candidate("GRU", "gru", 40),
    Candidate("MLP", "mlp", 64),
    Candidate("MLP-3f", "mlp", 64, frames=3),
)


@dataclass
class BenchConfig:
    """What one robustness benchmark runs.

    Attributes:
        env: Gymnasium environment id.
        seeds: training seeds (each candidate trains once per seed).
        steps: environment steps of every training run (the shared budget).
        envs: parallel training environments, stepped in the training process (no worker
            processes: the cheapest on a small busy machine).
        rollout_steps: steps per environment per PPO rollout (the trainer's defaults, 4 x 512).
        randomize: randomisation preset name or TOML path passed to training; None trains on
            the nominal plant.
        grid: the held-out stress grid (TOML).
        episodes: stress episodes per grid cell (and for the nominal run).
        stress_seed: first reset seed of the stress episodes.
        out: folder of the run files.
        jobs: runs at a time (subprocesses).
        candidates: the cells to compare.
    """

    env: str = "InvertedPendulum-v5"
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    steps: int = 40_000
    envs: int = 4
    rollout_steps: int = 512
    randomize: str | None = "InvertedPendulum-v5"
    grid: str = str(HELD_OUT_GRID)
    episodes: int = 20
    stress_seed: int = STRESS_SEED
    out: str = "runs/robustness"
    jobs: int = 2
    candidates: tuple[Candidate, ...] = CANDIDATES


def run_file(cfg: BenchConfig, cand: Candidate, seed: int) -> Path:
    """Where the (candidate, seed) run writes its result."""
    return Path(cfg.out) / cfg.env / f"{cand.name}-s{seed}.json"


def parameter_count(cand: Candidate, obs_dim: int, act_dim: int) -> int:
    """Trainable scalars of the candidate's actor cell (output layer included, no log-std)."""
    from liquidnode.controller.train.agent import build_cell
    from liquidnode.controller.train.baselines import count_parameters

    module = build_cell(cand.cell, obs_dim, act_dim, cand.units, 64, seed=1, frames=cand.frames)
    return count_parameters(module)


def train_and_stress(cfg: BenchConfig, cand: Candidate, seed: int) -> dict[str, Any]:
    """Train one policy, stress it on the grid, write and return the run record.

    Returns:
        ``{"candidate", "cell", "units", "frames", "seed", "steps", "train_wall_s",
        "train_eval", "randomize", "stress", "stress_wall_s", "policy"}`` (``stress`` as
        :func:`liquidnode.sim.stress.stress` returns it).
    """
    from liquidnode.controller.policy import Policy
    from liquidnode.controller.train.config import TrainConfig
    from liquidnode.controller.train.ppo import train
    from liquidnode.sim.stress import load_grid, stress

    path = run_file(cfg, cand, seed)
    run_dir = path.with_suffix("")
    options: dict[str, Any] = {
        "env": cfg.env,
        "cell": cand.cell,
        "units": cand.units,
        "frames": cand.frames,
        "steps": cfg.steps,
        "envs": cfg.envs,
        "rollout_steps": cfg.rollout_steps,
        "seed": seed,
        "out": str(run_dir / "policy.safetensors"),
        "eval_interval": 10,
        "eval_episodes": 5,
        "final_eval_episodes": 10,
        "keep_best": True,
        "progress": False,
        "tensorboard": False,
        "threads": 1,
    }
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    if "async_envs" in known:
        options["async_envs"] = False
    if "run_dir" in known:
        options["run_dir"] = str(run_dir)
    if cfg.randomize is not None:
        if "randomize" not in known:
            raise RuntimeError("this trainer has no --randomize; pass --randomize none")
        options["randomize"] = cfg.randomize
    train_cfg = TrainConfig(**options)
    t0 = time.perf_counter()
    result = train(train_cfg, command=f"benchmarks/robustness.py ({cand.name}, seed {seed})")
    train_wall = time.perf_counter() - t0
    policy = Policy.load(result.policy_path)
    t0 = time.perf_counter()
    stressed = stress(policy, cfg.env, load_grid(cfg.grid), cfg.episodes, cfg.stress_seed)
    record = {
        "candidate": cand.name,
        "cell": cand.cell,
        "units": cand.units,
        "frames": cand.frames,
        "seed": seed,
        "steps": result.steps,
        "train_wall_s": round(train_wall, 1),
        "train_eval": result.evaluation["mean_return"],
        "randomize": cfg.randomize,
        "episodes": cfg.episodes,
        "stress": stressed,
        "stress_wall_s": round(time.perf_counter() - t0, 1),
        "policy": str(result.policy_path),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)
    return record


def claim(cfg: BenchConfig, cand: Candidate, seed: int) -> Path | None:
    """Claim the (candidate, seed) run: create its ``.lock`` file and return it, or None when
    the run's result exists or another process holds the lock (so several runners can share
    one ``--out`` folder without training a run twice)."""
    path = run_file(cfg, cand, seed)
    if path.is_file():
        return None
    lock = path.with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return None
    return lock


def _worker_argv(cfg: BenchConfig, cand: Candidate, seed: int) -> list[str]:
    argv = [sys.executable, "-m", "liquidnode.benchmarks.robustness", "--env", cfg.env]
    argv += ["--steps", str(cfg.steps), "--episodes", str(cfg.episodes), "--grid", cfg.grid]
    argv += ["--envs", str(cfg.envs), "--rollout-steps", str(cfg.rollout_steps)]
    argv += ["--randomize", cfg.randomize or "none", "--out", cfg.out]
    argv += ["--stress-seed", str(cfg.stress_seed), "--one", cand.name, str(seed)]
    return argv


def run_all(
    cfg: BenchConfig, log: Callable[[str], None] | None = None, train: bool = True
) -> list[dict[str, Any]]:
    """Every (candidate, seed) run not on disk yet, ``cfg.jobs`` subprocesses at a time (none
    with ``train=False``); then the records of all runs that finished (failed runs are logged
    and left out)."""
    todo = [
        (c, s)
        for s in cfg.seeds
        for c in cfg.candidates
        if train and not run_file(cfg, c, s).is_file()
    ]

    def one(job: tuple[Candidate, int]) -> None:
        cand, seed = job
        t0 = time.perf_counter()
        proc = subprocess.run(_worker_argv(cfg, cand, seed), capture_output=True, text=True)
        if log:
            status = "ok" if proc.returncode == 0 else f"FAILED: {proc.stderr.strip()[-500:]}"
            log(f"{cand.name} seed {seed}: {time.perf_counter() - t0:.0f} s, {status}")

    with ThreadPoolExecutor(max_workers=max(1, cfg.jobs)) as pool:
        list(pool.map(one, todo))
    records = []
    for seed in cfg.seeds:
        for cand in cfg.candidates:
            path = run_file(cfg, cand, seed)
            if path.is_file():
                records.append(json.loads(path.read_text()))
    return records


# ---- the table ------------------------------------------------------------------------------
#: The single-perturbation axes; a stress cell of none of them is a combined one.
_AXES = ("latency", "mass", "obs_noise", "dt_jitter", "push", "actuator_gain", "friction")
#: Column groups: (label, predicate on a stress cell).
GROUPS: tuple[tuple[str, Callable[[dict[str, Any]], bool]], ...] = (
    ("latency <= 1 tick", lambda c: c["perturbation"] == "latency" and float(c["value"]) <= 1),
    ("latency > 1 tick", lambda c: c["perturbation"] == "latency" and float(c["value"]) > 1),
    ("mass", lambda c: c["perturbation"] == "mass"),
    ("obs noise", lambda c: c["perturbation"] == "obs_noise"),
    ("dt jitter", lambda c: c["perturbation"] == "dt_jitter"),
    ("push", lambda c: c["perturbation"] == "push"),
    ("motor gain", lambda c: c["perturbation"] == "actuator_gain"),
    ("combined", lambda c: c["perturbation"] not in _AXES),
)


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / n)


def _fmt(values: Sequence[float], digits: int = 0) -> str:
    if not values:
        return "-"
    mean, std = _mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def per_policy(record: dict[str, Any]) -> dict[str, float]:
    """One run's figures: ``nominal``, each group's mean return, ``falls_pct`` (terminated
    episodes over all perturbed cells, %), nominal ``delta_pct`` and ``sign_pct``."""
    stressed = record["stress"]
    out = {"nominal": float(stressed["nominal"]["mean_return"])}
    cells = stressed["cells"]
    for label, pick in GROUPS:
        chosen = [float(c["mean_return"]) for c in cells if pick(c)]
        if chosen:
            out[label] = sum(chosen) / len(chosen)
    episodes = record.get("episodes") or stressed.get("episodes")
    falls = sum(int(c["falls"]) for c in cells)
    if episodes:
        out["falls_pct"] = 100.0 * falls / (int(episodes) * len(cells))
    smooth = stressed["nominal"]["smoothness"]
    out["delta_pct"] = float(smooth.get("mean_delta_pct", math.nan))
    out["sign_pct"] = float(smooth.get("sign_change_pct", math.nan))
    return out


def summarize(
    records: list[dict[str, Any]], params: dict[str, int] | None = None
) -> tuple[list[str], list[list[Any]]]:
    """The table: one row per candidate (in :data:`CANDIDATES` order), mean ± std over seeds."""
    labels = [label for label, _ in GROUPS]
    columns = ["cell", "params", "seeds", "nominal", *labels, "falls %", "|Δa| %", "sign flips %"]
    order = [c.name for c in CANDIDATES]
    names = sorted(
        {r["candidate"] for r in records},
        key=lambda n: (n not in order, order.index(n) if n in order else 0, n),
    )
    rows = []
    for name in names:
        figs = [per_policy(r) for r in records if r["candidate"] == name]
        row: list[Any] = [name, (params or {}).get(name, "-"), len(figs)]
        row.append(_fmt([f["nominal"] for f in figs]))
        row += [_fmt([f[k] for f in figs if k in f]) for k in labels]
        row.append(_fmt([f["falls_pct"] for f in figs if "falls_pct" in f]))
        row.append(_fmt([f["delta_pct"] for f in figs], 1))
        row.append(_fmt([f["sign_pct"] for f in figs], 1))
        rows.append(row)
    return columns, rows


def to_markdown(columns: list[str], rows: list[list[Any]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def section(cfg: BenchConfig, records: list[dict[str, Any]], params: dict[str, int]) -> Section:
    """The benchmark as a :class:`Section` of ``liquidnode bench``."""
    columns, rows = summarize(records, params)
    if records:  # describe what the records hold (a --table-only run may differ from cfg)
        cfg = dataclasses.replace(
            cfg,
            seeds=sorted({int(r["seed"]) for r in records}),
            steps=int(records[0]["steps"]),
            episodes=int(records[0].get("episodes", cfg.episodes)),
        )
    notes = [
        f"{cfg.env}: every cell trained by liquidnode train with --randomize "
        f"{cfg.randomize or 'none'} for {cfg.steps} steps ({cfg.envs} in-process envs x "
        f"{cfg.rollout_steps} steps per rollout), seeds {cfg.seeds}; mean return per "
        "policy, then mean ± std over seeds.",
        f"Stress: held-out grid {Path(cfg.grid).name}, {cfg.episodes} episodes per cell from "
        f"reset seed {cfg.stress_seed}.",
    ]
    return Section(
        key=KEY,
        title=TITLE,
        columns=columns,
        rows=rows,
        notes=notes,
        data={"records": records, "config": dataclasses.asdict(cfg)},
    )


def run(quick: bool = False, tiny: bool = False) -> Section:
    """``liquidnode bench``'s section: the full benchmark, full mode only."""
    if quick or tiny:
        return Section(
            key=KEY,
            title=TITLE,
            unavailable="full mode only (trains 21 policies); or python -m "
            "liquidnode.benchmarks.robustness",
        )
    cfg = BenchConfig()
    records = run_all(cfg, log=lambda m: print(m, file=sys.stderr, flush=True))
    return section(cfg, records, _params(cfg))


def _params(cfg: BenchConfig) -> dict[str, int]:
    from liquidnode.controller.train.envs import env_info

    info = env_info(cfg.env)
    return {c.name: parameter_count(c, info.obs_dim, info.act_dim) for c in cfg.candidates}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line (see the module docstring); prints the markdown table or ``--json``."""
    p = argparse.ArgumentParser(prog="python -m liquidnode.benchmarks.robustness")
    d = BenchConfig()
    p.add_argument("--env", default=d.env)
    p.add_argument("--seeds", type=int, nargs="+", default=d.seeds)
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--envs", type=int, default=d.envs)
    p.add_argument("--rollout-steps", type=int, default=d.rollout_steps)
    p.add_argument(
        "--randomize", default=None, help="preset or TOML; 'none' (default: the env's preset)"
    )
    p.add_argument("--grid", default=d.grid)
    p.add_argument("--episodes", type=int, default=d.episodes)
    p.add_argument("--stress-seed", type=int, default=d.stress_seed)
    p.add_argument("--out", default=d.out)
    p.add_argument("--jobs", type=int, default=d.jobs)
    p.add_argument("--cells", nargs="+", default=[c.name for c in CANDIDATES], metavar="NAME")
    p.add_argument("--json", action="store_true", help="print the section as JSON")
    p.add_argument(
        "--table-only",
        action="store_true",
        help="train nothing: tabulate the runs already in --out",
    )
    p.add_argument("--one", nargs=2, metavar=("NAME", "SEED"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    by_name = {c.name: c for c in CANDIDATES}
    unknown = [n for n in args.cells if n not in by_name]
    if unknown:
        p.error(f"unknown --cells {unknown}; choose from {list(by_name)}")
    randomize = args.env if args.randomize is None else args.randomize
    cfg = BenchConfig(
        env=args.env,
        seeds=list(args.seeds),
        steps=args.steps,
        envs=args.envs,
        rollout_steps=args.rollout_steps,
        randomize=None if randomize == "none" else randomize,
        grid=args.grid,
        episodes=args.episodes,
        stress_seed=args.stress_seed,
        out=args.out,
        jobs=args.jobs,
        candidates=tuple(by_name[n] for n in args.cells),
    )
    if args.one:
        cand, seed = by_name[args.one[0]], int(args.one[1])
        lock = claim(cfg, cand, seed)
        if lock is None:
            print(f"{cand.name} seed {seed}: done or running elsewhere, skipped", file=sys.stderr)
            return 0
        try:
            train_and_stress(cfg, cand, seed)
        finally:
            lock.unlink(missing_ok=True)
        return 0
    records = run_all(cfg, log=_log, train=not args.table_only)
    sec = section(cfg, records, _params(cfg))
    if args.json:
        print(json.dumps(sec.to_json()))
    else:
        print(to_markdown(sec.columns, sec.rows))
        for note in sec.notes:
            print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
