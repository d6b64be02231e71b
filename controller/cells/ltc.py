"""Liquid time-constant (LTC) cell in numpy, equal to ``ncps.torch.LTCCell``.

- ``x``: float32 ``(input_size,)``; mapped ``x' = x * input_w + input_b`` (``input_mapping``
  ``"affine"``; ``"linear"`` drops ``input_b``; ``"none"`` drops both).
- ``h``: float32 ``(units,)``, membrane potentials ``v`` in neuron-id order.
- ``ts``: elapsed time of this step in the policy's time unit (``dt [s] * time_scale``), > 0.
- output ``y``: float32 ``(output_dim,)`` = ``v'[:output_dim] * output_w + output_b``
  (``output_mapping`` as for the input).

The ODE ``cm dv/dt = gleak (vleak - v) + sum_j w_ij s_ij(v_j) (erev_ij - v)`` (plus the sensory
synapses, with ``s(v) = sigmoid(sigma (v - mu))`` and the wiring's masks) is integrated with
``ode_unfolds`` semi-implicit Euler steps of ``ts / ode_unfolds`` each::

    v <- (cm_t v + gleak vleak + sum w s erev) / (cm_t + gleak + sum w s + epsilon),
    cm_t = cm / (ts / ode_unfolds)

``implicit_param_constraints=True`` passes ``w``, ``sensory_w``, ``cm``, ``gleak`` through a
softplus (ncps' ``LTC`` default); ``False`` uses them as stored (ncps clips them during training).

Tensors (ncps names): ``gleak``, ``vleak``, ``cm`` ``(units,)``; ``sigma``, ``mu``, ``w``,
``erev``, ``sparsity_mask`` ``(units, units)``; ``sensory_sigma``, ``sensory_mu``, ``sensory_w``,
``sensory_erev``, ``sensory_sparsity_mask`` ``(input_size, units)``; ``input_w``/``input_b``
``(input_size,)``, ``output_w``/``output_b`` ``(output_dim,)`` per mapping; int32
``wiring.adjacency``, ``wiring.sensory_adjacency``. Masks must equal ``|adjacency|``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liquidnode.controller.cells import kernel as _kernel
from liquidnode.controller.cells import wiring as wiring_mod

MAPPINGS = ("affine", "linear", "none")
_F32 = np.float32


def check_config(config: dict[str, Any]) -> list[str]:
    """Problems with an ``ltc`` cell config (empty list when it is well formed)."""
    problems = wiring_mod.check_config(config.get("wiring"))
    for key in ("input_mapping", "output_mapping"):
        if config.get(key) not in MAPPINGS:
            problems.append(f"cell.{key} must be one of {MAPPINGS}, got {config.get(key)!r}")
    unfolds = config.get("ode_unfolds")
    if not isinstance(unfolds, int) or isinstance(unfolds, bool) or not 1 <= unfolds <= 1000:
        problems.append(f"cell.ode_unfolds must be an integer in 1..1000, got {unfolds!r}")
    eps = config.get("epsilon")
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps >= 0:
        problems.append(f"cell.epsilon must be a number >= 0, got {eps!r}")
    if not isinstance(config.get("implicit_param_constraints"), bool):
        problems.append(
            "cell.implicit_param_constraints must be true or false, got "
            f"{config.get('implicit_param_constraints')!r}"
        )
    if not problems and config.get("input_size") != config["wiring"]["input_dim"]:
        problems.append(
            f"cell.input_size {config.get('input_size')!r} differs from wiring.input_dim "
            f"{config['wiring']['input_dim']}"
        )
    return problems


def tensor_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the tensors an ``ltc`` cell needs (``wiring.*`` are int32)."""
    w = config["wiring"]
    n, s, m = w["units"], w["input_dim"], w["output_dim"]
    shapes: dict[str, tuple[int, ...]] = {
        "wiring.adjacency": (n, n),
        "wiring.sensory_adjacency": (s, n),
    }
    shapes.update({k: (n,) for k in ("gleak", "vleak", "cm")})
    shapes.update({k: (n, n) for k in ("sigma", "mu", "w", "erev", "sparsity_mask")})
    for k in ("sigma", "mu", "w", "erev", "sparsity_mask"):
        shapes[f"sensory_{k}"] = (s, n)
    for side, size in (("input", s), ("output", m)):
        mapping = config[f"{side}_mapping"]
        if mapping in ("affine", "linear"):
            shapes[f"{side}_w"] = (size,)
        if mapping == "affine":
            shapes[f"{side}_b"] = (size,)
    return shapes


def _softplus(x: np.ndarray) -> np.ndarray:
    """torch.nn.Softplus() (beta 1, threshold 20) in float32."""
    x = x.astype(_F32)
    return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, _F32(20))))).astype(_F32)


class LTCCell:
    """Numpy LTC cell (see module docstring)."""

    def __init__(self, config: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        """Build from an ``ltc`` config and its tensors; raises ValueError on a mismatch."""
        problems = check_config(config)
        if problems:
            raise ValueError("; ".join(problems))
        self.config = dict(config)
        self._tensors = {k: np.array(v) for k, v in tensors.items()}
        t = {k: v.astype(_F32) for k, v in self._tensors.items()}
        self.wiring = wiring_mod.from_config(
            config["wiring"], tensors["wiring.adjacency"], tensors["wiring.sensory_adjacency"]
        )
        for name, adj in (("", self.wiring.adjacency), ("sensory_", self.wiring.sensory_adjacency)):
            if not np.array_equal(t[name + "sparsity_mask"], np.abs(adj).astype(_F32)):
                raise ValueError(
                    f"tensor {name}sparsity_mask does not equal |wiring.{name}adjacency|"
                )
        self.input_size = s = self.wiring.input_dim
        self.state_dim = n = self.wiring.units
        self.output_dim = m = self.wiring.output_dim
        self._unfolds = int(config["ode_unfolds"])
        self._eps = _F32(config["epsilon"])
        positive = _softplus if config["implicit_param_constraints"] else (lambda a: a)

        def maps(side: str, size: int) -> tuple[np.ndarray, np.ndarray]:
            mapping = config[f"{side}_mapping"]
            w = t[f"{side}_w"] if mapping in ("affine", "linear") else np.ones(size, _F32)
            b = t[f"{side}_b"] if mapping == "affine" else np.zeros(size, _F32)
            return w, b

        self._in_w, self._in_b = maps("input", s)
        self._out_w, self._out_b = maps("output", m)
        # Synapse weights with the mask folded in: [w*mask*erev, w*mask] stacked for one reduce.
        sw = positive(t["sensory_w"]) * t["sensory_sparsity_mask"]
        self._s_we = np.ascontiguousarray(np.stack([sw * t["sensory_erev"], sw]))
        self._s_mu, self._s_sigma = t["sensory_mu"], t["sensory_sigma"]
        w = positive(t["w"]) * t["sparsity_mask"]
        self._we = np.ascontiguousarray(np.stack([w * t["erev"], w]))
        self._mu, self._sigma = t["mu"], t["sigma"]
        self._cm = positive(t["cm"])
        gleak = positive(t["gleak"])
        self._gleak = gleak
        self._gl_vl = gleak * t["vleak"]
        # buffers
        self._x = np.zeros(s, _F32)
        self._sb = np.zeros((s, n), _F32)
        self._sb2 = np.zeros((2, s, n), _F32)
        self._snd3 = np.zeros((2, 1, n), _F32)  # matmul with a ones row = sum over sources
        self._snd = self._snd3[:, 0, :]
        self._b = np.zeros((n, n), _F32)
        self._b2 = np.zeros((2, n, n), _F32)
        self._nd3 = np.zeros((2, 1, n), _F32)
        self._nd = self._nd3[:, 0, :]
        self._cmt = np.zeros(n, _F32)
        self._num_c = np.zeros(n, _F32)
        self._den_c = np.zeros(n, _F32)
        self._num = np.zeros(n, _F32)
        self._den = np.zeros(n, _F32)
        self._v = np.zeros(n, _F32)
        self._y = np.zeros(m, _F32)
        # numpy path: exp(-sigma (v - mu)) with the sign folded into sigma (exact), and views
        self._s_nsigma, self._nsigma = -self._s_sigma, -self._sigma
        self._x_col, self._v_col = self._x[:, None], self._v[:, None]
        self._one = np.ones((), _F32)
        self._s_ones, self._n_ones = np.ones((1, s), _F32), np.ones((1, n), _F32)
        self._dtu = np.zeros((), _F32)
        self._unfolds0 = np.full((), self._unfolds, _F32)
        # compiled step (controller/cells/kernel.py); None -> the numpy path below
        self._kernel = _kernel.make_ltc_kernel(
            self._unfolds,
            float(self._eps),
            (self._in_w, self._in_b),
            (self._s_mu, self._s_sigma, self._s_we[0], self._s_we[1]),
            (self._mu, self._sigma, self._we[0], self._we[1]),
            (self._cm, self._gleak, self._gl_vl),
            (self._out_w, self._out_b),
        )

    def weights(self) -> dict[str, np.ndarray]:
        """The tensors as stored in a policy file (float32 params/masks, int32 wiring)."""
        return {k: v.copy() for k, v in self._tensors.items()}

    def _synapses_into(
        self,
        col: np.ndarray,
        mu: np.ndarray,
        nsigma: np.ndarray,
        we: np.ndarray,
        b: np.ndarray,
        b2: np.ndarray,
        ones: np.ndarray,
        out: np.ndarray,
    ) -> None:
        """``out[k, 0] = sum_i we[k, i] s[i]`` (k = 0, 1), ``s = sigmoid(sigma (col - mu))``."""
        np.subtract(col, mu, out=b)
        b *= nsigma
        np.exp(b, out=b)
        b += self._one  # 1 / s
        np.divide(we, b, out=b2)
        np.matmul(ones, b2, out=out)

    def step(self, x: np.ndarray, h: np.ndarray, ts: float) -> tuple[np.ndarray, np.ndarray]:
        """Advance one step; returns ``(y (output_dim,), v' (units,))``, internal buffers."""
        if self._kernel is not None:
            out = self._kernel.step(x, h, ts)
            n = self.state_dim
            return out[n:], out[:n]
        xm = self._x
        np.multiply(x, self._in_w, out=xm)
        xm += self._in_b
        self._synapses_into(
            self._x_col,
            self._s_mu,
            self._s_nsigma,
            self._s_we,
            self._sb,
            self._sb2,
            self._s_ones,
            self._snd3,
        )
        # loop invariants: cm_t = cm / (ts / unfolds), constant parts of numerator/denominator
        cmt = self._cmt
        self._dtu.fill(ts)
        self._dtu /= self._unfolds0
        np.divide(self._cm, self._dtu, out=cmt)
        np.add(self._gl_vl, self._snd[0], out=self._num_c)
        np.add(cmt, self._gleak, out=self._den_c)
        self._den_c += self._snd[1]
        self._den_c += self._eps
        v = self._v
        v[...] = h
        num, den, nd, b, b2 = self._num, self._den, self._nd, self._b, self._b2
        mu, nsigma, we, col = self._mu, self._nsigma, self._we, self._v_col
        for _ in range(self._unfolds):
            self._synapses_into(col, mu, nsigma, we, b, b2, self._n_ones, self._nd3)
            np.multiply(cmt, v, out=num)
            num += self._num_c
            num += nd[0]
            np.add(self._den_c, nd[1], out=den)
            np.divide(num, den, out=v)
        y = self._y
        np.multiply(v[: self.output_dim], self._out_w, out=y)
        y += self._out_b
        return y, v
