"""Baseline actor cells for the trainer: LSTM, GRU and MLP (optionally over stacked frames).

Each module steps like the liquid cells do in :func:`controller.train.agent.cell_step`:
``step(x (B, obs), h (B, state), ts (B, 1)) -> (y (B, act), h' (B, state))`` (``ts`` is
ignored: these cells have no time input), has a ``state_size``, a linear output layer ``fc``
(``units -> act``, shrunk at the start of training like the CfC projection), and
:meth:`runtime_cell` gives the config and tensors of the numpy cell that equals it
(:mod:`controller.cells.lstm`, :mod:`.gru`, :mod:`.mlp`, with ``proj_size = act``):

| ``--cell`` | torch module | state ``h`` | runtime cell |
|---|---|---|---|
| ``lstm`` | ``nn.LSTMCell(obs, units)`` + ``fc`` | ``[h | c]`` (``2 units``) | ``lstm`` |
| ``gru`` | ``nn.GRUCell(obs, units)`` + ``fc`` | ``h`` (``units``) | ``gru`` |
| ``mlp`` | ``frames * obs -> units -> units`` (tanh) + ``fc`` | ``frames - 1`` inputs | ``mlp`` |

The LSTM and GRU cells are torch's own (``nn.LSTMCell`` / ``nn.GRUCell``, the single-step form
of ``nn.LSTM`` / ``nn.GRU``, the same gate order and weights), so the export is a copy of
their parameters under their own names.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

BASELINE_CELLS = ("lstm", "gru", "mlp")


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32).copy()


class BaselineCell(nn.Module):
    """What the trainer needs from a baseline cell (see the module docstring).

    Attributes:
        kind: ``"lstm"``, ``"gru"`` or ``"mlp"``.
        input_size: observation length.
        units: hidden width.
        state_size: length of the carried state.
        fc: the output layer ``units -> act_dim``.
    """

    kind: str
    input_size: int
    units: int
    state_size: int
    fc: nn.Linear

    def step(
        self, x: torch.Tensor, h: torch.Tensor, ts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One tick: ``(y (B, act), h' (B, state_size))``; ``ts`` is ignored."""
        raise NotImplementedError

    def runtime_cell(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Config and float32 tensors of the equal numpy cell (``proj`` = ``fc``)."""
        raise NotImplementedError

    def _proj(self) -> dict[str, np.ndarray]:
        return {"proj.weight": _np(self.fc.weight), "proj.bias": _np(self.fc.bias)}


class LSTMActorCell(BaselineCell):
    """``nn.LSTMCell`` plus a linear output; the state is ``[h | c]``."""

    kind = "lstm"

    def __init__(self, obs_dim: int, act_dim: int, units: int) -> None:
        super().__init__()
        self.input_size, self.units, self.state_size = obs_dim, units, 2 * units
        self.rnn = nn.LSTMCell(obs_dim, units)
        self.fc = nn.Linear(units, act_dim)

    def step(
        self, x: torch.Tensor, h: torch.Tensor, ts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One tick: ``(y (B, act), [h' | c'] (B, 2 units))``; ``ts`` is ignored."""
        h_next, c_next = self.rnn(x, (h[:, : self.units], h[:, self.units :]))
        return self.fc(h_next), torch.cat([h_next, c_next], dim=-1)

    def runtime_cell(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """An ``lstm`` config and torch's ``weight_ih``/``weight_hh``/``bias_ih``/``bias_hh``."""
        config = {
            "type": "lstm",
            "input_size": self.input_size,
            "units": self.units,
            "proj_size": int(self.fc.out_features),
        }
        tensors = {name: _np(p) for name, p in self.rnn.named_parameters()}
        return config, {**tensors, **self._proj()}


class GRUActorCell(BaselineCell):
    """``nn.GRUCell`` plus a linear output; the state is ``h``."""

    kind = "gru"

    def __init__(self, obs_dim: int, act_dim: int, units: int) -> None:
        super().__init__()
        self.input_size, self.units, self.state_size = obs_dim, units, units
        self.rnn = nn.GRUCell(obs_dim, units)
        self.fc = nn.Linear(units, act_dim)

    def step(
        self, x: torch.Tensor, h: torch.Tensor, ts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One tick: ``(y (B, act), h' (B, units))``; ``ts`` is ignored."""
        h_next = self.rnn(x, h)
        return self.fc(h_next), h_next

    def runtime_cell(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """A ``gru`` config and torch's ``weight_ih``/``weight_hh``/``bias_ih``/``bias_hh``."""
        config = {
            "type": "gru",
            "input_size": self.input_size,
            "units": self.units,
            "proj_size": int(self.fc.out_features),
        }
        tensors = {name: _np(p) for name, p in self.rnn.named_parameters()}
        return config, {**tensors, **self._proj()}


class MLPActorCell(BaselineCell):
    """Two tanh layers of ``units`` over ``frames`` stacked inputs, plus a linear output.

    The state holds the previous ``frames - 1`` inputs, newest first (empty for one frame);
    hidden layers are orthogonally initialised with gain sqrt(2), biases zero (CleanRL's MLP).
    """

    kind = "mlp"

    def __init__(self, obs_dim: int, act_dim: int, units: int, frames: int = 1) -> None:
        super().__init__()
        self.input_size, self.units, self.frames = obs_dim, units, frames
        self.state_size = (frames - 1) * obs_dim
        hidden = [nn.Linear(frames * obs_dim, units), nn.Linear(units, units)]
        for layer in hidden:
            nn.init.orthogonal_(layer.weight, math.sqrt(2))
            nn.init.zeros_(layer.bias)
        self.layers = nn.ModuleList(hidden)
        self.fc = nn.Linear(units, act_dim)

    def step(
        self, x: torch.Tensor, h: torch.Tensor, ts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One tick: ``(y (B, act), [x | previous frames][:, :state] (B, state))``."""
        a = torch.cat([x, h], dim=-1)
        h_next = a[:, : self.state_size]
        for layer in self.layers:
            a = torch.tanh(layer(a))
        return self.fc(a), h_next

    def runtime_cell(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """An ``mlp`` config (tanh, ``hidden_units = [units, units]``) and ``layers.*``."""
        config = {
            "type": "mlp",
            "input_size": self.input_size,
            "hidden_units": [self.units] * len(self.layers),
            "activation": "tanh",
            "frames": self.frames,
            "proj_size": int(self.fc.out_features),
        }
        tensors = {f"layers.{name}": _np(p) for name, p in self.layers.named_parameters()}
        return config, {**tensors, **self._proj()}


def build_baseline(
    cell: str, obs_dim: int, act_dim: int, units: int, frames: int = 1
) -> BaselineCell:
    """The baseline module for ``cell`` (one of :data:`BASELINE_CELLS`).

    Raises:
        ValueError: an unknown cell, or ``frames != 1`` for a recurrent cell.
    """
    if cell == "mlp":
        return MLPActorCell(obs_dim, act_dim, units, frames)
    if frames != 1:
        raise ValueError(f"--frames {frames} is for the mlp cell only (got --cell {cell})")
    if cell == "lstm":
        return LSTMActorCell(obs_dim, act_dim, units)
    if cell == "gru":
        return GRUActorCell(obs_dim, act_dim, units)
    raise ValueError(f"unknown baseline cell {cell!r}, expected one of {BASELINE_CELLS}")


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars of ``module``."""
    return sum(int(p.numel()) for p in module.parameters() if p.requires_grad)
