"""``Policy.step`` in one compiled call: observation mapping, cell step, action mapping.

A tick of a policy is three small stages around the cell (see :mod:`controller.policy`). In
numpy each stage is a handful of ufunc calls, each with a fixed call overhead, which for the
small cells a robot runs adds up to more than the cell itself (the README's policy-latency
benchmark compares the two paths). :class:`PolicyKernel` runs the three stages
in ``lnk_policy_step`` (``controller/cells/cfc_kernel.c``) with the same arithmetic, in one
ctypes call on preallocated buffers.

It covers the cells the compiled kernel covers: CfC (any mode, with or without backbone and
``proj_size``), wired CfC (NCP) and LTC. On a machine without the kernel, and for the
baseline cells (LSTM, GRU, MLP), the policy keeps the numpy stages (:func:`make_policy_kernel`
returns None).
"""

from __future__ import annotations

import ctypes

import numpy as np

from liquidnode.controller.cells import Cell, Projected
from liquidnode.controller.cells import kernel as _kernel
from liquidnode.controller.cells.cfc import CfCCell
from liquidnode.controller.cells.ltc import LTCCell
from liquidnode.controller.cells.wired_cfc import WiredCfCCell

_NORMALISE, _CLIP, _TANH, _AFFINE = 1, 2, 4, 8


class PolicyKernel:
    """A policy's observation mapping, cell and action mapping bound to ``lnk_policy_step``.

    Attributes:
        obs: float64 ``(obs_dim,)``: the caller writes the observation here before :meth:`step`.
        action: float64 ``(act_dim,)``: the action :meth:`step` wrote (overwritten next call).
        state: float32 ``(state_dim,)``: the hidden state the next :meth:`step` reads and
            replaces (write into it to reset or set the state).
    """

    def __init__(
        self,
        lib: ctypes.CDLL,
        cell_kernel: _kernel.CfCKernel | _kernel.LTCKernel | _kernel.WiredKernel,
        kind: int,
        y_offset: int,
        io_params: np.ndarray,
        flags: int,
    ) -> None:
        n_obs, n_state = cell_kernel.input_size, cell_kernel.units
        n_act = (len(io_params) - 1) // 2 - n_obs  # io_params: 2 x obs, 2 x act, clip
        self._cell = cell_kernel  # keeps its dims, params, scratch and out alive
        self._io_dims = np.array([kind, n_obs, n_act, n_state, y_offset, flags], dtype=np.int32)
        self._io_params = np.ascontiguousarray(io_params, dtype=np.float64)
        self._io = np.zeros(n_obs + n_act, dtype=np.float64)
        self.obs = self._io[:n_obs]
        self.action = self._io[n_obs:]
        self.state = cell_kernel._h  # the state slot of the cell's scratch
        d, p, s = cell_kernel._args
        io = (self._io_dims.ctypes.data, self._io_params.ctypes.data, self._io.ctypes.data)
        self._head = (*io, d, p, s)
        self._out_ptr = cell_kernel._out_ptr
        self._fn = lib.lnk_policy_step

    def step(self, ts: float) -> None:
        """One tick from :attr:`obs` and :attr:`state`; ``ts`` is ``dt * time_scale``."""
        self._fn(*self._head, ts, self._out_ptr)


def make_policy_kernel(
    cell: Cell,
    mean: np.ndarray,
    inv_std: np.ndarray,
    clip: float,
    scale: np.ndarray,
    offset: np.ndarray,
    *,
    normalise: bool,
    tanh: bool,
    affine: bool,
) -> PolicyKernel | None:
    """A compiled ``Policy.step`` for ``cell``, or None (the kernel is off).

    Args:
        cell: the policy's cell (only read: the kernel gets buffers of its own, so stepping the
            cell directly never disturbs the policy's state).
        mean, inv_std: float64 ``(obs_dim,)``; ``x = (obs - mean) * inv_std``.
        clip: ``x`` is clipped to ``[-clip, clip]``; ``inf`` for none.
        scale, offset: float64 ``(act_dim,)``; ``action = offset + scale * squash(y)``.
        normalise: apply ``mean``/``inv_std`` (False: they are the identity, skipped).
        tanh: squash with ``tanh`` (else the identity).
        affine: apply ``scale``/``offset`` (False: they are the identity, skipped).
    """
    lib = _kernel.load_library()
    if lib is None:
        return None
    proj = None
    if isinstance(cell, Projected):
        proj = (cell._w, cell._b)
        cell = cell.cell
    if isinstance(cell, CfCCell) and cell._kernel is not None:
        dims, params = _kernel.pack_cfc(cell.config, cell.weights(), None, proj)
        ck: _kernel.CfCKernel | _kernel.LTCKernel | _kernel.WiredKernel
        ck = _kernel.CfCKernel(lib, dims, params)
        kind, y_offset = 0, (cell.units if proj is not None else 0)
    elif isinstance(cell, LTCCell) and cell._kernel is not None and proj is None:
        k = cell._kernel
        ck = _kernel.LTCKernel(lib, k._dims, k._params)
        kind, y_offset = 1, cell.state_dim
    elif isinstance(cell, WiredCfCCell) and proj is None:
        kernels = [c._kernel for c in cell._cells if c._kernel is not None]
        if len(kernels) < len(cell._cells):
            return None
        ck = _kernel.WiredKernel(lib, [_kernel.CfCKernel(lib, k._dims, k._params) for k in kernels])
        kind, y_offset = 2, cell.state_dim - cell.output_dim
    else:
        return None
    flags = normalise * _NORMALISE | (clip != np.inf) * _CLIP | tanh * _TANH | affine * _AFFINE
    io_params = np.concatenate([mean, inv_std, scale, offset, [clip if clip != np.inf else 0.0]])
    return PolicyKernel(lib, ck, kind, y_offset, io_params, flags)
