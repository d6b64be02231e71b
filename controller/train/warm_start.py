"""Warm start: load a policy file's weights and observation statistics into a fresh actor.

``liquidnode train --init-from POLICY`` fine-tunes an existing policy (e.g. a shipped one,
retrained with randomisation) instead of starting from random weights. The actor must have
the architecture the file describes (same ``--cell``, ``--units``, ``--backbone-units``);
the critic starts fresh.

How the weights find their parameters: the export (:func:`controller.ncps_import.from_ncps`)
copies each torch tensor with one helper call; exporting the fresh module once with that helper
wrapped records which torch tensor became which policy-file tensor, and the file's values are
copied back into exactly those tensors. Tensors the export derives rather than copies (wiring
masks, adjacency) are checked for equality instead, so a different wiring is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from liquidnode.controller import ncps_import
from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.policy import Policy
from liquidnode.controller.policy_file import read_policy_file
from liquidnode.controller.train.normalization import ObsNormalizer

#: Observation count given to the loaded statistics: large, so they stay what the policy saw.
_LOADED_COUNT = 1e6


def _exported_sources(cell_module: nn.Module) -> tuple[dict[str, np.ndarray], dict[int, Any]]:
    """Export ``cell_module`` once, recording which torch tensor each exported array came from."""
    sources: dict[int, Any] = {}
    original = ncps_import._np

    def recording(t: Any) -> np.ndarray:
        arr = original(t)
        sources[id(arr)] = t
        return arr

    ncps_import._np = recording
    try:
        _, tensors = _cell_tensors(cell_module)
    finally:
        ncps_import._np = original
    return tensors, sources


def _cell_tensors(cell_module: nn.Module) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from ncps import torch as ncps_torch

    cell = cell_module.rnn_cell if hasattr(cell_module, "rnn_cell") else cell_module
    with torch.no_grad():
        if isinstance(cell, ncps_torch.WiredCfCCell):
            config, tensors = ncps_import._wired_cfc_cell(cell)
        elif isinstance(cell, ncps_torch.CfCCell):
            config, tensors = ncps_import._cfc_cell(cell)
        elif isinstance(cell, ncps_torch.LTCCell):
            config, tensors = ncps_import._ltc_cell(cell)
        else:
            raise LiquidNodeError(
                f"--init-from supports the liquid cells (cfc, ltc, ncp), not {type(cell).__name__}"
            )
        fc = getattr(cell_module, "fc", None)
        if isinstance(fc, nn.Linear):
            tensors["proj.weight"] = ncps_import._np(fc.weight)
            tensors["proj.bias"] = ncps_import._np(fc.bias)
    return config, tensors


def warm_start(
    path: str | Path,
    cell_module: nn.Module,
    obs_norm: ObsNormalizer,
    env_id: str,
    latency_input: bool = False,
    low_pass_hz: float | None = None,
) -> dict[str, Any]:
    """Copy the policy file's cell weights into ``cell_module`` and its observation
    statistics into ``obs_norm``.

    With ``latency_input`` (the actor is told its latency, one more input after the
    observation) and a file that is not, the file's CfC gets a zero weight column for that input
    (:func:`with_latency_column`): the actor starts as exactly the file's policy, whatever it
    is told. A file trained behind an action low-pass (``action.low_pass_hz``) is fine-tuned
    behind the same one (``low_pass_hz``); a file without one may be fine-tuned behind one.

    Returns:
        ``{"path", "env_id", "command"}`` (the file's training command) for the new
        policy's provenance.

    Raises:
        LiquidNodeError: the file is not a policy for ``env_id`` or its cell does not have the
            actor's architecture (the message names the first mismatch).
    """
    record = load_statistics(path, obs_norm, env_id)
    meta, file_tensors = read_policy_file(path)
    if meta.latency_input is not None and not latency_input:
        raise LiquidNodeError(
            f"--init-from {path} is told its actuation latency (latency_input); train it with "
            "--latency-input"
        )
    file_cutoff = meta.action.get("low_pass_hz")
    if file_cutoff is not None and file_cutoff != low_pass_hz:
        raise LiquidNodeError(
            f"--init-from {path} acts behind a {file_cutoff:g} Hz action low-pass "
            f"(action.low_pass_hz); train it with --action-low-pass {file_cutoff:g}"
        )
    if latency_input and meta.latency_input is None:
        file_tensors = with_latency_column(file_tensors, meta.cell, meta.obs_dim, path)
    fresh, sources = _exported_sources(cell_module)
    with torch.no_grad():
        for name, arr in fresh.items():
            key = f"cell.{name}"
            if key not in file_tensors:
                raise LiquidNodeError(
                    f"--init-from {path}: its cell has no tensor {name!r}; train with the "
                    "same --cell/--units/--backbone-units as the file"
                )
            value = np.asarray(file_tensors[key])
            if value.size != arr.size:
                raise LiquidNodeError(
                    f"--init-from {path}: tensor {name!r} has {value.size} values, the actor "
                    f"{arr.size}; train with the same --cell/--units/--backbone-units"
                )
            target = sources.get(id(arr), sources.get(id(arr.base)))
            if isinstance(target, torch.Tensor) and target.requires_grad:
                target.copy_(torch.as_tensor(value, dtype=target.dtype).reshape(target.shape))
            elif not np.array_equal(value.reshape(-1), np.asarray(arr).reshape(-1)):
                raise LiquidNodeError(
                    f"--init-from {path}: derived tensor {name!r} (wiring) differs from the "
                    "actor's; use the same --seed and --units as the file's training"
                )
    return record


def with_latency_column(
    tensors: dict[str, np.ndarray], cell: dict[str, Any], obs_dim: int, path: str | Path
) -> dict[str, np.ndarray]:
    """A CfC policy file's tensors with a zero weight column for a latency input inserted at
    cell input ``obs_dim`` (after the observation, before any fed-back action and the hidden
    state) in every layer that reads the cell input: the backbone's first layer, or without a
    backbone the heads (``ff1``, ``ff2``, ``time_a``, ``time_b``).

    Raises:
        LiquidNodeError: the cell is not a plain CfC (an LTC's or a wired CfC's input layers
            are shaped by their wiring; train those with --latency-input from scratch).
    """
    if cell.get("type") != "cfc":
        raise LiquidNodeError(
            f"--init-from {path}: adding the latency input to a {cell.get('type')} cell is not "
            "supported (only cfc); train with --latency-input from scratch"
        )
    readers = ["backbone.0.weight"] if int(cell.get("backbone_layers", 0)) > 0 else [
        name for name in ("ff1.weight", "ff2.weight", "time_a.weight", "time_b.weight")
        if f"cell.{name}" in tensors
    ]  # fmt: skip
    out = dict(tensors)
    for name in readers:
        w = np.asarray(tensors[f"cell.{name}"])
        out[f"cell.{name}"] = np.insert(w, obs_dim, 0.0, axis=1)
    return out


def load_statistics(path: str | Path, obs_norm: ObsNormalizer, env_id: str) -> dict[str, Any]:
    """Copy only the policy file's observation statistics into ``obs_norm`` (a fresh cell,
    of any size, then sees its inputs scaled as the file's did).

    Returns the same record as :func:`warm_start`.

    Raises:
        LiquidNodeError: the file is not a policy for ``env_id``.
    """
    policy = Policy.load(path)
    if policy.metadata.env_id and policy.metadata.env_id != env_id:
        raise LiquidNodeError(f"--init-from {path} was trained on {policy.metadata.env_id}")
    std = policy.obs_std.astype(np.float64)
    obs_norm.rms.load_state_dict(
        {
            "mean": policy.obs_mean.astype(np.float64),
            "var": np.maximum(std**2 - 1e-8, 0.0),
            "count": _LOADED_COUNT,
        }
    )
    return {
        "path": str(path),
        "env_id": policy.metadata.env_id,
        "command": policy.metadata.provenance.get("command"),
    }
