"""LSTM cell in numpy, equal to ``torch.nn.LSTMCell`` (and one layer of ``torch.nn.LSTM``).

A baseline against the liquid cells: it runs in the same policy, loop and safety layer. One
step maps ``(x, state, ts) -> (y, state')`` with ``y = h'``; ``ts`` is accepted and ignored
(an LSTM has no time input, it assumes the nominal control period):

- ``x``: float32 ``(input_size,)``, the (normalised) inputs.
- ``state``: float32 ``(2 * units,)`` = ``[h | c]``: the hidden state ``h`` (``units``) followed
  by the cell state ``c`` (``units``); all zeros at episode start.
- ``y``: float32 ``(units,)``, the new hidden state ``h'`` (a ``proj_size`` in the config adds
  a linear readout to ``proj_size`` outputs, see :mod:`controller.cells`).

Equations (torch's gate order ``i, f, g, o`` in the stacked weights)::

    [a_i; a_f; a_g; a_o] = W_ih x + b_ih + W_hh h + b_hh
    i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o);   g = tanh(a_g)
    c' = f * c + i * g;   h' = o * tanh(c')

Tensors (torch ``LSTMCell`` names): ``weight_ih`` ``(4 units, input_size)``, ``weight_hh``
``(4 units, units)``, ``bias_ih`` and ``bias_hh`` ``(4 units,)``.

The step is allocation-free: the weights are fused at construction into one matrix that reads
``[x, 1, h]`` (the biases summed into the row of the constant 1), its gate columns reordered
to ``i, f, o, g`` with the three sigmoid gates pre-scaled by 0.5, so that one ``tanh`` over all
gates gives ``sigmoid(a) = 0.5 tanh(a / 2) + 0.5`` and ``tanh(a_g)`` at once (no overflow for
any input). The returned arrays are internal buffers, valid until the next call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liquidnode.controller.cells.dense import F32 as _F32
from liquidnode.controller.cells.dense import (
    copies,
    gated_tensor_shapes,
    int_problems,
    load_weights,
)


def check_config(config: dict[str, Any]) -> list[str]:
    """Problems with an ``lstm`` cell config (empty list when it is well formed)."""
    return int_problems(config, ("input_size", "units"))


def tensor_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the float32 tensors an ``lstm`` cell needs."""
    return gated_tensor_shapes(config, 4)


def state_dim(config: dict[str, Any]) -> int:
    """Length of the state ``[h | c]``: ``2 * units``."""
    return 2 * int(config["units"])


def output_dim(config: dict[str, Any]) -> int:
    """Length of the cell's own output ``h'``: ``units``."""
    return int(config["units"])


class LSTMCell:
    """Numpy LSTM cell (see the module docstring for the equations, layout and tensors).

    Attributes:
        input_size: length of ``x``.
        units: hidden size; the state is ``[h | c]`` of ``2 * units``.
        state_dim: ``2 * units``.
        output_dim: ``units``.
    """

    def __init__(self, config: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        """Build from an ``lstm`` config (``input_size``, ``units``) and its float32 tensors.

        Raises:
            ValueError: a bad config or a missing / misshapen tensor, naming it.
        """
        self._tensors = load_weights(config, tensors, check_config, tensor_shapes)
        self.config = dict(config)
        self.input_size = n_in = int(config["input_size"])
        self.units = u = int(config["units"])
        self.state_dim = 2 * u
        self.output_dim = u
        t = self._tensors
        # torch rows i, f, g, o -> columns i, f, o, g; the sigmoid gates scaled by 0.5 (exact)
        order = np.concatenate(
            [np.arange(0, 2 * u), np.arange(3 * u, 4 * u), np.arange(2 * u, 3 * u)]
        )
        half = np.concatenate([np.full(3 * u, 0.5, _F32), np.ones(u, _F32)])
        w_x = t["weight_ih"][order] * half[:, None]
        w_h = t["weight_hh"][order] * half[:, None]
        bias = (t["bias_ih"] + t["bias_hh"])[order] * half
        self._wt = np.ascontiguousarray(
            np.concatenate([w_x.T, bias[None, :], w_h.T], axis=0), dtype=_F32
        )
        # [x | 1 | h | c]: the product reads [x, 1, h], the state is the contiguous [h | c]
        self._buf = np.zeros(n_in + 1 + 2 * u, dtype=_F32)
        self._buf[n_in] = 1.0
        self._x = self._buf[:n_in]
        self._z = self._buf[: n_in + 1 + u]
        self._state = self._buf[n_in + 1 :]
        self._h = self._state[:u]
        self._c = self._state[u:]
        self._gates = np.zeros(4 * u, dtype=_F32)
        g = self._gates
        self._sig = g[: 3 * u]
        self._i, self._f, self._o, self._g = g[:u], g[u : 2 * u], g[2 * u : 3 * u], g[3 * u :]
        self._tmp = np.zeros(u, dtype=_F32)
        self._half = np.full((), 0.5, dtype=_F32)

    def weights(self) -> dict[str, np.ndarray]:
        """The float32 tensors as stored in a policy file (torch names and layout)."""
        return copies(self._tensors)

    def step(self, x: np.ndarray, h: np.ndarray, ts: float) -> tuple[np.ndarray, np.ndarray]:
        """Advance one step (``ts`` ignored); returns ``(h' (units,), [h' | c'] (2 units,))``."""
        self._x[...] = x
        if h is not self._state:
            self._state[...] = h
        gates = self._gates
        np.dot(self._z, self._wt, out=gates)
        np.tanh(gates, out=gates)
        sig = self._sig  # sigmoid(a) = 0.5 tanh(a / 2) + 0.5, the 1/2 folded into the weights
        sig *= self._half
        sig += self._half
        c, tmp = self._c, self._tmp
        c *= self._f
        np.multiply(self._i, self._g, out=tmp)
        c += tmp
        np.tanh(c, out=tmp)
        np.multiply(self._o, tmp, out=self._h)
        return self._h, self._state
