"""Stress evaluation: a policy's return, falls and smoothness across a grid of perturbations.

A grid (TOML, default :data:`DEFAULT_GRID`) lists perturbations one at a time (``[axes]``:
perturbation -> values) and combined (``[[combined]]`` tables). Each cell becomes a fixed
:class:`~liquidnode.sim.randomization.spec.RandomizationSpec` (see :data:`PERTURBATIONS` for
each one's unit) and is evaluated like ``liquidnode eval``: the control loop in fast mode
(safety layer included), deterministic policy, ``episodes`` episodes.

Seeds: every cell runs the same episodes, reset seeds ``seed .. seed + episodes - 1`` with the
randomisation seeded by ``seed`` (so cells are paired: they differ only in the perturbation).
The default ``seed`` 2,000,000 is never used by ``liquidnode train``, which resets its
environments from ``--seed`` (single digits by convention) and evaluates on 1,000,000+ and
1,100,000+; the policy cards evaluate on 10,000+.

Per cell: ``mean_return``; ``retained``, the mean return as % of the nominal one
(``100 * (1 - (nominal - mean) / |nominal|)``, i.e. ``100 * mean / nominal`` for a positive
nominal return); ``falls``, episodes that ended in a terminal state; ``smoothness``:
``mean_delta_pct``, mean ``|a_t - a_{t-1}|`` per tick as % of the action range, and
``sign_change_pct``, % of ticks whose action changes sign (both averaged over channels, on the
action sent).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from liquidnode.controller.loop import ControlLoop, LoopConfig
from liquidnode.controller.plant import PlantSpec
from liquidnode.controller.policy import Policy
from liquidnode.controller.records import Recorder
from liquidnode.controller.run_summary import RunSummary
from liquidnode.sim.episodes import ActionRecorder, EpisodeBlock, EpisodeOutcome
from liquidnode.sim.randomization.spec import (
    InitialStateSpec,
    LatencySpec,
    ObservationSpec,
    PushSpec,
    RandomizationSpec,
    Range,
    SpecError,
    TimingSpec,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: The grid ``liquidnode stress`` uses without ``--grid``.
DEFAULT_GRID = Path(__file__).resolve().parent / "randomization" / "grids" / "default.toml"
#: First reset seed of a stress run (never used by training; see the module docstring).
DEFAULT_SEED = 2_000_000

#: Perturbation names and what their value means.
PERTURBATIONS = {
    "latency": "actuation latency, control periods",
    "mass": "factor on every body's mass and inertia",
    "obs_noise": "observation noise std, fraction of each channel's std",
    "dt_jitter": "control period nominal * (1 + U(-f, f))",
    "push": "pushes every 1-3 s: impulse = value * total mass, N·s/kg",
    "friction": "factor on every geom's sliding friction",
    "actuator_gain": "factor on every actuator's force per unit control",
    "initial_spread": "factor on the reset state's random offset from upright/reference",
}


@dataclass(frozen=True)
class GridCell:
    """One cell: a name (``perturbation``), its ``value`` and the settings it stands for."""

    perturbation: str
    value: float | str
    settings: dict[str, float] = field(default_factory=dict)


def cell_spec(settings: dict[str, float], total_mass: float) -> RandomizationSpec:
    """The fixed spec of a cell's settings (``push`` converted with the model's mass)."""
    spec = RandomizationSpec(name="stress")
    for key, v in settings.items():
        r = Range(float(v), float(v))
        if key == "latency":
            spec = replace(spec, latency=LatencySpec(ticks=r))
        elif key == "obs_noise":
            spec = replace(spec, observation=ObservationSpec(noise=r))
        elif key == "dt_jitter":
            spec = replace(spec, timing=TimingSpec(dt_jitter=float(v)))
        elif key == "initial_spread":
            spec = replace(spec, initial_state=InitialStateSpec(spread=r))
        elif key == "push":
            spec = replace(spec, push=PushSpec(impulse=Range(v * total_mass, v * total_mass)))
        else:
            spec = replace(spec, dynamics=replace(spec.dynamics, **{key: r}))
    return spec


def load_grid(path: str | os.PathLike[str] | None = None) -> list[GridCell]:
    """The cells of a grid file (default :data:`DEFAULT_GRID`), axes first, then combined.

    ``path`` may also name a shipped grid (``quick``, ``starts``: the stems of the files in
    ``sim/randomization/grids/``).

    Raises:
        SpecError: missing file, invalid TOML, unknown perturbation or a bad value (named).
    """
    path = Path(path) if path is not None else DEFAULT_GRID
    shipped = DEFAULT_GRID.parent / f"{path}.toml"
    if not path.is_file() and path.suffix == "" and shipped.is_file():
        path = shipped
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise SpecError(f"stress grid {path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"stress grid {path}: invalid TOML: {exc}") from None

    def value(v: Any, where: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise SpecError(f"stress grid {path}: {where}: expected a number, got {v!r}")
        if v < 0:
            raise SpecError(f"stress grid {path}: {where}: must be >= 0, got {v!r}")
        return float(v)

    def check(name: str, where: str) -> None:
        if name not in PERTURBATIONS:
            raise SpecError(
                f"stress grid {path}: {where}: unknown perturbation "
                f"(known: {', '.join(PERTURBATIONS)})"
            )

    extra = sorted(set(raw) - {"description", "axes", "combined"})
    if extra:
        raise SpecError(f"stress grid {path}: {extra[0]}: unknown field")
    cells: list[GridCell] = []
    for name, values in raw.get("axes", {}).items():
        check(name, f"axes.{name}")
        if not isinstance(values, list):
            raise SpecError(f"stress grid {path}: axes.{name}: expected a list of values")
        for i, v in enumerate(values):
            x = value(v, f"axes.{name}[{i}]")
            cells.append(GridCell(name, x, {name: x}))
    for i, table in enumerate(raw.get("combined", [])):
        label = str(table.get("name", f"combined{i}"))
        settings = {}
        for key, v in table.items():
            if key == "name":
                continue
            check(key, f"combined[{i}].{key}")
            settings[key] = value(v, f"combined[{i}].{key}")
        cells.append(GridCell("combined", label, settings))
    if not cells:
        raise SpecError(f"stress grid {path}: no cells (add [axes] or [[combined]])")
    return cells


def smoothness(actions: Sequence[ArrayLike], low: np.ndarray, high: np.ndarray) -> dict[str, float]:
    """``mean_delta_pct`` and ``sign_change_pct`` of one or more action sequences.

    Args:
        actions: per episode, the actions sent, ``(ticks, act_dim)`` each.
        low, high: the action limits (finite), ``(act_dim,)``.
    """
    span = np.where(np.isfinite(high - low), high - low, 1.0)
    deltas, flips = [], []
    for episode in actions:
        a = np.asarray(episode, np.float64)
        if len(a) < 2:
            continue
        deltas.append(np.abs(np.diff(a, axis=0)) / span)
        s = np.sign(a)
        flips.append((s[1:] * s[:-1] < 0).astype(np.float64))
    if not deltas:
        return {"mean_delta_pct": 0.0, "sign_change_pct": 0.0}
    return {
        "mean_delta_pct": round(100.0 * float(np.concatenate(deltas).mean()), 3),
        "sign_change_pct": round(100.0 * float(np.concatenate(flips).mean()), 3),
    }


def evaluate(
    policy: Policy,
    env: str,
    spec: RandomizationSpec | None,
    episodes: int,
    seed: int,
) -> dict[str, Any]:
    """``episodes`` fast, deterministic episodes of ``policy`` on ``env`` under ``spec``.

    Returns:
        ``mean_return``, ``falls`` (terminated episodes), ``smoothness`` (see
        :func:`smoothness`), ``returns``.
    """
    recorder = ActionRecorder()
    summary, plant_spec = run_cell(policy, env, spec, episodes, seed, recorder)
    returns = [e.return_ for e in summary.episodes]
    return {
        "mean_return": float(np.mean(returns)),
        "falls": sum(bool(e.terminated) for e in summary.episodes),
        "smoothness": smoothness(recorder.episodes, plant_spec.action_low, plant_spec.action_high),
        "returns": returns,
    }


def run_cell(
    policy: Policy,
    env: str,
    spec: RandomizationSpec | None,
    episodes: int,
    seed: int,
    recorder: Recorder | None = None,
) -> tuple[RunSummary, PlantSpec]:
    """Run ``episodes`` episodes of one stress cell: the control loop, fast and deterministic,
    on ``env`` randomised with ``spec`` (None: nominal), reset seeds ``seed, seed + 1, ...``,
    randomisation seed ``seed``, every tick passed to ``recorder``.

    Returns:
        The loop's summary and the plant's spec (action bounds, ...).
    """
    from liquidnode.sim import make_plant

    kwargs: dict[str, Any] = {}
    if spec is not None:
        kwargs = {"randomize": spec, "randomize_seed": seed, "obs_scale": policy.obs_std}
    plant = make_plant(env, **kwargs)
    try:
        loop = ControlLoop(plant, policy, LoopConfig(realtime=False), recorder=recorder)
        summary = loop.run(episodes=episodes, seed=seed)
    finally:
        plant.disconnect()
    return summary, plant.spec


def total_mass_kg(env: str) -> float:
    """The summed body mass of ``env``'s model, kg (pushes are given per kg of it)."""
    from liquidnode.sim import make_plant

    plant = make_plant(env)
    try:
        return float(np.sum(plant.model.body_mass))
    finally:
        plant.disconnect()


def retained(mean: float, nominal: float) -> float:
    """``mean`` as % of ``nominal``: ``100 * (1 - (nominal - mean) / |nominal|)``."""
    if nominal == 0:
        return math.nan
    return 100.0 * (1.0 - (nominal - mean) / abs(nominal))


def stress(
    policy: Policy,
    env: str,
    cells: list[GridCell] | None = None,
    episodes: int = 50,
    seed: int = DEFAULT_SEED,
    progress: Any = None,
    run_blocks: Callable[[list[EpisodeBlock]], list[list[EpisodeOutcome]]] | None = None,
) -> dict[str, Any]:
    """Evaluate ``policy`` nominally and in every cell (``liquidnode stress``'s core).

    Args:
        policy: the policy (reset before every episode).
        env: Gymnasium MuJoCo id or MJCF path.
        cells: the grid (default: :func:`load_grid` of the default file).
        episodes: episodes per cell (and for the nominal run).
        seed: first reset seed, also the randomisation seed.
        progress: called as ``progress(done, total, label)`` after each cell, if given
            (in-process runs only).
        run_blocks: runs :class:`~liquidnode.sim.episodes.EpisodeBlock` s elsewhere (Ray
            actors) and returns their outcomes, a list per block; the result is then the
            same as in-process, exactly. None runs every cell here, one after another.

    Returns:
        ``{"nominal": {mean_return, falls, smoothness}, "cells": [{perturbation, value,
        mean_return, retained, falls, smoothness}, ...]}``.
    """
    cells = load_grid() if cells is None else cells
    total_mass = total_mass_kg(env)
    specs = [cell_spec(cell.settings, total_mass) for cell in cells]
    results: list[dict[str, Any]] = []
    if run_blocks is not None:
        results = _evaluate_blocks(policy, env, specs, episodes, seed, run_blocks)
    nominal = results[-1] if run_blocks else evaluate(policy, env, None, episodes, seed)
    out_cells = []
    for i, (cell, spec) in enumerate(zip(cells, specs, strict=True)):
        if spec.is_nominal:
            result = nominal
        elif run_blocks is not None:
            result = results[i]
        else:
            result = evaluate(policy, env, spec, episodes, seed)
        out_cells.append(
            {
                "perturbation": cell.perturbation,
                "value": cell.value,
                "mean_return": round(result["mean_return"], 3),
                "retained": round(retained(result["mean_return"], nominal["mean_return"]), 2),
                "falls": result["falls"],
                "smoothness": result["smoothness"],
            }
        )
        if progress is not None:
            progress(i + 1, len(cells), f"{cell.perturbation}={cell.value}")
    return {
        "nominal": {
            "mean_return": round(nominal["mean_return"], 3),
            "falls": nominal["falls"],
            "smoothness": nominal["smoothness"],
        },
        "cells": out_cells,
    }


def _evaluate_blocks(
    policy: Policy,
    env: str,
    specs: list[RandomizationSpec],
    episodes: int,
    seed: int,
    run_blocks: Callable[[list[EpisodeBlock]], list[list[EpisodeOutcome]]],
) -> list[dict[str, Any]]:
    """:func:`evaluate` of every non-nominal spec and (last) of the nominal run, through
    ``run_blocks``: each run cut into blocks of episodes (see :mod:`liquidnode.sim.episodes`),
    their outcomes merged in episode order. Nominal cells get an empty placeholder."""
    from liquidnode.sim import make_plant
    from liquidnode.sim.episodes import in_order, split

    runs: list[RandomizationSpec | None] = [None if s.is_nominal else s for s in specs]
    runs.append(None)
    blocks = [
        EpisodeBlock(
            env, seed, first, count, randomize=spec, randomize_seed=seed, key=k, record_actions=True
        )
        for k, spec in enumerate(runs)
        if spec is not None or k == len(runs) - 1
        for first, count in split(episodes, max(1, episodes // 10))
    ]
    by_run: dict[Any, list[EpisodeOutcome]] = {}
    for block, outcomes in zip(blocks, run_blocks(blocks), strict=True):
        by_run.setdefault(block.key, []).extend(outcomes)
    plant = make_plant(env)
    low, high = plant.spec.action_low, plant.spec.action_high
    plant.disconnect()
    results: list[dict[str, Any]] = []
    for k in range(len(runs)):
        if k not in by_run:
            results.append({})
            continue
        ordered = in_order(by_run[k])
        returns = [o.return_ for o in ordered]
        results.append(
            {
                "mean_return": float(np.mean(returns)),
                "falls": sum(o.terminated for o in ordered),
                "smoothness": smoothness(
                    [o.actions for o in ordered if o.actions is not None], low, high
                ),
                "returns": returns,
            }
        )
    return results


def format_table(result: dict[str, Any], episodes: int) -> str:
    """The result as a plain-text table (one line per cell, nominal first)."""
    nom = result["nominal"]
    head = (
        f"{'perturbation':<14} {'value':>9} {'mean return':>12} {'retained':>9} "
        f"{'falls':>8} {'|Δa| %rng':>10} {'sign chg %':>10}"
    )
    lines = [head, "-" * len(head)]

    def row(name: str, value: Any, mean: float, ret: float, falls: int, sm: dict) -> str:
        v = f"{value:g}" if isinstance(value, float) else str(value)
        return (
            f"{name:<14} {v:>9} {mean:>12.2f} {ret:>8.1f}% {falls:>4}/{episodes:<3} "
            f"{sm['mean_delta_pct']:>10.2f} {sm['sign_change_pct']:>10.1f}"
        )

    lines.append(row("nominal", "-", nom["mean_return"], 100.0, nom["falls"], nom["smoothness"]))
    for c in result["cells"]:
        lines.append(
            row(
                c["perturbation"],
                c["value"],
                c["mean_return"],
                c["retained"],
                c["falls"],
                c["smoothness"],
            )
        )
    return "\n".join(lines)


def plot_heatmap(result: dict[str, Any], path: str | os.PathLike[str], title: str) -> None:
    """Write a heatmap of return retained (%) per perturbation (rows) and value (columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: dict[str, list[dict[str, Any]]] = {}
    for c in result["cells"]:
        rows.setdefault(c["perturbation"], []).append(c)
    width = max(len(v) for v in rows.values())
    grid = np.full((len(rows), width), np.nan)
    for r, cells in enumerate(rows.values()):
        for k, c in enumerate(cells):
            grid[r, k] = c["retained"]
    fig, ax = plt.subplots(figsize=(1.6 * width + 2.5, 0.6 * len(rows) + 1.6))
    im = ax.imshow(np.clip(grid, 0, 100), cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
    for r, cells in enumerate(rows.values()):
        for k, c in enumerate(cells):
            v = c["value"]
            label = f"{v:g}" if isinstance(v, float) else str(v)
            ax.text(k, r, f"{label}\n{c['retained']:.0f}%", ha="center", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), list(rows))
    ax.set_xticks([])
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="return retained, % of nominal")
    fig.tight_layout()
    from liquidnode.controller.logs.plot import save_figure

    try:
        save_figure(fig, path, dpi=120)  # whole or not at all
    finally:
        plt.close(fig)


__all__ = [
    "DEFAULT_GRID",
    "DEFAULT_SEED",
    "PERTURBATIONS",
    "GridCell",
    "evaluate",
    "format_table",
    "load_grid",
    "plot_heatmap",
    "retained",
    "smoothness",
    "stress",
]
