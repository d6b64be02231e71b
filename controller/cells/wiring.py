"""Wirings: which neuron talks to which, built exactly as ``ncps.wirings`` builds them.

A wiring fixes the sparsity of a wired CfC or an LTC. Neuron ids run ``0 .. units-1``; for NCP
wirings the ids are ordered ``[motor | command | inter]`` (motor neurons first, so the first
``output_dim`` neurons are the outputs), and the *layers* (what a wired CfC steps through, in
order) are ``[inter, command, motor]``.

Matrices (int32, entries -1 / 0 / +1 = inhibitory / none / excitatory synapse):

- ``adjacency``: shape ``(units, units)``, ``adjacency[src, dest]``.
- ``sensory_adjacency``: shape ``(input_dim, units)``, ``sensory_adjacency[src, dest]``.

The constructors reproduce the random draws of ncps 1.0.1 bit for bit (same seeds, same RNG
calls), so ``AutoNCP(16, 4, seed=22222)`` here equals ncps' ``AutoNCP(16, 4, seed=22222)``.
The policy file stores the matrices and layers themselves, so loading never rebuilds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Wiring:
    """A built wiring.

    Attributes:
        kind: ``"fully_connected"``, ``"random"``, ``"ncp"``, ``"auto_ncp"`` or ``"custom"``.
        units: number of neurons (the state size of an LTC or wired CfC).
        input_dim: number of sensory inputs.
        output_dim: number of motor neurons (outputs); the outputs are neurons ``0..output_dim-1``.
        adjacency: int32 ``(units, units)`` synapse polarities between neurons.
        sensory_adjacency: int32 ``(input_dim, units)`` synapse polarities from inputs to neurons.
        layers: neuron ids of each layer, in stepping order (one layer unless NCP).
        params: the constructor's arguments (for the record; not needed to run).
    """

    kind: str
    units: int
    input_dim: int
    output_dim: int
    adjacency: np.ndarray
    sensory_adjacency: np.ndarray
    layers: list[list[int]]
    params: dict[str, Any] = field(default_factory=dict)

    def to_config(self) -> dict[str, Any]:
        """JSON-able description (the matrices live in tensors, not here)."""
        return {
            "kind": self.kind,
            "units": self.units,
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "layers": [list(map(int, layer)) for layer in self.layers],
            "params": dict(self.params),
        }


def fully_connected(
    units: int,
    input_dim: int,
    output_dim: int | None = None,
    erev_init_seed: int = 1111,
    self_connections: bool = True,
) -> Wiring:
    """``ncps.wirings.FullyConnected(units, output_dim, erev_init_seed, self_connections)``."""
    output_dim = units if output_dim is None else output_dim
    rng = np.random.default_rng(erev_init_seed)
    adj = np.zeros((units, units), dtype=np.int32)
    for src in range(units):
        for dest in range(units):
            if src == dest and not self_connections:
                continue
            adj[src, dest] = rng.choice([-1, 1, 1])
    sadj = np.zeros((input_dim, units), dtype=np.int32)
    for src in range(input_dim):
        for dest in range(units):
            sadj[src, dest] = rng.choice([-1, 1, 1])
    params = {"erev_init_seed": erev_init_seed, "self_connections": self_connections}
    return Wiring(
        "fully_connected", units, input_dim, output_dim, adj, sadj, [list(range(units))], params
    )


def ncp(
    inter_neurons: int,
    command_neurons: int,
    motor_neurons: int,
    sensory_fanout: int,
    inter_fanout: int,
    recurrent_command_synapses: int,
    motor_fanin: int,
    input_dim: int,
    seed: int = 22222,
    *,
    kind: str = "ncp",
    params: dict[str, Any] | None = None,
) -> Wiring:
    """``ncps.wirings.NCP(...)`` built for ``input_dim`` sensory inputs."""
    if motor_fanin > command_neurons:
        raise ValueError(f"motor_fanin {motor_fanin} > {command_neurons} command neurons")
    if sensory_fanout > inter_neurons:
        raise ValueError(f"sensory_fanout {sensory_fanout} > {inter_neurons} inter neurons")
    if inter_fanout > command_neurons:
        raise ValueError(f"inter_fanout {inter_fanout} > {command_neurons} command neurons")
    units = inter_neurons + command_neurons + motor_neurons
    rng = np.random.RandomState(seed)
    motor = list(range(0, motor_neurons))
    command = list(range(motor_neurons, motor_neurons + command_neurons))
    inter = list(range(motor_neurons + command_neurons, units))
    sensory = list(range(input_dim))
    adj = np.zeros((units, units), dtype=np.int32)
    sadj = np.zeros((input_dim, units), dtype=np.int32)

    # sensory -> inter
    unreachable = list(inter)
    for src in sensory:
        for dest in rng.choice(inter, size=sensory_fanout, replace=False):
            if dest in unreachable:
                unreachable.remove(dest)
            sadj[src, dest] = rng.choice([-1, 1])
    fanin = int(np.clip(int(input_dim * sensory_fanout / inter_neurons), 1, input_dim))
    for dest in unreachable:
        for src in rng.choice(sensory, size=fanin, replace=False):
            sadj[src, dest] = rng.choice([-1, 1])

    # inter -> command
    unreachable = list(command)
    for src in inter:
        for dest in rng.choice(command, size=inter_fanout, replace=False):
            if dest in unreachable:
                unreachable.remove(dest)
            adj[src, dest] = rng.choice([-1, 1])
    fanin = int(np.clip(int(inter_neurons * inter_fanout / command_neurons), 1, command_neurons))
    for dest in unreachable:
        for src in rng.choice(inter, size=fanin, replace=False):
            adj[src, dest] = rng.choice([-1, 1])

    # recurrent command
    for _ in range(recurrent_command_synapses):
        src = rng.choice(command)
        dest = rng.choice(command)
        adj[src, dest] = rng.choice([-1, 1])

    # command -> motor
    unreachable = list(command)
    for dest in motor:
        for src in rng.choice(command, size=motor_fanin, replace=False):
            if src in unreachable:
                unreachable.remove(src)
            adj[src, dest] = rng.choice([-1, 1])
    fanout = int(np.clip(int(motor_neurons * motor_fanin / command_neurons), 1, motor_neurons))
    for src in unreachable:
        for dest in rng.choice(motor, size=fanout, replace=False):
            adj[src, dest] = rng.choice([-1, 1])

    if params is None:
        params = {
            "inter_neurons": inter_neurons,
            "command_neurons": command_neurons,
            "motor_neurons": motor_neurons,
            "sensory_fanout": sensory_fanout,
            "inter_fanout": inter_fanout,
            "recurrent_command_synapses": recurrent_command_synapses,
            "motor_fanin": motor_fanin,
            "seed": seed,
        }
    return Wiring(kind, units, input_dim, motor_neurons, adj, sadj, [inter, command, motor], params)


def auto_ncp(
    units: int, output_size: int, input_dim: int, sparsity_level: float = 0.5, seed: int = 22222
) -> Wiring:
    """``ncps.wirings.AutoNCP(units, output_size, sparsity_level, seed)``, built."""
    if output_size >= units - 2:
        raise ValueError(f"output_size {output_size} must be less than units-2 (units {units})")
    if sparsity_level < 0.1 or sparsity_level > 1.0:
        raise ValueError(f"sparsity_level {sparsity_level} must be in [0.1, 1.0]")
    density = 1.0 - sparsity_level
    inter_and_command = units - output_size
    command = max(int(0.4 * inter_and_command), 1)
    inter = inter_and_command - command
    params = {
        "units": units,
        "output_size": output_size,
        "sparsity_level": sparsity_level,
        "seed": seed,
    }
    return ncp(
        inter,
        command,
        output_size,
        max(int(inter * density), 1),
        max(int(command * density), 1),
        max(int(command * density * 2), 1),
        max(int(command * density), 1),
        input_dim,
        seed,
        kind="auto_ncp",
        params=params,
    )


def from_config(
    config: dict[str, Any], adjacency: np.ndarray, sensory_adjacency: np.ndarray
) -> Wiring:
    """Rebuild a :class:`Wiring` from its :meth:`Wiring.to_config` and its two matrices."""
    return Wiring(
        kind=str(config["kind"]),
        units=int(config["units"]),
        input_dim=int(config["input_dim"]),
        output_dim=int(config["output_dim"]),
        adjacency=np.asarray(adjacency, dtype=np.int32),
        sensory_adjacency=np.asarray(sensory_adjacency, dtype=np.int32),
        layers=[[int(i) for i in layer] for layer in config["layers"]],
        params=dict(config.get("params", {})),
    )


def check_config(config: Any) -> list[str]:
    """Problems with a wiring config (empty list when it is well formed)."""
    if not isinstance(config, dict):
        return [f"wiring must be a JSON object, got {type(config).__name__}"]
    problems = []
    for key in ("units", "input_dim", "output_dim"):
        val = config.get(key)
        if not isinstance(val, int) or isinstance(val, bool) or val < 1:
            problems.append(f"wiring.{key} must be a positive integer, got {val!r}")
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers:
        problems.append(f"wiring.layers must be a non-empty list, got {layers!r}")
        return problems
    if problems:
        return problems
    flat = [i for layer in layers if isinstance(layer, list) for i in layer]
    ok = len(flat) == config["units"] and all(
        isinstance(i, int) and not isinstance(i, bool) for i in flat
    )
    if (
        not ok
        or sorted(flat) != list(range(config["units"]))
        or not all(isinstance(layer, list) and layer for layer in layers)
    ):
        problems.append(
            f"wiring.layers must partition neurons 0..{config['units'] - 1} into non-empty "
            f"layers, got {layers!r}"
        )
    if config["output_dim"] > config["units"]:
        problems.append(f"wiring.output_dim {config['output_dim']} exceeds units {config['units']}")
    if not isinstance(config.get("params", {}), dict):
        problems.append(f"wiring.params must be an object, got {config['params']!r}")
    return problems
