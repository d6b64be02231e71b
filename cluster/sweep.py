"""``liquidnode sweep``: a search space of ``liquidnode train`` runs as Ray Tune trials.

A sweep file (TOML) holds::

    name = "robustness"            # optional; the folder name (default: the file's stem)
    [train]                        # TrainConfig fields shared by every trial
    env = "InvertedPendulum-v5"
    steps = 40000
    [grid]                         # every combination: a list of values per field
    seed = [1, 2, 3]
    variant = [{name = "CfC", cell = "cfc", units = 16}, {name = "LSTM", cell = "lstm"}]
    [random]                       # sampled per trial: uniform, loguniform, randint, choice
    lr = {loguniform = [1e-4, 1e-3]}
    [search]
    samples = 1                    # the grid is repeated this many times (fresh random draws)
    cpus_per_trial = 1             # Ray CPUs each trial holds (match --envs for worker envs)

Any :class:`~liquidnode.controller.train.config.TrainConfig` field may appear in ``[train]``,
``[grid]`` or ``[random]``; a ``variant`` entry of ``[grid]`` is a table of several fields
that vary together (a candidate: cell and units...), its ``name`` a label.

Each trial is an ordinary training run (:func:`liquidnode.controller.train.ppo.train`) with
its own run folder, ``<sweep dir>/runs/<trial id>/`` (policy.safetensors, checkpoints/, tb/);
the Tune experiment lives in ``<sweep dir>/tune/``. Running the same command again resumes:
Tune restores the experiment (finished trials are kept, unfinished and failed ones run again)
and a trial whose run folder holds a checkpoint continues from it (``--resume``), one whose
policy file is already written only reports it. A trial that fails, or whose node is lost,
is retried once. On a multi-node cluster the sweep folder must be on storage every node
sees (NFS), as Ray Tune requires.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.train.config import TrainConfig, config_fields

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Sampling distributions of ``[random]`` and how many numbers each takes.
DISTRIBUTIONS = {"uniform": 2, "loguniform": 2, "randint": 2, "choice": None}
#: Fields a sweep decides itself (a trial's folder and output, its progress display).
RESERVED = {"out", "run_dir", "resume", "progress"}
#: The sweep's metric: the final deterministic evaluation's mean return (higher is better).
METRIC = "final_return"


@dataclass(frozen=True)
class SweepSpec:
    """A sweep file, checked (see the module docstring for its layout).

    Attributes:
        name: the sweep's name (its folder under ``runs/sweep/``).
        train: fixed TrainConfig fields.
        grid: field -> values, every combination run (``variant``: a list of field tables).
        random: field -> ``{distribution: arguments}``.
        samples: repetitions of the grid (each with fresh random draws), >= 1.
        cpus_per_trial: Ray CPUs each trial reserves, > 0.
        path: the file it came from.
    """

    name: str
    train: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    random: dict[str, dict[str, Any]] = field(default_factory=dict)
    samples: int = 1
    cpus_per_trial: float = 1.0
    path: str = ""

    @property
    def trials(self) -> int:
        """Trials the sweep runs: grid combinations x ``samples``."""
        return math.prod(len(v) for v in self.grid.values()) * self.samples


def load_sweep(path: str | os.PathLike[str]) -> SweepSpec:
    """Read and check a sweep file.

    Raises:
        LiquidNodeError: unreadable file, invalid TOML, an unknown table or field, a value
            of the wrong type (each named with the file and the field).
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise LiquidNodeError(f"sweep {path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise LiquidNodeError(f"sweep {path}: invalid TOML: {exc}") from None
    extra = sorted(set(raw) - {"name", "description", "train", "grid", "random", "search"})
    if extra:
        raise LiquidNodeError(f"sweep {path}: {extra[0]}: unknown table or key")
    known = {f.name for f in config_fields()} - RESERVED

    def check_field(name: str, where: str) -> None:
        if name not in known:
            hint = " (the sweep sets it per trial)" if name in RESERVED else ""
            raise LiquidNodeError(f"sweep {path}: {where}.{name}: not a train option{hint}")

    train = dict(raw.get("train", {}))
    for key in train:
        check_field(key, "train")
    grid: dict[str, list[Any]] = {}
    for key, values in raw.get("grid", {}).items():
        if not isinstance(values, list) or not values:
            raise LiquidNodeError(f"sweep {path}: grid.{key}: expected a non-empty list")
        if key == "variant":
            for i, table in enumerate(values):
                if not isinstance(table, dict):
                    raise LiquidNodeError(f"sweep {path}: grid.variant[{i}]: expected a table")
                for sub in table:
                    if sub != "name":
                        check_field(sub, f"grid.variant[{i}]")
        else:
            check_field(key, "grid")
        grid[key] = values
    random: dict[str, dict[str, Any]] = {}
    for key, dist in raw.get("random", {}).items():
        check_field(key, "random")
        if not isinstance(dist, dict) or len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
            raise LiquidNodeError(
                f"sweep {path}: random.{key}: expected one of "
                f"{', '.join(f'{{{d} = [...]}}' for d in DISTRIBUTIONS)}"
            )
        kind, args = next(iter(dist.items()))
        arity = DISTRIBUTIONS[kind]
        if not isinstance(args, list) or (arity is not None and len(args) != arity) or not args:
            raise LiquidNodeError(
                f"sweep {path}: random.{key}: {kind} takes {arity or 'a list of'} values"
            )
        random[key] = {kind: args}
    search = raw.get("search", {})
    unknown = sorted(set(search) - {"samples", "cpus_per_trial"})
    if unknown:
        raise LiquidNodeError(f"sweep {path}: search.{unknown[0]}: unknown key")
    samples, cpus = search.get("samples", 1), search.get("cpus_per_trial", 1)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise LiquidNodeError(f"sweep {path}: search.samples: expected a whole number >= 1")
    if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or not cpus > 0:
        raise LiquidNodeError(f"sweep {path}: search.cpus_per_trial: expected a number > 0")
    overlap = sorted(
        (set(train) & set(grid)) | (set(train) & set(random)) | (set(grid) & set(random))
    )
    if overlap:
        raise LiquidNodeError(f"sweep {path}: {overlap[0]}: set in more than one table")
    spec = SweepSpec(
        name=str(raw.get("name", path.stem)),
        train=train,
        grid=grid,
        random=random,
        samples=samples,
        cpus_per_trial=float(cpus),
        path=str(path),
    )
    for trial in _corners(spec):  # every grid corner must make a valid TrainConfig
        try:
            trial_config(spec, trial, Path("."), "check").validate()
        except (TypeError, LiquidNodeError) as exc:
            raise LiquidNodeError(f"sweep {path}: {exc}") from None
    return spec


def _corners(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every grid combination with the first value of each random field (for checking)."""
    import itertools

    names = list(spec.grid)
    firsts = {k: next(iter(d.values()))[0] for k, d in spec.random.items()}
    combos = itertools.product(*spec.grid.values())
    return [dict(zip(names, combo, strict=True), **firsts) for combo in combos]


def trial_config(spec: SweepSpec, params: dict[str, Any], root: Path, trial_id: str) -> TrainConfig:
    """The TrainConfig of one trial: ``[train]``, then its grid / random ``params`` (a
    ``variant`` table merged in), its run folder ``root/runs/<trial_id>``, no progress bar."""
    values = dict(spec.train)
    for key, value in params.items():
        if key == "variant":
            values.update({k: v for k, v in value.items() if k != "name"})
        else:
            values[key] = value
    hints = typing.get_type_hints(TrainConfig)
    for key, value in values.items():  # TOML integers where a float is expected
        if hints.get(key) in (float, float | None) and isinstance(value, int):
            values[key] = float(value)
    base = Path(spec.path).parent
    randomize = values.get("randomize")
    if isinstance(randomize, str) and (base / randomize).is_file():
        values["randomize"] = str((base / randomize).resolve())
    run_dir = root / "runs" / trial_id
    return TrainConfig(**values, run_dir=str(run_dir), progress=False)


def param_space(spec: SweepSpec) -> dict[str, Any]:
    """The Ray Tune search space of ``spec`` (grid_search and sampling objects)."""
    from ray import tune

    space: dict[str, Any] = {k: tune.grid_search(v) for k, v in spec.grid.items()}
    for key, dist in spec.random.items():
        kind, args = next(iter(dist.items()))
        space[key] = tune.choice(args) if kind == "choice" else getattr(tune, kind)(*args)
    return space


def _trial(params: dict[str, Any], spec: SweepSpec, root: str) -> None:
    """Ray Tune trainable: one training run, reporting ``final_return``, ``policy``,
    ``wall_s``, ``steps`` at its end."""
    from ray import tune

    from liquidnode.controller.policy import Policy
    from liquidnode.controller.train.config import run_paths
    from liquidnode.controller.train.ppo import train

    trial_id = tune.get_context().get_trial_id()
    cfg = trial_config(spec, params, Path(root), trial_id)
    paths = run_paths(cfg)
    t0 = time.perf_counter()
    if paths.policy.exists():  # finished before an interruption: report what it wrote
        provenance = Policy.load(paths.policy).metadata.provenance
        evaluation, steps = provenance.get("evaluation", {}), provenance.get("steps")
        wall = provenance.get("wall_time_s")
    else:
        if paths.checkpoint.exists():
            cfg = dataclasses.replace(cfg, resume=str(paths.checkpoint))
        result = train(cfg, command=f"liquidnode sweep {spec.path} (trial {trial_id})")
        evaluation, steps, wall = result.evaluation, result.steps, result.wall_time_s
    tune.report(
        {
            METRIC: float(evaluation.get("mean_return", float("nan"))),
            "policy": str(paths.policy),
            "wall_s": round(float(wall if wall is not None else time.perf_counter() - t0), 1),
            "steps": steps,
        }
    )


def sweep_dir(spec: SweepSpec, directory: str | None) -> Path:
    """The sweep's folder, absolute: ``directory`` or ``runs/sweep/<name>``."""
    return Path(directory or Path("runs") / "sweep" / spec.name).resolve()


def run_sweep(spec: SweepSpec, root: Path, max_concurrent: int | None = None) -> dict[str, Any]:
    """Run (or resume) the sweep on the Ray this process is connected to.

    Returns:
        ``{"trials": [{config, seed, final_return, policy, wall_s, status}], "best": the
        trial with the highest final_return or None, "dir": root, "interrupted": bool}``;
        ``status`` is ``ok``, ``error`` (with ``error``: the message) or ``unfinished``.
    """
    from ray import tune

    trainable = tune.with_resources(
        tune.with_parameters(_trial, spec=spec, root=str(root)), {"cpu": spec.cpus_per_trial}
    )
    experiment = root / "tune"
    if tune.Tuner.can_restore(str(experiment)):
        print(f"sweep: resuming {experiment}", file=sys.stderr)
        tuner = tune.Tuner.restore(
            str(experiment), trainable, resume_unfinished=True, resume_errored=True
        )
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=param_space(spec),
            tune_config=tune.TuneConfig(
                num_samples=spec.samples,
                max_concurrent_trials=max_concurrent,
                trial_dirname_creator=lambda trial: trial.trial_id,
            ),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=str(root),
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=1),
            ),
        )
    grid = tuner.fit()
    trials = []
    for index in range(len(grid)):  # a ResultGrid is indexed, not typed as iterable
        result = grid[index]
        params = dict(result.config or {})
        metrics = result.metrics or {}
        if result.error is not None:
            status = "error"
        elif METRIC in metrics:
            status = "ok"
        else:
            status = "unfinished"
        variant = params.get("variant")
        seed = params.get("seed", (variant or {}).get("seed", spec.train.get("seed", 0)))
        entry: dict[str, Any] = {
            "config": params,
            "seed": seed,
            "final_return": metrics.get(METRIC),
            "policy": metrics.get("policy"),
            "wall_s": metrics.get("wall_s"),
            "status": status,
        }
        if result.error is not None:
            entry["error"] = str(result.error).strip().splitlines()[-1]
        trials.append(entry)
    done = [t for t in trials if t["status"] == "ok"]
    best = max(done, key=lambda t: t["final_return"]) if done else None
    return {
        "trials": trials,
        "best": best,
        "dir": str(root),
        "interrupted": any(t["status"] == "unfinished" for t in trials),
    }


def format_table(result: dict[str, Any]) -> str:
    """The trials as a plain-text table, best first, then the best trial's policy."""

    def label(t: dict[str, Any]) -> str:
        parts = []
        for k, v in t["config"].items():
            if k == "variant":
                parts.append(str(v.get("name", v)))
            elif k != "seed":
                parts.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
        return " ".join(parts) or "-"

    order = sorted(
        result["trials"],
        key=lambda t: -t["final_return"] if t["final_return"] is not None else math.inf,
    )
    width = max([len(label(t)) for t in order] + [6])
    lines = [f"{'trial':<{width}} {'seed':>5} {'final return':>13} {'wall s':>8}  status"]
    lines.append("-" * len(lines[0]))
    for t in order:
        ret = f"{t['final_return']:.1f}" if t["final_return"] is not None else "-"
        wall = f"{t['wall_s']:.0f}" if t["wall_s"] is not None else "-"
        lines.append(f"{label(t):<{width}} {t['seed']!s:>5} {ret:>13} {wall:>8}  {t['status']}")
    best = result["best"]
    if best is not None:
        lines.append(
            f"best: {label(best)} seed {best['seed']}: {best['final_return']:.1f} "
            f"({best['policy']})"
        )
    return "\n".join(lines)


__all__ = [
    "METRIC",
    "SweepSpec",
    "format_table",
    "load_sweep",
    "param_space",
    "run_sweep",
    "sweep_dir",
    "trial_config",
]
