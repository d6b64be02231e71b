"""The trained modules: a liquid (or baseline) actor and an MLP critic.

Actor. A liquid cell is a stock ``ncps.torch`` module so that :func:`controller.from_ncps`
exports it to the numpy runtime exactly; the baselines ``lstm``, ``gru`` and ``mlp`` are the
torch modules of :mod:`controller.train.baselines` (``nn.LSTMCell`` / ``nn.GRUCell`` / two tanh
layers, each with a linear output to ``act``), exported to the runtime's own cells:

| ``--cell`` | ncps.torch module (``B`` = ``--backbone-units``) | output ``y`` |
|---|---|---|
| ``cfc`` | ``CfC(obs, units, proj_size=act, backbone_units=B, backbone_layers=1)`` | projection |
| ``ltc`` | ``LTC(obs, FullyConnected(units, output_dim=act))`` | affine-mapped motors |
| ``ncp`` | ``CfC(obs, AutoNCP(units, act))`` | motor neurons |
| ``lstm`` | ``LSTMCell(obs, units)``, ``Linear(units, act)`` | projection |
| ``gru`` | ``GRUCell(obs, units)``, ``Linear(units, act)`` | projection |
| ``mlp`` | ``frames * obs -> units -> units`` (tanh), ``Linear(units, act)`` | projection |

One tick is ``y, h = cell(x, h * (1 - start), ts)`` with ``x`` the normalised observation, ``ts``
the cell time input ``dt * time_scale`` and ``start`` 1 at an episode's first tick. The
Gaussian's mean in normalised action units is ``squash(y)`` (``tanh`` or identity) and its
standard deviation ``exp(log_std)`` is a learned, state-independent parameter. The env action
is ``offset + scale * clip(sample, -1, 1)``; the runtime's deterministic action is
``offset + scale * squash(y)``.

Critic. A separate two-layer tanh MLP on the normalised observation (with
``--privileged-critic`` also on what the randomisation drew: an asymmetric actor-critic, the
critic knowing the plant the actor must infer). The MuJoCo tasks are
fully observed, so the value needs no memory; keeping it out of the recurrent cell keeps the
exported policy small, lets the value of a truncated episode's final observation be computed
without a hidden state (for bootstrapping), and decouples value regression from the actor's
dynamics. It is never exported.

The ncps ``CfC.forward`` / ``LTC.forward`` loops squeeze the time input to ``(B,)``, which
does not broadcast against ``(B, units)``; :func:`cell_step` therefore calls the module's
``rnn_cell`` (and ``fc``) directly with ``ts`` of shape ``(B, 1)`` - the same arithmetic.
"""

from __future__ import annotations

import math
from typing import Protocol, cast

import numpy as np
import torch
from torch import nn

from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.train.baselines import BASELINE_CELLS, BaselineCell, build_baseline


def build_cell(
    cell: str,
    obs_dim: int,
    act_dim: int,
    units: int,
    backbone_units: int,
    seed: int,
    frames: int = 1,
) -> nn.Module:
    """Build the torch module for ``cell`` (see the module table).

    ``frames`` (stacked observations) is for ``mlp`` only; ``backbone_units`` for ``cfc`` only.

    Raises:
        LiquidNodeError: unknown cell type or sizes the wiring cannot hold.
    """
    if cell in BASELINE_CELLS:
        try:
            return build_baseline(cell, obs_dim, act_dim, units, frames)
        except ValueError as exc:
            raise LiquidNodeError(str(exc)) from None
    from ncps.torch import LTC, CfC
    from ncps.wirings import AutoNCP, FullyConnected

    if cell == "cfc":
        return CfC(
            obs_dim,
            units,
            proj_size=act_dim,
            backbone_units=backbone_units,
            backbone_layers=1,
            batch_first=True,
        )
    if cell == "ltc":
        wiring = FullyConnected(units, output_dim=act_dim, erev_init_seed=seed)
        return LTC(obs_dim, wiring, batch_first=True)
    if cell == "ncp":
        if units <= act_dim + 2:
            raise LiquidNodeError(
                f"--units {units} leaves no room for an AutoNCP wiring with {act_dim} motor "
                "neurons; use at least act_dim + 3"
            )
        return CfC(obs_dim, AutoNCP(units, act_dim, seed=seed), batch_first=True)
    raise LiquidNodeError(f"unknown cell {cell!r}; choose cfc, ltc, ncp, lstm, gru or mlp")


class NcpsCell(Protocol):
    """What :func:`cell_step` uses of an ``ncps.torch`` CfC / LTC module (ncps is untyped)."""

    state_size: int

    def rnn_cell(
        self, x: torch.Tensor, h: torch.Tensor, ts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One tick: ``x (B, obs_dim)``, ``h (B, state)``, ``ts (B, 1)`` -> ``(y, h')``."""
        ...


def state_size(module: nn.Module) -> int:
    """Hidden state size of an ncps CfC / LTC module or a baseline cell."""
    if isinstance(module, BaselineCell):
        return int(module.state_size)
    return int(cast(NcpsCell, module).state_size)


def cell_step(
    module: nn.Module, x: torch.Tensor, h: torch.Tensor, ts: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One tick of an ncps module or a baseline cell: ``x (B, obs_dim)``, ``h (B, state)``,
    ``ts (B, 1)`` -> ``(y (B, act_dim), h' (B, state))``."""
    if isinstance(module, BaselineCell):
        return module.step(x, h, ts)
    out, h_next = cast(NcpsCell, module).rnn_cell(x, h, ts)
    fc = getattr(module, "fc", None)
    if fc is not None:
        out = fc(out)
    return out, h_next


class Actor(nn.Module):
    """Gaussian policy around a liquid or baseline cell.

    Args:
        cell_module: the module built by :func:`build_cell`.
        act_dim: action size.
        squash: ``"tanh"`` or ``"none"``, applied to the cell output to get the mean.
        init_log_std: initial log standard deviation (normalised action units).
    """

    def __init__(
        self, cell_module: nn.Module, act_dim: int, squash: str, init_log_std: float
    ) -> None:
        super().__init__()
        self.cell = cell_module
        self.squash = squash
        self.log_std = nn.Parameter(torch.full((act_dim,), float(init_log_std)))

    @property
    def state_size(self) -> int:
        """Hidden state size."""
        return state_size(self.cell)

    def mean(self, y: torch.Tensor) -> torch.Tensor:
        """Mean action in normalised units from the cell output."""
        return torch.tanh(y) if self.squash == "tanh" else y

    def step(
        self, x: torch.Tensor, h: torch.Tensor, ts: torch.Tensor, start: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One tick with reset masking: returns ``(mean (B, act), h' (B, state))``.

        ``x (B, obs)``, ``h (B, state)`` carried state, ``ts (B,)`` time input, ``start (B,)``
        1.0 at an episode's first observation (the carried state is zeroed first).
        """
        h = h * (1.0 - start).unsqueeze(-1)
        y, h = cell_step(self.cell, x, h, ts.unsqueeze(-1))
        return self.mean(y), h

    def unroll(
        self, x: torch.Tensor, ts: torch.Tensor, starts: torch.Tensor, h0: torch.Tensor
    ) -> torch.Tensor:
        """Means over sequences: ``x (B, L, obs)``, ``ts``/``starts (B, L)``, ``h0 (B, state)``
        -> ``(B, L, act)``. The state resets wherever ``starts`` is 1 (truncated BPTT)."""
        h = h0
        means = []
        for t in range(x.shape[1]):
            mean, h = self.step(x[:, t], h, ts[:, t], starts[:, t])
            means.append(mean)
        return torch.stack(means, dim=1)

    def distribution(self, mean: torch.Tensor) -> torch.distributions.Normal:
        """Diagonal Gaussian around ``mean`` with the learned standard deviation."""
        return torch.distributions.Normal(mean, self.log_std.exp().expand_as(mean))


class Critic(nn.Module):
    """State value ``V(x)`` of a normalised observation: two tanh layers of ``units``.

    ``obs_dim`` counts every input: the cell's, then any privileged features (``extra``)."""

    def __init__(self, obs_dim: int, units: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            _ortho(nn.Linear(obs_dim, units), math.sqrt(2)),
            nn.Tanh(),
            _ortho(nn.Linear(units, units), math.sqrt(2)),
            nn.Tanh(),
            _ortho(nn.Linear(units, 1), 1.0),
        )

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """``x (..., obs)`` (and ``extra (..., k)``, appended to it) -> values ``(...)``."""
        if extra is not None and extra.shape[-1]:
            x = torch.cat([x, extra], dim=-1)
        return self.net(x).squeeze(-1)


def _ortho(layer: nn.Linear, gain: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def scale_output_layer(actor: Actor, factor: float) -> None:
    """Shrink the CfC projection (``fc``) weights so the initial policy acts near the centre
    of the action range (the usual small-output-layer PPO init). No-op without ``fc``."""
    fc = getattr(actor.cell, "fc", None)
    if isinstance(fc, nn.Linear):
        with torch.no_grad():
            fc.weight.mul_(factor)
            fc.bias.zero_()


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """float32 tensor view of a numpy array."""
    return torch.as_tensor(np.asarray(array, dtype=np.float32))
