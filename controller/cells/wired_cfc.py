"""Wired CfC (NCP / AutoNCP sparsity) in numpy, equal to ``ncps.torch.WiredCfCCell``.

The wiring's layers are stepped in order (NCP: inter, command, motor). Layer ``l`` is a CfC cell
without backbone whose input is the previous layer's new state (layer 0: the cell input ``x``);
its ``ff1``/``ff2`` weights are multiplied by the layer's sparsity mask (the wiring's synapses
into the layer, plus all-ones recurrence within the layer); ``time_a``/``time_b`` are dense.

- ``x``: float32 ``(input_size,)``.
- ``h``: float32 ``(units,)``, the layers' states concatenated **in layer order**
  (for NCP: ``[inter | command | motor]``, not neuron-id order).
- ``ts``: elapsed time of this step in the policy's time unit (``dt [s] * time_scale``).
- output ``y``: float32 ``(output_dim,)``, the last layer's (motor) new state.

Tensors: ``layer_{l}.<cfc tensor>`` for each layer (see :mod:`controller.cells.cfc`),
``layer_{l}.sparsity_mask`` float32 ``(layer_units, layer_inputs + layer_units)`` (ncps' layout),
and the wiring's int32 ``wiring.adjacency`` ``(units, units)`` and ``wiring.sensory_adjacency``
``(input_size, units)``. The stored masks must equal the ones the wiring implies.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liquidnode.controller.cells import wiring as wiring_mod
from liquidnode.controller.cells.cfc import MODES, CfCCell
from liquidnode.controller.cells.cfc import tensor_shapes as cfc_shapes


def check_config(config: dict[str, Any]) -> list[str]:
    """Problems with a ``wired_cfc`` cell config (empty list when it is well formed)."""
    problems = []
    if config.get("mode") not in MODES:
        problems.append(f"cell.mode must be one of {MODES}, got {config.get('mode')!r}")
    problems += wiring_mod.check_config(config.get("wiring"))
    n_in = config.get("input_size")
    if not problems and n_in != config["wiring"]["input_dim"]:
        problems.append(
            f"cell.input_size {n_in!r} differs from wiring.input_dim "
            f"{config['wiring']['input_dim']}"
        )
    return problems


def _layer_config(config: dict[str, Any], n_in: int, units: int) -> dict[str, Any]:
    return {
        "input_size": n_in,
        "units": units,
        "mode": config["mode"],
        "activation": "lecun_tanh",
        "backbone_layers": 0,
        "backbone_units": 0,
        "backbone_dropout": 0.0,
    }


def _layer_inputs(config: dict[str, Any]) -> list[int]:
    layers = config["wiring"]["layers"]
    return [config["input_size"]] + [len(layer) for layer in layers[:-1]]


def tensor_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the tensors a ``wired_cfc`` cell needs (``wiring.*`` are int32)."""
    w = config["wiring"]
    shapes: dict[str, tuple[int, ...]] = {
        "wiring.adjacency": (w["units"], w["units"]),
        "wiring.sensory_adjacency": (w["input_dim"], w["units"]),
    }
    for idx, (layer, n_in) in enumerate(zip(w["layers"], _layer_inputs(config), strict=True)):
        sub = cfc_shapes(_layer_config(config, n_in, len(layer)))
        shapes.update({f"layer_{idx}.{k}": v for k, v in sub.items()})
        shapes[f"layer_{idx}.sparsity_mask"] = (len(layer), n_in + len(layer))
    return shapes


def layer_masks(wiring: wiring_mod.Wiring) -> list[np.ndarray]:
    """Per-layer float32 masks ``(layer_units, layer_inputs + layer_units)``, as in ncps."""
    masks = []
    for idx, neurons in enumerate(wiring.layers):
        if idx == 0:
            into = wiring.sensory_adjacency[:, neurons]
        else:
            into = wiring.adjacency[:, neurons][wiring.layers[idx - 1], :]
        full = np.concatenate([into, np.ones((len(neurons), len(neurons)))], axis=0)
        masks.append(np.abs(full.T).astype(np.float32))
    return masks


class WiredCfCCell:
    """Numpy wired CfC: per-layer :class:`CfCCell` with sparsity masks (see module docstring)."""

    def __init__(self, config: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        """Build from a ``wired_cfc`` config and its tensors; raises ValueError on a mismatch."""
        problems = check_config(config)
        if problems:
            raise ValueError("; ".join(problems))
        self.config = dict(config)
        self.wiring = wiring_mod.from_config(
            config["wiring"], tensors["wiring.adjacency"], tensors["wiring.sensory_adjacency"]
        )
        self.input_size = int(config["input_size"])
        self.state_dim = self.wiring.units
        self.output_dim = len(self.wiring.layers[-1])
        self._tensors = {k: np.array(v) for k, v in tensors.items()}
        self._cells: list[CfCCell] = []
        self._slices: list[slice] = []
        start = 0
        masks = layer_masks(self.wiring)
        for idx, (layer, n_in) in enumerate(
            zip(self.wiring.layers, _layer_inputs(config), strict=True)
        ):
            prefix = f"layer_{idx}."
            stored = np.asarray(tensors[prefix + "sparsity_mask"], dtype=np.float32)
            if stored.shape != masks[idx].shape or not np.array_equal(stored, masks[idx]):
                raise ValueError(
                    f"tensor {prefix}sparsity_mask does not match the mask the wiring implies "
                    f"(layer {idx}, shape {stored.shape} vs {masks[idx].shape})"
                )
            sub = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            sub.pop("sparsity_mask")
            cell = CfCCell(_layer_config(config, n_in, len(layer)), sub, sparsity_mask=stored)
            self._cells.append(cell)
            self._slices.append(slice(start, start + len(layer)))
            start += len(layer)
        self._h = np.zeros(self.state_dim, dtype=np.float32)
        self._pairs = list(zip(self._cells, self._slices, strict=True))

    def weights(self) -> dict[str, np.ndarray]:
        """The tensors as stored in a policy file (float32 weights/masks, int32 wiring)."""
        return {k: v.copy() for k, v in self._tensors.items()}

    def step(self, x: np.ndarray, h: np.ndarray, ts: float) -> tuple[np.ndarray, np.ndarray]:
        """Advance one step; returns ``(y (output_dim,), h' (units,))``, internal buffers."""
        out = self._h
        inp = x
        y = x
        for cell, sl in self._pairs:
            y, _ = cell.step(inp, h[sl], ts)
            out[sl] = y
            inp = y
        return y, out
