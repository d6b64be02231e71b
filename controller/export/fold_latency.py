"""Fold a policy's latency input into its first layer, for exports that run without it.

A policy with a latency input (:mod:`controller.latency_input`) gets one constant value per
episode, ``ell``, at cell input ``obs_dim``. A firmware that runs the policy knows its own
latency when it is built, so the exporters take the policy as it is told now
(:attr:`Policy.latency_ticks`, set by :meth:`Policy.set_latency`, 0 until then) and fold
``ell`` into the bias of the layer that reads the input::

    W [x | ell | f | h] + b  =  W' [x | f | h] + (b + W[:, obs_dim] * ell)

(``W'`` is ``W`` without that column; the sum is taken in float64 and rounded once), which
leaves an ordinary policy, equal to the told one up to that rounding.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from liquidnode.controller.policy import Policy

#: CfC layers that read the cell input ``[x | h]``: the backbone's first, or without a
#: backbone the four heads.
_BACKBONE = ("backbone.0",)
_HEADS = ("ff1", "ff2", "time_a", "time_b")


def fold_latency(policy: Policy) -> Policy:
    """``policy`` with its latency input folded in at the latency it is told (a new policy;
    ``policy`` itself is returned when it has no latency input).

    The result's provenance gains ``latency_folded``: ``{"ticks": told latency}``.

    Raises:
        ExportError: the cell is not a CfC (only its input layers are affine in the input).
    """
    from liquidnode.controller.export.lowering import ExportError
    from liquidnode.controller.policy import Policy

    told = policy.latency_input
    if told is None:
        return policy
    meta = policy.metadata
    config = dict(meta.cell)
    if config.get("type") != "cfc":
        raise ExportError(
            f"cannot fold the latency input of a {config.get('type')!r} cell (cfc only)"
        )
    tensors = policy.tensors()
    layers = _BACKBONE if "cell.backbone.0.weight" in tensors else _HEADS
    ell = told.normalise(policy.latency_ticks)
    col = policy.obs_dim
    for name in layers:
        weight = tensors[f"cell.{name}.weight"].astype(np.float64)
        bias = tensors[f"cell.{name}.bias"].astype(np.float64) + weight[:, col] * ell
        tensors[f"cell.{name}.weight"] = np.delete(weight, col, axis=1).astype(np.float32)
        tensors[f"cell.{name}.bias"] = bias.astype(np.float32)
    config["input_size"] = int(config["input_size"]) - 1
    provenance = {**meta.provenance, "latency_folded": {"ticks": policy.latency_ticks}}
    folded = dataclasses.replace(meta, cell=config, latency_input=None, provenance=provenance)
    return Policy.from_tensors(folded, tensors)
