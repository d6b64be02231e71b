"""A policy as plain arrays: what every export target (C, fixed-point C, ONNX) generates from.

:func:`lower` turns a :class:`~controller.policy.Policy` into a :class:`PolicyPlan`: the
observation mapping, the cell and the action mapping of ``Policy.step`` with every weight as a
float32 numpy array in the layout the runtime's compiled step uses (``cfc_kernel.c``). The
generators only read plans; none of them touches a cell object.

Arithmetic the plan encodes (``Policy.step``)::

    x       = clip((obs - mean) * inv_std, -clip, clip)     (obs_dim,)   clip None: no clip
    ts      = dt * time_scale                               dt in seconds
    y, h'   = cell(x, h, ts)                                see CfCPlan / LTCPlan below
    action  = offset + scale * (tanh(y) if tanh else y)     (act_dim,)   env units

With action feedback (``PolicyPlan.feedback``) the cell's input is ``[x | f]`` (``obs_dim +
act_dim``) where ``f`` is the previous tick's squashed action ``tanh(y)`` (or ``y``), zeros
after a reset; ``f`` is the last ``act_dim`` values of the state, after the cell's own
``cell_state_dim``, and each step writes the new squashed action there.

With an action low-pass (``PolicyPlan.low_pass_hz``, :mod:`controller.action_filter`) the
squashed action ``u`` is filtered before the mapping, ``z = z + alpha * (u - z)`` with ``alpha
= 1 - exp(-2 pi low_pass_hz dt)``, and ``action = offset + scale * z``; ``z`` (normalised
units, zeros after a reset) is the state's last ``act_dim`` values, after the fed-back action.

Weights are torch ``Linear`` layout: ``weight`` ``(out, in)``; a dense layer is
``y = weight @ a + bias`` with each output's products summed in input order, bias last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from liquidnode.controller.cells import Projected
from liquidnode.controller.cells.cfc import CfCCell
from liquidnode.controller.cells.ltc import LTCCell
from liquidnode.controller.cells.wired_cfc import WiredCfCCell
from liquidnode.controller.errors import LiquidNodeError

if TYPE_CHECKING:
    from liquidnode.controller.policy import Policy

_F32 = np.float32


class ExportError(LiquidNodeError):
    """A policy (or an option) that an export target cannot express."""


@dataclass
class Dense:
    """``y = weight @ a + bias``: ``weight`` float32 ``(out, in)``, ``bias`` ``(out,)``."""

    weight: np.ndarray
    bias: np.ndarray

    @property
    def n_out(self) -> int:
        """Output length."""
        return int(self.weight.shape[0])

    @property
    def n_in(self) -> int:
        """Input length."""
        return int(self.weight.shape[1])


@dataclass
class CfCPlan:
    """One CfC cell (``controller/cells/cfc.py``) on ``z = [x (n_in) | h (units)]``.

    Attributes:
        n_in: input length; units: state length ``H``.
        mode: ``"default"``, ``"pure"`` or ``"no_gate"``.
        activation: backbone activation (``lecun_tanh`` = ``1.7159 tanh(0.666 a)``, ``tanh``,
            ``relu``, ``silu``, ``gelu``), unused without a backbone.
        backbone: dense layers, each followed by the activation.
        heads: default/no_gate: ``4H`` rows ``[ff1 | ff2 | time_a | time_b]`` (not negated);
            pure: ``H`` rows of ``ff1``. Wiring masks are already multiplied in.
        abs_w_tau, A: ``(H,)`` (pure mode only; else None).
        proj: the ``proj_size`` readout on ``h'`` or None.
    """

    n_in: int
    units: int
    mode: str
    activation: str
    backbone: list[Dense]
    heads: Dense
    abs_w_tau: np.ndarray | None = None
    A: np.ndarray | None = None
    proj: Dense | None = None

    @property
    def out_dim(self) -> int:
        """Length of ``y`` (``proj`` rows, else ``H``)."""
        return self.proj.n_out if self.proj is not None else self.units


@dataclass
class WiredPlan:
    """Wired CfC (NCP): CfC layers without backbone stepped in order, each on the previous
    layer's new state; the state is the layers' states concatenated in layer order and ``y``
    is the last layer's new state."""

    layers: list[CfCPlan]

    @property
    def units(self) -> int:
        """State length (sum of the layers' units)."""
        return sum(layer.units for layer in self.layers)


@dataclass
class LTCPlan:
    """LTC (``controller/cells/ltc.py``) with softplus and masks folded in, ``S`` inputs,
    ``N`` neurons, ``M`` outputs; synapse matrices are ``(source, dest)``.

    Step: ``x' = x in_w + in_b``; sensory ``s = sigmoid((x'_i - s_mu) s_sigma)``,
    ``num_s = sum_i s s_we``, ``den_s = sum_i s s_w``; ``cmt = cm / (ts / unfolds)``; then
    ``unfolds`` times ``v <- (cmt v + gl_vl + num_s + sum_i s we) / (cmt + gleak + den_s + eps +
    sum_i s w)`` with ``s = sigmoid((v_i - mu) sigma)``; ``y = v[:M] out_w + out_b``.
    """

    n_in: int
    units: int
    out_dim: int
    unfolds: int
    epsilon: float
    in_w: np.ndarray
    in_b: np.ndarray
    s_mu: np.ndarray
    s_sigma: np.ndarray
    s_we: np.ndarray
    s_w: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    we: np.ndarray
    w: np.ndarray
    cm: np.ndarray
    gleak: np.ndarray
    gl_vl: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray


@dataclass
class RecurrentPlan:
    """LSTM or GRU (torch gate order), state ``[h | c]`` (LSTM) or ``h`` (GRU).

    ``ih``: ``W_ih x + b_ih`` (``4H``/``3H`` rows), ``hh``: ``W_hh h + b_hh``. LSTM:
    ``a = ih + hh`` split ``i, f, g, o``; ``c' = sig(f) c + sig(i) tanh(g)``,
    ``h' = sig(o) tanh(c')``. GRU: ``r, z = sig(ih_r + hh_r), sig(ih_z + hh_z)``,
    ``n = tanh(ih_n + r hh_n)``, ``h' = (1 - z) n + z h``. ``y = h'`` (then ``proj``).
    """

    kind: str
    n_in: int
    units: int
    ih: Dense
    hh: Dense
    proj: Dense | None = None


@dataclass
class MLPPlan:
    """MLP over ``frames`` stacked inputs ``[x_t | x_{t-1} | ...]``; the state holds the
    previous ``frames - 1`` inputs, newest first. ``a <- act(W a + b)`` per layer (``tanh`` or
    ``relu``), ``y`` = the last layer's activations (then ``proj``)."""

    n_in: int
    frames: int
    activation: str
    layers: list[Dense]
    proj: Dense | None = None


CellPlan = CfCPlan | WiredPlan | LTCPlan | RecurrentPlan | MLPPlan


@dataclass
class PolicyPlan:
    """A whole ``Policy.step`` (see module docstring).

    Attributes:
        obs_dim, act_dim, state_dim: vector lengths.
        mean, inv_std: float32 ``(obs_dim,)``; ``normalise`` False when they are the identity.
        clip: float or None (no clipping).
        tanh: squash the cell output with tanh.
        scale, offset: float32 ``(act_dim,)``; ``affine`` False when they are the identity.
        time_scale: ``ts = dt * time_scale``.
        cell: the cell plan (CfC, wired CfC, LTC, LSTM/GRU, MLP); with ``feedback`` its
            input is ``obs_dim + act_dim`` long.
        info: the policy's metadata (spaces, rate, env id, provenance) for the generated files.
        feedback: the cell also gets the previous squashed action (see module docstring),
            kept in the state after the cell's own ``cell_state_dim`` values.
        low_pass_hz: the squashed action passes through a first-order low-pass of this
            cut-off (Hz) before the action mapping (:mod:`controller.action_filter`); the
            filtered command is the state's last ``act_dim`` values. None: no filter.
    """

    obs_dim: int
    act_dim: int
    state_dim: int
    mean: np.ndarray
    inv_std: np.ndarray
    normalise: bool
    clip: float | None
    tanh: bool
    scale: np.ndarray
    offset: np.ndarray
    affine: bool
    time_scale: float
    cell: CellPlan
    info: dict[str, Any] = field(default_factory=dict)
    feedback: bool = False
    low_pass_hz: float | None = None

    @property
    def cell_state_dim(self) -> int:
        """Length of the cell's own state (``state_dim`` less the fed-back action and the
        filtered command)."""
        extra = (self.feedback, self.low_pass_hz is not None)
        return self.state_dim - self.act_dim * sum(extra)

    @property
    def cell_in(self) -> int:
        """Length of the cell's input: ``obs_dim``, plus ``act_dim`` with feedback."""
        return self.obs_dim + (self.act_dim if self.feedback else 0)

    @property
    def cell_kind(self) -> str:
        """``"cfc"``, ``"wired_cfc"`` or ``"ltc"``."""
        if isinstance(self.cell, RecurrentPlan):
            return self.cell.kind
        kinds = {CfCPlan: "cfc", WiredPlan: "wired_cfc", LTCPlan: "ltc", MLPPlan: "mlp"}
        return kinds[type(self.cell)]


def _dense(weight: np.ndarray, bias: np.ndarray) -> Dense:
    return Dense(np.ascontiguousarray(weight, _F32), np.ascontiguousarray(bias, _F32))


def _cfc_plan(cell: CfCCell, mask: np.ndarray | None, proj: Dense | None) -> CfCPlan:
    t = cell.weights()
    cfg = cell.config
    backbone = [
        _dense(t[f"backbone.{i}.weight"], t[f"backbone.{i}.bias"])
        for i in range(int(cfg["backbone_layers"]))
    ]
    names = ("ff1",) if cell.mode == "pure" else ("ff1", "ff2", "time_a", "time_b")
    ws = []
    for name in names:
        w = t[f"{name}.weight"]
        if mask is not None and name in ("ff1", "ff2"):
            w = w * np.asarray(mask, _F32)
        ws.append(w)
    heads = _dense(np.concatenate(ws, axis=0), np.concatenate([t[f"{n}.bias"] for n in names]))
    plan = CfCPlan(
        n_in=cell.input_size,
        units=cell.units,
        mode=cell.mode,
        activation=str(cfg["activation"]),
        backbone=backbone,
        heads=heads,
        proj=proj,
    )
    if cell.mode == "pure":
        plan.abs_w_tau = np.abs(t["w_tau"]).astype(_F32)
        plan.A = t["A"].astype(_F32)
    return plan


def _ltc_plan(cell: LTCCell) -> LTCPlan:
    # the cell's folded arrays (softplus and masks applied), exactly what its step uses
    return LTCPlan(
        n_in=cell.input_size,
        units=cell.state_dim,
        out_dim=cell.output_dim,
        unfolds=cell._unfolds,
        epsilon=float(cell._eps),
        in_w=cell._in_w.astype(_F32),
        in_b=cell._in_b.astype(_F32),
        s_mu=cell._s_mu.astype(_F32),
        s_sigma=cell._s_sigma.astype(_F32),
        s_we=cell._s_we[0].astype(_F32),
        s_w=cell._s_we[1].astype(_F32),
        mu=cell._mu.astype(_F32),
        sigma=cell._sigma.astype(_F32),
        we=cell._we[0].astype(_F32),
        w=cell._we[1].astype(_F32),
        cm=cell._cm.astype(_F32),
        gleak=cell._gleak.astype(_F32),
        gl_vl=cell._gl_vl.astype(_F32),
        out_w=cell._out_w.astype(_F32),
        out_b=cell._out_b.astype(_F32),
    )


def lower(policy: Policy) -> PolicyPlan:
    """The plan of ``policy`` (weights copied; the policy is not modified). A latency input
    is folded in at the latency the policy is told (:mod:`controller.export.fold_latency`).

    Raises:
        ExportError: the policy's cell is of a type no exporter knows.
    """
    from liquidnode.controller.export.fold_latency import fold_latency

    policy = fold_latency(policy)
    cell: Any = policy.cell
    proj = None
    if isinstance(cell, Projected):
        proj = _dense(cell._w, cell._b)
        cell = cell.cell
    plan_cell: CellPlan
    if isinstance(cell, CfCCell):
        plan_cell = _cfc_plan(cell, None, proj)
    elif isinstance(cell, WiredCfCCell) and proj is None:
        masks = [
            np.asarray(cell.weights()[f"layer_{i}.sparsity_mask"], _F32)
            for i in range(len(cell._cells))
        ]
        plan_cell = WiredPlan(
            [_cfc_plan(c, m, None) for c, m in zip(cell._cells, masks, strict=True)]
        )
    elif isinstance(cell, LTCCell) and proj is None:
        plan_cell = _ltc_plan(cell)
    elif type(cell).__name__ in ("LSTMCell", "GRUCell"):
        t = cell.weights()
        plan_cell = RecurrentPlan(
            kind="lstm" if type(cell).__name__ == "LSTMCell" else "gru",
            n_in=int(cell.input_size),
            units=int(cell.config["units"]),
            ih=_dense(t["weight_ih"], t["bias_ih"]),
            hh=_dense(t["weight_hh"], t["bias_hh"]),
            proj=proj,
        )
    elif type(cell).__name__ == "MLPCell":
        t = cell.weights()
        n_layers = len(cell.config["hidden_units"])
        plan_cell = MLPPlan(
            n_in=int(cell.input_size),
            frames=int(cell.frames),
            activation=str(cell.config["activation"]),
            layers=[
                _dense(t[f"layers.{i}.weight"], t[f"layers.{i}.bias"]) for i in range(n_layers)
            ],
            proj=proj,
        )
    else:
        kind = policy.metadata.cell.get("type")
        raise ExportError(
            f"cannot export a {kind!r} cell: export supports cfc, wired_cfc, ltc, lstm, gru, mlp"
        )
    m = policy.metadata
    clip = getattr(policy, "_clip", None)
    return PolicyPlan(
        obs_dim=policy.obs_dim,
        act_dim=policy.act_dim,
        state_dim=policy.state_dim,
        mean=policy.obs_mean.astype(_F32),
        inv_std=(1.0 / policy.obs_std.astype(np.float64)).astype(_F32),
        normalise=bool(np.any(policy.obs_mean) or np.any(policy.obs_std != 1)),
        clip=None if clip is None or not np.isfinite(clip) else float(clip),
        tanh=m.action.get("squash", "none") == "tanh",
        scale=policy.action_scale.astype(_F32),
        offset=policy.action_offset.astype(_F32),
        affine=bool(np.any(policy.action_scale != 1) or np.any(policy.action_offset)),
        time_scale=float(m.time_scale),
        cell=plan_cell,
        info={
            "cell": m.cell.get("type"),
            "env_id": m.env_id,
            "control_rate_hz": m.control_rate_hz,
            "observation_space": m.observation_space,
            "action_space": m.action_space,
            "provenance": m.provenance,
        },
        feedback=policy.feedback,
        low_pass_hz=None if policy.low_pass is None else policy.low_pass.cutoff_hz,
    )
