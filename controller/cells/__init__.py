"""Policy cells in numpy: the liquid CfC, wired CfC (NCP) and LTC, the wirings they use, and
the baselines LSTM, GRU and MLP (:mod:`.lstm`, :mod:`.gru`, :mod:`.mlp`).

Every cell implements :class:`Cell`: ``step(x, h, ts) -> (y, h')`` with float32 vectors and
``ts`` the elapsed time of the step in the policy's time unit. :func:`build_cell` turns a cell
config (the ``cell`` object of a policy file's metadata) and its tensors into a cell; a
``proj_size`` in the config adds ncps' linear readout (``proj.weight`` ``(proj_size, out)``,
``proj.bias`` ``(proj_size,)``) on the cell's output.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from liquidnode.controller.cells import cfc, gru, lstm, ltc, mlp, wired_cfc

CELL_TYPES = ("cfc", "wired_cfc", "ltc", "lstm", "gru", "mlp")
_MODULES = {"cfc": cfc, "wired_cfc": wired_cfc, "ltc": ltc, "lstm": lstm, "gru": gru, "mlp": mlp}
#: Cells whose module gives ``state_dim(config)`` and ``output_dim(config)`` itself.
_BASELINES = {"lstm": lstm, "gru": gru, "mlp": mlp}


class Cell(Protocol):
    """What the policy steps.

    Attributes:
        input_size: length of ``x``.
        state_dim: length of ``h``.
        output_dim: length of ``y``.
    """

    input_size: int
    state_dim: int
    output_dim: int

    def step(self, x: np.ndarray, h: np.ndarray, ts: float) -> tuple[np.ndarray, np.ndarray]:
        """``x`` float32 ``(input_size,)``, ``h`` float32 ``(state_dim,)``, ``ts`` > 0.

        Returns ``(y, h')``: float32 ``(output_dim,)`` and ``(state_dim,)``, possibly internal
        buffers that the next call overwrites; ``h`` may be the ``h'`` of the previous call.
        """
        ...

    def weights(self) -> dict[str, np.ndarray]:
        """The tensors as stored in a policy file (without the ``cell.`` prefix)."""
        ...


class Projected:
    """A cell followed by a linear readout ``y = W y_cell + b`` (ncps' ``proj_size``)."""

    def __init__(self, cell: Cell, weight: np.ndarray, bias: np.ndarray) -> None:
        """``weight`` float32 ``(proj_size, cell.output_dim)``, ``bias`` ``(proj_size,)``."""
        self.cell = cell
        self.input_size = cell.input_size
        self.state_dim = cell.state_dim
        self.output_dim = int(weight.shape[0])
        self._w = np.array(weight, dtype=np.float32)
        self._b = np.array(bias, dtype=np.float32)
        self._wt = np.ascontiguousarray(self._w.T)
        self._y = np.zeros(self.output_dim, dtype=np.float32)

    def weights(self) -> dict[str, np.ndarray]:
        """Cell tensors plus ``proj.weight`` and ``proj.bias``."""
        return {**self.cell.weights(), "proj.weight": self._w.copy(), "proj.bias": self._b.copy()}

    def step(self, x: np.ndarray, h: np.ndarray, ts: float) -> tuple[np.ndarray, np.ndarray]:
        """Cell step, then the readout; returns ``(y (proj_size,), h')``."""
        y, h2 = self.cell.step(x, h, ts)
        np.dot(y, self._wt, out=self._y)
        self._y += self._b
        return self._y, h2


def check_config(config: Any) -> list[str]:
    """Problems with a cell config (empty list when it is well formed)."""
    if not isinstance(config, dict):
        return [f"cell must be a JSON object, got {type(config).__name__}"]
    kind = config.get("type")
    if not isinstance(kind, str) or kind not in _MODULES:
        return [f"unknown cell type {kind!r}, expected one of {CELL_TYPES}"]
    problems = _MODULES[kind].check_config(config)
    proj = config.get("proj_size")
    if proj is not None and (not isinstance(proj, int) or isinstance(proj, bool) or proj < 1):
        problems.append(f"cell.proj_size must be null or an integer >= 1, got {proj!r}")
    if kind == "ltc" and proj is not None:
        problems.append("cell.proj_size is not supported for ltc (ncps' LTC has no projection)")
    return problems


def output_dim(config: dict[str, Any]) -> int:
    """Length of the cell's output (after the projection, if any) for a valid config."""
    if config.get("proj_size") is not None:
        return int(config["proj_size"])
    if config["type"] == "cfc":
        return int(config["units"])
    if config["type"] in _BASELINES:
        return _BASELINES[config["type"]].output_dim(config)
    return int(config["wiring"]["output_dim"])


def state_dim(config: dict[str, Any]) -> int:
    """Length of the cell's state for a valid config."""
    if config["type"] in _BASELINES:
        return _BASELINES[config["type"]].state_dim(config)
    return int(config["units"] if config["type"] == "cfc" else config["wiring"]["units"])


def tensor_specs(config: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], str]]:
    """Name -> (shape, dtype) of every tensor a valid cell config needs (no ``cell.`` prefix)."""
    shapes = _MODULES[config["type"]].tensor_shapes(config)
    if config.get("proj_size") is not None:
        base = dict(config, proj_size=None)
        shapes["proj.weight"] = (config["proj_size"], output_dim(base))
        shapes["proj.bias"] = (config["proj_size"],)
    return {k: (v, "int32" if k.startswith("wiring.") else "float32") for k, v in shapes.items()}


def build_cell(config: dict[str, Any], tensors: dict[str, np.ndarray]) -> Cell:
    """Build a cell from a config and its tensors; raises ValueError naming the problem."""
    problems = check_config(config)
    if problems:
        raise ValueError("; ".join(problems))
    own = {k: v for k, v in tensors.items() if not k.startswith("proj.")}
    kind = config["type"]
    if kind == "cfc":
        cell: Cell = cfc.CfCCell(config, own)
    elif kind == "wired_cfc":
        cell = wired_cfc.WiredCfCCell(config, own)
    elif kind == "lstm":
        cell = lstm.LSTMCell(config, own)
    elif kind == "gru":
        cell = gru.GRUCell(config, own)
    elif kind == "mlp":
        cell = mlp.MLPCell(config, own)
    else:
        cell = ltc.LTCCell(config, own)
    if config.get("proj_size") is not None:
        cell = Projected(cell, tensors["proj.weight"], tensors["proj.bias"])
    return cell


__all__ = ["CELL_TYPES", "Cell", "Projected", "build_cell", "check_config", "tensor_specs"]
