"""Import a trained ``ncps.torch`` CfC / LTC module into the numpy runtime.

``from_ncps(module)`` reads the module's weights and hyper-parameters and returns a
:class:`~controller.policy.Policy` whose ``step`` equals the module's forward pass step by step
(``timespans`` = ``dt * time_scale``). torch is imported lazily, only here; the resulting
policy and its saved file need neither torch nor ncps.

Supported: ``ncps.torch.CfC`` (modes ``default``/``pure``/``no_gate``, int units with any
backbone, or any wiring; with or without ``proj_size``), ``ncps.torch.LTC`` (int units = fully
connected, or any wiring; any mapping, ``implicit_param_constraints`` either way), and the bare
cells ``CfCCell`` (without sparsity mask), ``WiredCfCCell`` and ``LTCCell``. ``mixed_memory=True``
is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liquidnode.controller.cells import wiring as wiring_mod
from liquidnode.controller.policy import Policy
from liquidnode.controller.policy_file import PolicyMetadata

_ACTIVATIONS = {
    "LeCun": "lecun_tanh",
    "Tanh": "tanh",
    "ReLU": "relu",
    "GELU": "gelu",
    "SiLU": "silu",
}
_WIRING_KINDS = {
    "FullyConnected": "fully_connected",
    "Random": "random",
    "NCP": "ncp",
    "AutoNCP": "auto_ncp",
}


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32).copy()


def wiring_from_ncps(w: Any) -> wiring_mod.Wiring:
    """Convert a built ``ncps.wirings.Wiring`` (matrices, layers, constructor parameters)."""
    if not w.is_built():
        raise ValueError("the ncps wiring is not built (no input size); build it first")
    kind = _WIRING_KINDS.get(type(w).__name__, "custom")
    params: dict[str, Any] = {}
    if kind == "auto_ncp":
        params = {
            "units": w.units,
            "output_size": w._output_size,
            "sparsity_level": w._sparsity_level,
            "seed": w._seed,
        }
    elif kind == "ncp":
        params = {
            k: int(getattr(w, f"_{k}"))
            for k in ("sensory_fanout", "inter_fanout", "recurrent_command_synapses", "motor_fanin")
        }
    elif kind == "fully_connected":
        params = {"erev_init_seed": w._erev_init_seed, "self_connections": w.self_connections}
    layers = [[int(i) for i in w.get_neurons_of_layer(idx)] for idx in range(w.num_layers)]
    return wiring_mod.Wiring(
        kind=kind,
        units=int(w.units),
        input_dim=int(w.input_dim),
        output_dim=int(w.output_dim),
        adjacency=np.asarray(w.adjacency_matrix, dtype=np.int32),
        sensory_adjacency=np.asarray(w.sensory_adjacency_matrix, dtype=np.int32),
        layers=layers,
        params=params,
    )


def _cfc_cell(cell: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    import torch

    if cell.sparsity_mask is not None:
        raise ValueError("a bare CfCCell with a sparsity_mask is not supported; use a wired CfC")
    linears = [m for m in cell.backbone or [] if isinstance(m, torch.nn.Linear)]
    acts = [m for m in cell.backbone or [] if type(m).__name__ in _ACTIVATIONS]
    drops = [m.p for m in cell.backbone or [] if isinstance(m, torch.nn.Dropout)]
    act = _ACTIVATIONS[type(acts[0]).__name__] if acts else "lecun_tanh"
    if acts and act == "gelu" and getattr(acts[0], "approximate", "none") != "none":
        raise ValueError("GELU(approximate='tanh') is not supported (ncps uses the exact GELU)")
    config = {
        "type": "cfc",
        "input_size": int(cell.input_size),
        "units": int(cell.hidden_size),
        "mode": cell.mode,
        "activation": act,
        "backbone_units": int(linears[0].out_features) if linears else 0,
        "backbone_layers": int(cell.backbone_layers),
        "backbone_dropout": float(drops[0]) if drops else 0.0,
        "proj_size": None,
    }
    tensors = {}
    for i, lin in enumerate(linears):
        tensors[f"backbone.{i}.weight"] = _np(lin.weight)
        tensors[f"backbone.{i}.bias"] = _np(lin.bias)
    heads = ("ff1",) if cell.mode == "pure" else ("ff1", "ff2", "time_a", "time_b")
    for name in heads:
        tensors[f"{name}.weight"] = _np(getattr(cell, name).weight)
        tensors[f"{name}.bias"] = _np(getattr(cell, name).bias)
    if cell.mode == "pure":
        tensors["w_tau"] = _np(cell.w_tau).reshape(-1)
        tensors["A"] = _np(cell.A).reshape(-1)
    return config, tensors


def _wired_cfc_cell(cell: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    w = wiring_from_ncps(cell._wiring)
    config = {
        "type": "wired_cfc",
        "input_size": w.input_dim,
        "mode": cell._layers[0].mode,
        "wiring": w.to_config(),
        "proj_size": None,
    }
    tensors: dict[str, np.ndarray] = {
        "wiring.adjacency": w.adjacency,
        "wiring.sensory_adjacency": w.sensory_adjacency,
    }
    for idx, layer in enumerate(cell._layers):
        layer_mask = layer.sparsity_mask
        layer.sparsity_mask = None  # read the plain weights through the CfCCell path
        try:
            _, sub = _cfc_cell(layer)
        finally:
            layer.sparsity_mask = layer_mask
        tensors.update({f"layer_{idx}.{k}": v for k, v in sub.items()})
        tensors[f"layer_{idx}.sparsity_mask"] = _np(layer_mask)
    return config, tensors


def _ltc_cell(cell: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    w = wiring_from_ncps(cell._wiring)

    def mapping(value: Any) -> str:
        return value if value in ("affine", "linear") else "none"

    config = {
        "type": "ltc",
        "input_size": w.input_dim,
        "input_mapping": mapping(cell._input_mapping),
        "output_mapping": mapping(cell._output_mapping),
        "ode_unfolds": int(cell._ode_unfolds),
        "epsilon": float(cell._epsilon),
        "implicit_param_constraints": bool(cell._implicit_param_constraints),
        "wiring": w.to_config(),
        "proj_size": None,
    }
    tensors = {name: _np(p) for name, p in cell._params.items()}
    tensors["wiring.adjacency"] = w.adjacency
    tensors["wiring.sensory_adjacency"] = w.sensory_adjacency
    return config, tensors


def from_ncps(module: Any, **metadata: Any) -> Policy:
    """Convert an ``ncps.torch`` ``CfC`` / ``LTC`` module (or bare cell) into a :class:`Policy`.

    Args:
        module: the ncps module; its weights are copied (float32).
        **metadata: further :class:`~controller.policy_file.PolicyMetadata` fields
            (``time_scale``, ``control_rate_hz``, ``env_id``, ``provenance``, ...).

    Raises:
        ValueError: ``mixed_memory=True`` or another unsupported configuration.
        TypeError: ``module`` is not an ncps CfC/LTC module or cell.
    """
    import torch
    from ncps import torch as ncps_torch

    if getattr(module, "use_mixed", False):
        raise ValueError(
            "mixed_memory=True (the LSTM memory cell) is not supported by the liquidnode "
            "runtime; train with mixed_memory=False"
        )
    cell = module.rnn_cell if isinstance(module, (ncps_torch.CfC, ncps_torch.LTC)) else module
    with torch.no_grad():
        if isinstance(cell, ncps_torch.WiredCfCCell):
            config, tensors = _wired_cfc_cell(cell)
        elif isinstance(cell, ncps_torch.CfCCell):
            config, tensors = _cfc_cell(cell)
        elif isinstance(cell, ncps_torch.LTCCell):
            config, tensors = _ltc_cell(cell)
        else:
            raise TypeError(
                f"from_ncps expects an ncps.torch CfC/LTC module or cell, got {type(module)!r}"
            )
        fc = getattr(module, "fc", None)
        if isinstance(fc, torch.nn.Linear):
            config["proj_size"] = int(fc.out_features)
            tensors["proj.weight"] = _np(fc.weight)
            tensors["proj.bias"] = _np(fc.bias)

    from liquidnode.controller import cells

    built = cells.build_cell(config, tensors)
    metadata.setdefault("provenance", {"created_by": "liquidnode.controller.ncps_import.from_ncps"})
    meta = PolicyMetadata(
        cell=config, obs_dim=built.input_size, act_dim=built.output_dim, **metadata
    )
    return Policy(meta, built)
