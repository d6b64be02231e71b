"""Closed-form continuous-time (CfC) cell in numpy, equal to ``ncps.torch.CfCCell``.

One step maps ``(x, h, ts) -> (y, h')`` with ``y = h'``:

- ``x``: float32 ``(input_size,)``, the (normalised) inputs.
- ``h``: float32 ``(units,)``, the hidden state; all zeros at episode start.
- ``ts``: elapsed time of this step in the policy's time unit (``dt [s] * time_scale``), > 0.

Let ``z = backbone([x, h])`` (``backbone_layers`` dense layers with ``activation``; with no
backbone ``z = [x, h]``) and ``f1 = W1 z + b1``. Then, by ``mode``:

- ``default``: ``h' = tanh(f1) * (1 - s) + s * tanh(f2)`` with ``s = sigmoid(ta * ts + tb)``,
  ``f2 = W2 z + b2``, ``ta = Wa z + ba``, ``tb = Wb z + bb``.
- ``no_gate``: ``h' = tanh(f1) + s * tanh(f2)``.
- ``pure``: ``h' = -A * exp(-ts * (|w_tau| + |f1|)) * f1 + A``.

Tensors (torch ``Linear`` layout, weight ``(out, in)``), named as ncps names them:
``backbone.{i}.weight|bias`` for ``i < backbone_layers`` (``backbone_dropout`` is recorded but
ignored: inference), ``ff1.weight|bias``, and ``ff2``, ``time_a``, ``time_b`` (``default``,
``no_gate``) or ``w_tau``, ``A`` of shape ``(units,)`` (``pure``).

The step is allocation-free: weights are fused and transposed at construction (the four heads
become one matrix, a wiring mask is multiplied in), every intermediate lives in a preallocated
float32 buffer. The returned arrays are internal buffers, valid until the next call; ``h`` may be
the state array returned by the previous call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from liquidnode.controller.cells import kernel as _kernel

MODES = ("default", "pure", "no_gate")
ACTIVATIONS = ("lecun_tanh", "tanh", "relu", "gelu", "silu")
MAX_LAYERS = 64  # sanity bound on backbone_layers (a file cannot make us loop for ever)

_F32 = np.float32


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def check_config(config: dict[str, Any]) -> list[str]:
    """Problems with a ``cfc`` cell config (empty list when it is well formed)."""
    problems = []
    for key, minimum in (("input_size", 1), ("units", 1), ("backbone_layers", 0)):
        if not _is_int(config.get(key), minimum):
            problems.append(f"cell.{key} must be an integer >= {minimum}, got {config.get(key)!r}")
    if _is_int(config.get("backbone_layers"), 0) and config["backbone_layers"] > MAX_LAYERS:
        problems.append(
            f"cell.backbone_layers {config['backbone_layers']} exceeds the limit {MAX_LAYERS}"
        )
    if config.get("backbone_layers", 0) and not _is_int(config.get("backbone_units"), 1):
        problems.append(f"cell.backbone_units must be >= 1, got {config.get('backbone_units')!r}")
    if config.get("mode") not in MODES:
        problems.append(f"cell.mode must be one of {MODES}, got {config.get('mode')!r}")
    if config.get("activation") not in ACTIVATIONS:
        problems.append(
            f"cell.activation must be one of {ACTIVATIONS}, got {config.get('activation')!r}"
        )
    return problems


def tensor_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the float32 tensors a ``cfc`` cell needs."""
    n_in, units = config["input_size"], config["units"]
    layers, bu = config["backbone_layers"], config.get("backbone_units", 0)
    shapes: dict[str, tuple[int, ...]] = {}
    width = n_in + units
    for i in range(layers):
        shapes[f"backbone.{i}.weight"] = (bu, width)
        shapes[f"backbone.{i}.bias"] = (bu,)
        width = bu
    heads = ("ff1",) if config["mode"] == "pure" else ("ff1", "ff2", "time_a", "time_b")
    for name in heads:
        shapes[f"{name}.weight"] = (units, width)
        shapes[f"{name}.bias"] = (units,)
    if config["mode"] == "pure":
        shapes["w_tau"] = (units,)
        shapes["A"] = (units,)
    return shapes


def _activation(name: str, scratch: np.ndarray) -> Callable[[np.ndarray], None]:
    """In-place activation on a float32 buffer (``lecun_tanh`` scales are folded elsewhere)."""
    if name in ("lecun_tanh", "tanh"):
        return lambda buf: np.tanh(buf, out=buf)
    if name == "relu":
        return lambda buf: np.maximum(buf, _F32(0.0), out=buf)
    if name == "silu":

        def silu(buf: np.ndarray) -> None:
            np.negative(buf, out=scratch)
            np.exp(scratch, out=scratch)
            np.add(scratch, _F32(1.0), out=scratch)
            np.divide(buf, scratch, out=buf)

        return silu
    if name == "gelu":  # exact erf GELU, as torch.nn.GELU(); slow path (math.erf per element)

        def gelu(buf: np.ndarray) -> None:
            erf = np.fromiter((math.erf(v * 0.7071067811865476) for v in buf.tolist()), np.float64)
            buf *= (0.5 * (1.0 + erf)).astype(np.float32)

        return gelu
    raise ValueError(f"unknown activation {name!r}, expected one of {ACTIVATIONS}")


class CfCCell:
    """Numpy CfC cell (see module docstring for the equations and tensor names).

    Attributes:
        input_size: length of ``x``.
        units: length of ``h`` (= ``state_dim`` = ``output_dim``).
        mode: ``"default"``, ``"pure"`` or ``"no_gate"``.
    """

    def __init__(
        self,
        config: dict[str, Any],
        tensors: dict[str, np.ndarray],
        sparsity_mask: np.ndarray | None = None,
    ) -> None:
        """Build from a config (see :func:`check_config`) and float32 tensors.

        Args:
            config: ``input_size``, ``units``, ``mode``, ``activation``, ``backbone_layers``,
                ``backbone_units``, ``backbone_dropout``.
            tensors: the arrays named by :func:`tensor_shapes` (copied, kept as given for
                :meth:`weights`).
            sparsity_mask: optional 0/1 array ``(units, input_size + units)`` multiplied into the
                ``ff1`` and ``ff2`` weights (ncps' wired CfC); only without a backbone.
        """
        problems = check_config(config)
        if problems:
            raise ValueError("; ".join(problems))
        self.config = dict(config)
        self.input_size = n_in = int(config["input_size"])
        self.units = units = int(config["units"])
        self.mode = mode = config["mode"]
        self.state_dim = self.output_dim = units
        self._tensors = {k: np.array(v, dtype=_F32) for k, v in tensors.items()}
        t = self._tensors
        for name, shape in tensor_shapes(config).items():
            if name not in t or t[name].shape != shape:
                got = None if name not in t else t[name].shape
                raise ValueError(f"tensor {name!r} must have shape {shape}, got {got}")

        # Fused layout: every layer reads an input vector with a trailing constant 1 and its
        # transposed weight carries the bias as last row, so one np.dot does W a + b.
        lecun = config["activation"] == "lecun_tanh"
        self._z = np.zeros(n_in + units + 1, dtype=_F32)
        self._z[-1] = 1.0
        self._zx = self._z[:n_in]
        self._zh = self._z[n_in : n_in + units]
        # (weight^T with bias row, output buffer incl. trailing 1, view of the activations)
        self._layers: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        carry = _F32(1.0)  # lecun_tanh's outer 1.7159, folded into the next layer's weights
        for i in range(int(config["backbone_layers"])):
            w = t[f"backbone.{i}.weight"] * carry
            b = t[f"backbone.{i}.bias"]
            if lecun:  # 1.7159 * tanh(0.666 * a): the inner 0.666 is folded here
                w, b = w * _F32(0.666), b * _F32(0.666)
                carry = _F32(1.7159)
            buf = np.ones(len(b) + 1, dtype=_F32)
            self._layers.append((_fused(w, b), buf, buf[:-1]))
        width = len(self._layers[-1][2]) if self._layers else n_in + units
        self._act = _activation(config["activation"], np.zeros(width, dtype=_F32))

        names = ("ff1",) if mode == "pure" else ("ff1", "ff2", "time_a", "time_b")
        ws, bs = [], []
        for name in names:
            w = t[f"{name}.weight"] * carry
            b = t[f"{name}.bias"]
            if sparsity_mask is not None and name in ("ff1", "ff2"):
                w = w * np.asarray(sparsity_mask, dtype=_F32)
            if name.startswith("time_"):  # negated (exact): the heads give -t_a, -t_b
                w, b = -w, -b
            ws.append(w)
            bs.append(b)
        self._wt_heads = _fused(np.concatenate(ws, axis=0), np.concatenate(bs))
        self._heads = np.zeros(len(names) * units, dtype=_F32)
        heads, u = self._heads, units
        self._f12 = heads[: 2 * u]
        self._f1, self._f2 = heads[:u], heads[u : 2 * u]
        self._nta, self._ntb = heads[2 * u : 3 * u], heads[3 * u :]
        self._ts = np.zeros((), dtype=_F32)  # 0-d: array-scalar ufuncs are the cheapest
        self._ones = np.ones(units, dtype=_F32)
        self._h = self._zh  # the new state is written where the next step reads it
        self._tmp = np.zeros(units, dtype=_F32)
        if mode == "pure":
            self._abs_w_tau = np.abs(t["w_tau"])
            self._a = t["A"].copy()
            self._neg_a = -self._a
        # compiled step (controller/cells/kernel.py); None -> the numpy path in step()
        self._kernel = _kernel.make_cfc_kernel(config, self._tensors, sparsity_mask)

    def weights(self) -> dict[str, np.ndarray]:
        """The float32 tensors as stored in a policy file (unfused, ncps names)."""
        return {k: v.copy() for k, v in self._tensors.items()}

    def step(self, x: np.ndarray, h: np.ndarray, ts: float) -> tuple[np.ndarray, np.ndarray]:
        """Advance one step; returns ``(y, h')`` (the same float32 buffer, ``(units,)``)."""
        if self._kernel is not None:
            out = self._kernel.step(x, h, ts)
            return out, out
        self._zx[...] = x
        if h is not self._h:
            self._zh[...] = h
        a = self._z
        for wt, buf, act in self._layers:
            np.dot(a, wt, out=act)
            self._act(act)
            a = buf
        np.dot(a, self._wt_heads, out=self._heads)
        out = self._h
        if self.mode == "pure":  # h' = -A exp(-ts (|w_tau| + |f1|)) f1 + A
            f1, tmp, nts = self._heads, self._tmp, self._ts
            nts.fill(-ts)
            np.abs(f1, out=tmp)
            tmp += self._abs_w_tau
            tmp *= nts
            np.exp(tmp, out=tmp)
            tmp *= self._neg_a
            tmp *= f1
            np.add(tmp, self._a, out=out)
            return out, out
        f1, f2, nta = self._f1, self._f2, self._nta
        np.tanh(self._f12, out=self._f12)
        self._ts.fill(ts)
        nta *= self._ts  # -(t_a ts + t_b) = (-t_a) ts + (-t_b)
        nta += self._ntb
        np.exp(nta, out=nta)
        nta += self._ones  # 1 / sigmoid(t_a ts + t_b)
        if self.mode == "default":  # h' = f1 (1 - s) + s f2 = f1 + (f2 - f1) s
            f2 -= f1
        f2 /= nta
        np.add(f1, f2, out=out)
        return out, out


def _fused(weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``[weight^T; bias]``, float32 C-contiguous ``(in + 1, out)``: ``[a, 1] @ it = W a + b``."""
    return np.ascontiguousarray(np.concatenate([weight.T, bias[None, :]], axis=0), dtype=_F32)
