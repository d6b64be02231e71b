"""Export the trained actor to the runtime: torch modules -> :class:`controller.policy.Policy`.

The cell weights of a liquid cell go through :func:`controller.ncps_import.from_ncps` (the
runtime's own importer of ncps modules, tested for equivalence separately), those of a
baseline cell through its :meth:`~controller.train.baselines.BaselineCell.runtime_cell`; this
module adds what the trainer owns, through the :class:`~controller.policy.Policy` constructor:

| policy field | value |
|---|---|
| ``obs_mean`` / ``obs_std`` | frozen running statistics, ``std = sqrt(var + eps)``, env units |
| ``normalization.clip`` | ``--obs-clip`` |
| ``action_scale`` | ``(high - low) / 2`` of the env's action space |
| ``action_offset`` | ``(high + low) / 2`` of the env's action space |
| ``action.squash`` | ``tanh`` (the Gaussian's mean is ``tanh(y)`` in normalised units) |
| ``action.low_pass_hz`` | ``--action-low-pass`` (absent without it) |
| ``time_scale`` | ``1 / nominal control period`` (the cell saw ``ts = 1`` at the nominal rate) |
| ``control_rate_hz`` | nominal control rate of the env |
| ``observation_space`` / ``action_space`` | the env's bounds (``null`` = infinite), names |
| ``env_id`` / ``provenance`` | env id; how the policy was made (``trained: true``, command, ...) |

So ``Policy.step(obs, dt)`` returns exactly the deterministic action the trainer evaluates:
``offset + scale * tanh(cell(clip((obs - mean) / std), h, dt * time_scale))``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from liquidnode.controller import cells
from liquidnode.controller.latency_input import LatencyInput
from liquidnode.controller.policy import Policy
from liquidnode.controller.policy_file import PolicyMetadata
from liquidnode.controller.train.baselines import BaselineCell
from liquidnode.controller.train.envs import EnvInfo
from liquidnode.controller.train.normalization import ObsNormalizer


@dataclass(frozen=True)
class ExportSpec:
    """Everything about the export that does not change during training.

    Attributes:
        info: the env's sizes, bounds and control period.
        cell: ``--cell`` (``cfc``/``ltc``/``ncp``/``lstm``/``gru``/``mlp``), recorded in the
            provenance.
        squash: ``"tanh"`` or ``"none"``.
        time_scale: cell time input per second of dt.
        act_scale: half-range of the action space, ``(act_dim,)``.
        act_offset: centre of the action space, ``(act_dim,)``.
        feedback: the cell's last ``act_dim`` inputs are the previous squashed action
            (``action.feedback``; see :mod:`controller.policy`).
        latency_input: the cell's input after the observation is the normalised actuation
            latency (``latency_input``; see :mod:`controller.latency_input`), or None.
        low_pass_hz: cut-off of the action low-pass the policy was trained behind
            (``action.low_pass_hz``; see :mod:`controller.action_filter`), or None.
    """

    info: EnvInfo
    cell: str
    squash: str
    time_scale: float
    act_scale: np.ndarray
    act_offset: np.ndarray
    feedback: bool = False
    latency_input: LatencyInput | None = None
    low_pass_hz: float | None = None


def _bounds(values: np.ndarray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, np.float64)]


def export_policy(
    cell_module: nn.Module,
    obs_norm: ObsNormalizer,
    spec: ExportSpec,
    provenance: dict[str, Any],
) -> Policy:
    """Build the runtime policy for the current weights and frozen normalisation.

    Args:
        cell_module: the actor's ncps.torch ``CfC`` / ``LTC`` module or baseline cell.
        obs_norm: the observation normaliser (its current statistics are frozen in).
        spec: the env / action-mapping description.
        provenance: extra provenance entries (``trained: true`` is always set).

    Returns:
        A :class:`Policy` (numpy only) whose ``step`` reproduces the trainer's deterministic
        actions.
    """
    base = _runtime_policy(cell_module)
    info = spec.info
    meta = dataclasses.replace(
        base.metadata,
        obs_dim=base.metadata.obs_dim
        - (base.metadata.act_dim if spec.feedback else 0)
        - (spec.latency_input is not None),
        observation_space={
            "low": _bounds(info.obs_low),
            "high": _bounds(info.obs_high),
            "names": list(info.obs_names) if info.obs_names else None,
            "units": list(info.obs_units) if info.obs_units else None,
        },
        action_space={
            "low": _bounds(info.act_low),
            "high": _bounds(info.act_high),
            "names": list(info.act_names) if info.act_names else None,
            "units": list(info.act_units) if info.act_units else None,
        },
        normalization={"clip": float(obs_norm.clip)},
        action={
            "squash": spec.squash,
            **({"feedback": True} if spec.feedback else {}),
            **({"low_pass_hz": float(spec.low_pass_hz)} if spec.low_pass_hz else {}),
        },
        time_scale=float(spec.time_scale),
        latency_input=None if spec.latency_input is None else spec.latency_input.as_metadata(),
        control_rate_hz=float(info.control_rate_hz),
        env_id=info.env_id,
        provenance={"trained": True, "trainer_cell": spec.cell, **provenance},
    )
    return Policy(
        meta,
        base.cell,
        obs_mean=obs_norm.mean.astype(np.float32),
        obs_std=obs_norm.std.astype(np.float32),
        action_scale=np.asarray(spec.act_scale, np.float32),
        action_offset=np.asarray(spec.act_offset, np.float32),
    )


def _runtime_policy(cell_module: nn.Module) -> Policy:
    """The bare runtime policy (identity mappings) whose cell equals ``cell_module``."""
    if isinstance(cell_module, BaselineCell):
        config, tensors = cell_module.runtime_cell()
        cell = cells.build_cell(config, tensors)
        meta = PolicyMetadata(cell=config, obs_dim=cell.input_size, act_dim=cell.output_dim)
        return Policy(meta, cell)
    from liquidnode.controller.ncps_import import from_ncps

    return from_ncps(cell_module)
