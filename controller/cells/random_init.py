"""Random cell weights in numpy, drawn like ncps initialises them (for tests and placeholders).

CfC: every weight matrix Xavier-uniform, biases uniform ``±1/sqrt(fan_in)`` (torch ``Linear``),
``pure`` mode ``w_tau = 0``, ``A = 1``. LTC: ncps' init ranges (``gleak`` 0.001..1, ``vleak``
-0.2..0.2, ``cm`` 0.4..0.6, ``w`` 0.001..1, ``sigma`` 3..8, ``mu`` 0.3..0.8; reversal potentials
= the wiring's polarities; mappings ``w = 1``, ``b = 0``). LSTM / GRU: every tensor uniform
``±1/sqrt(units)`` (torch ``LSTMCell`` / ``GRUCell``); MLP: torch ``Linear``'s uniform
``±1/sqrt(fan_in)``; the baselines' readout to ``act_dim`` as a torch ``Linear``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liquidnode.controller.cells import cfc, gru, lstm, mlp, wired_cfc, wiring

_F32 = np.float32


def _xavier(rng: np.random.Generator, out: int, inp: int) -> np.ndarray:
    bound = float(np.sqrt(6.0 / (inp + out)))
    return rng.uniform(-bound, bound, (out, inp)).astype(_F32)


def _bias(rng: np.random.Generator, out: int, inp: int) -> np.ndarray:
    bound = 1.0 / float(np.sqrt(inp))
    return rng.uniform(-bound, bound, out).astype(_F32)


def _cfc_tensors(rng: np.random.Generator, config: dict[str, Any]) -> dict[str, np.ndarray]:
    tensors = {}
    for name, shape in cfc.tensor_shapes(config).items():
        if name == "w_tau":
            tensors[name] = np.zeros(shape, _F32)
        elif name == "A":
            tensors[name] = np.ones(shape, _F32)
        elif name.endswith(".weight"):
            tensors[name] = _xavier(rng, *shape)
        else:  # bias: fan_in of the matching weight
            w_shape = cfc.tensor_shapes(config)[name[: -len("bias")] + "weight"]
            tensors[name] = _bias(rng, shape[0], w_shape[1])
    return tensors


def _ltc_tensors(rng: np.random.Generator, w: wiring.Wiring) -> dict[str, np.ndarray]:
    n, s, m = w.units, w.input_dim, w.output_dim

    def u(lo: float, hi: float, *shape: int) -> np.ndarray:
        return rng.uniform(lo, hi, shape).astype(_F32)

    return {
        "gleak": u(0.001, 1.0, n),
        "vleak": u(-0.2, 0.2, n),
        "cm": u(0.4, 0.6, n),
        "sigma": u(3, 8, n, n),
        "mu": u(0.3, 0.8, n, n),
        "w": u(0.001, 1.0, n, n),
        "erev": w.adjacency.astype(_F32),
        "sparsity_mask": np.abs(w.adjacency).astype(_F32),
        "sensory_sigma": u(3, 8, s, n),
        "sensory_mu": u(0.3, 0.8, s, n),
        "sensory_w": u(0.001, 1.0, s, n),
        "sensory_erev": w.sensory_adjacency.astype(_F32),
        "sensory_sparsity_mask": np.abs(w.sensory_adjacency).astype(_F32),
        "input_w": np.ones(s, _F32),
        "input_b": np.zeros(s, _F32),
        "output_w": np.ones(m, _F32),
        "output_b": np.zeros(m, _F32),
        "wiring.adjacency": w.adjacency.copy(),
        "wiring.sensory_adjacency": w.sensory_adjacency.copy(),
    }


def _baseline(
    rng: np.random.Generator,
    kind: str,
    obs_dim: int,
    act_dim: int,
    units: int,
    options: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """An ``lstm`` / ``gru`` / ``mlp`` config with ``proj_size = act_dim`` and its tensors."""
    config: dict[str, Any] = {"type": kind, "input_size": obs_dim}
    if kind == "mlp":
        config["hidden_units"] = [units] * int(options.get("hidden_layers", 2))
        config["activation"] = options.get("activation", "tanh")
        config["frames"] = int(options.get("frames", 1))
        shapes = mlp.tensor_shapes(config)
        tensors = {
            k: _bias(rng, shape[0], shapes[k[: -len("bias")] + "weight"][1])
            if k.endswith(".bias")
            else rng.uniform(-1, 1, shape).astype(_F32) / _F32(np.sqrt(shape[1]))
            for k, shape in shapes.items()
        }
    else:
        config["units"] = units
        shapes = (lstm if kind == "lstm" else gru).tensor_shapes(config)
        bound = 1.0 / float(np.sqrt(units))
        tensors = {k: rng.uniform(-bound, bound, s).astype(_F32) for k, s in shapes.items()}
    config["proj_size"] = act_dim
    tensors["proj.weight"] = _xavier(rng, act_dim, units)
    tensors["proj.bias"] = _bias(rng, act_dim, units)
    return config, tensors


def random_cell(
    kind: str, obs_dim: int, act_dim: int, units: int, seed: int, **options: Any
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Config and tensors of a random cell mapping ``obs_dim`` inputs to ``act_dim`` outputs.

    ``kind``: ``"cfc"`` (options: ``mode``, ``activation``, ``backbone_units``,
    ``backbone_layers``, ``backbone_dropout``; a projection is added when ``units != act_dim``),
    ``"wired_cfc"`` (AutoNCP; options ``mode``, ``sparsity_level``), ``"ltc"`` (AutoNCP; option
    ``sparsity_level``), ``"ltc_fc"`` (fully connected LTC, ``act_dim`` motor neurons), or
    a baseline with a linear readout to ``act_dim``: ``"lstm"``, ``"gru"``, ``"mlp"`` (options
    ``hidden_layers`` (default 2) of ``units``, ``activation`` ``tanh``/``relu``, ``frames``).
    """
    rng = np.random.default_rng(seed)
    if kind in ("lstm", "gru", "mlp"):
        return _baseline(rng, kind, obs_dim, act_dim, units, options)
    if kind == "cfc":
        config: dict[str, Any] = {
            "type": "cfc",
            "input_size": obs_dim,
            "units": units,
            "mode": options.get("mode", "default"),
            "activation": options.get("activation", "lecun_tanh"),
            "backbone_units": options.get("backbone_units", 128),
            "backbone_layers": options.get("backbone_layers", 1),
            "backbone_dropout": options.get("backbone_dropout", 0.0),
            "proj_size": None if units == act_dim else act_dim,
        }
        tensors = _cfc_tensors(rng, config)
        if config["proj_size"] is not None:
            tensors["proj.weight"] = _xavier(rng, act_dim, units)
            tensors["proj.bias"] = _bias(rng, act_dim, units)
        return config, tensors
    if kind in ("wired_cfc", "ltc"):
        w = wiring.auto_ncp(units, act_dim, obs_dim, options.get("sparsity_level", 0.5), seed)
    elif kind == "ltc_fc":
        w = wiring.fully_connected(units, obs_dim, act_dim, erev_init_seed=seed)
    else:
        raise ValueError(
            f"unknown cell kind {kind!r}, expected cfc, wired_cfc, ltc, ltc_fc, lstm, gru or mlp"
        )
    if kind == "wired_cfc":
        config = {
            "type": "wired_cfc",
            "input_size": obs_dim,
            "mode": options.get("mode", "default"),
            "wiring": w.to_config(),
            "proj_size": None,
        }
        tensors = {"wiring.adjacency": w.adjacency, "wiring.sensory_adjacency": w.sensory_adjacency}
        masks = wired_cfc.layer_masks(w)
        for idx, (layer, n_in) in enumerate(
            zip(w.layers, wired_cfc._layer_inputs(config), strict=True)
        ):
            sub = wired_cfc._layer_config(config, n_in, len(layer))
            for k, v in _cfc_tensors(rng, sub).items():
                tensors[f"layer_{idx}.{k}"] = v
            tensors[f"layer_{idx}.sparsity_mask"] = masks[idx]
        return config, tensors
    config = {
        "type": "ltc",
        "input_size": obs_dim,
        "input_mapping": "affine",
        "output_mapping": "affine",
        "ode_unfolds": 6,
        "epsilon": 1e-8,
        "implicit_param_constraints": bool(options.get("implicit_param_constraints", True)),
        "wiring": w.to_config(),
        "proj_size": None,
    }
    return config, _ltc_tensors(rng, w)
