"""GRU cell in numpy, equal to ``torch.nn.GRUCell`` (and one layer of ``torch.nn.GRU``).

A baseline against the liquid cells: it runs in the same policy, loop and safety layer. One
step maps ``(x, h, ts) -> (y, h')`` with ``y = h'``; ``ts`` is accepted and ignored (a GRU has
no time input, it assumes the nominal control period):

- ``x``: float32 ``(input_size,)``, the (normalised) inputs.
- ``h``: float32 ``(units,)``, the hidden state; all zeros at episode start.
- ``y``: float32 ``(units,)``, the new hidden state ``h'`` (a ``proj_size`` in the config adds
  a linear readout to ``proj_size`` outputs, see :mod:`controller.cells`).

Equations (torch's gate order ``r, z, n`` in the stacked weights)::

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

Tensors (torch ``GRUCell`` names): ``weight_ih`` ``(3 units, input_size)``, ``weight_hh``
``(3 units, units)``, ``bias_ih`` and ``bias_hh`` ``(3 units,)``.

The step is allocation-free: one fused matrix reads ``[x, 1, h, 1]`` and yields
``[a_r, a_z, W_in x + b_in, W_hn h + b_hn]`` (``4 units``), the ``r``/``z`` columns pre-scaled
by 0.5 so that ``sigmoid(a) = 0.5 tanh(a / 2) + 0.5`` (no overflow for any input). The returned
arrays are internal buffers, valid until the next call.
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
    """Problems with a ``gru`` cell config (empty list when it is well formed)."""
    return int_problems(config, ("input_size", "units"))


def tensor_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the float32 tensors a ``gru`` cell needs."""
    return gated_tensor_shapes(config, 3)


def state_dim(config: dict[str, Any]) -> int:
    """Length of the state ``h``: ``units``."""
    return int(config["units"])


def output_dim(config: dict[str, Any]) -> int:
    """Length of the cell's own output ``h'``: ``units``."""
    return int(config["units"])


class GRUCell:
    """Numpy GRU cell (see the module docstring for the equations and tensors).

    Attributes:
        input_size: length of ``x``.
        units: hidden size (= ``state_dim`` = ``output_dim``).
    """

    def __init__(self, config: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        """Build from a ``gru`` config (``input_size``, ``units``) and its float32 tensors.

        Raises:
            ValueError: a bad config or a missing / misshapen tensor, naming it.
        """
        self._tensors = load_weights(config, tensors, check_config, tensor_shapes)
        self.config = dict(config)
        self.input_size = n_in = int(config["input_size"])
        self.units = u = int(config["units"])
        self.state_dim = self.output_dim = u
        t = self._tensors
        w_ih, w_hh, b_ih, b_hh = t["weight_ih"], t["weight_hh"], t["bias_ih"], t["bias_hh"]
        # rows of the fused matrix: x (n_in), 1, h (u), 1; columns: r, z (x and h summed,
        # scaled by 0.5, exact), n from x, n from h
        wt = np.zeros((n_in + u + 2, 4 * u), dtype=_F32)
        rz = slice(0, 2 * u)
        wt[:n_in, rz] = w_ih[rz].T * _F32(0.5)
        wt[n_in, rz] = (b_ih[rz] + b_hh[rz]) * _F32(0.5)
        wt[n_in + 1 : n_in + 1 + u, rz] = w_hh[rz].T * _F32(0.5)
        wt[:n_in, 2 * u : 3 * u] = w_ih[2 * u :].T
        wt[n_in, 2 * u : 3 * u] = b_ih[2 * u :]
        wt[n_in + 1 : n_in + 1 + u, 3 * u :] = w_hh[2 * u :].T
        wt[n_in + 1 + u, 3 * u :] = b_hh[2 * u :]
        self._wt = np.ascontiguousarray(wt)
        # [x | 1 | h | 1]: the state h is the contiguous slice in the middle
        self._z = np.zeros(n_in + u + 2, dtype=_F32)
        self._z[n_in] = 1.0
        self._z[-1] = 1.0
        self._x = self._z[:n_in]
        self._h = self._z[n_in + 1 : n_in + 1 + u]
        self._out = np.zeros(4 * u, dtype=_F32)
        o = self._out
        self._rz = o[: 2 * u]
        self._r, self._zg = o[:u], o[u : 2 * u]
        self._nx, self._nh = o[2 * u : 3 * u], o[3 * u :]
        self._half = np.full((), 0.5, dtype=_F32)

    def weights(self) -> dict[str, np.ndarray]:
        """The float32 tensors as stored in a policy file (torch names and layout)."""
        return copies(self._tensors)

    def step(self, x: np.ndarray, h: np.ndarray, ts: float) -> tuple[np.ndarray, np.ndarray]:
        """Advance one step (``ts`` ignored); returns ``(h', h')``, one buffer ``(units,)``."""
        self._x[...] = x
        if h is not self._h:
            self._h[...] = h
        np.dot(self._z, self._wt, out=self._out)
        rz = self._rz
        np.tanh(rz, out=rz)
        rz *= self._half
        rz += self._half
        n = self._nh
        n *= self._r
        n += self._nx
        np.tanh(n, out=n)  # n = tanh(W_in x + b_in + r (W_hn h + b_hn))
        h_new = self._h  # h' = n + z (h - n)
        h_new -= n
        h_new *= self._zg
        h_new += n
        return h_new, h_new
