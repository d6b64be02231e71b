"""ONNX export: ``Policy.step`` as a graph with the hidden state as an explicit input/output.

Inputs (float32; ``batch`` is a free dimension):

| name | shape | meaning |
|---|---|---|
| ``obs`` | ``[batch, obs_dim]`` | observation, env units (as ``Policy.step`` takes it) |
| ``dt`` | ``[batch, 1]`` | elapsed time since the previous tick, seconds (> 0) |
| ``state`` | ``[batch, state_dim]`` | hidden state, the layout of ``Policy.state``; zeros = reset |

Outputs: ``action`` ``[batch, act_dim]`` (env units, before clamping) and ``state_out``
``[batch, state_dim]`` (feed it back as ``state`` next tick).

Opset :data:`OPSET` (ONNX IR version :data:`IR_VERSION`), standard operators only (Gemm, Tanh,
Sigmoid, Exp, Erf, ReduceSum, ...), built with ``onnx.helper`` directly from the plan's numpy
weights (no torch). The model's ``metadata_props`` hold ``liquidnode.*`` keys: the spaces,
``control_rate_hz``, ``time_scale``, ``env_id``, ``cell``, ``provenance`` (JSON strings), the
input/output layout, ``action_feedback`` (``true``: ``act_dim`` values of ``state`` after the
cell's are the previous squashed action, fed to the cell after the observation) and
``action_low_pass_hz`` (a number: the state's last ``act_dim`` values are the filtered command
of the action low-pass, :mod:`controller.action_filter`; ``null``: none). This module imports
``onnx``; the runtime never imports it.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from liquidnode.controller.export.lowering import (
    CfCPlan,
    Dense,
    ExportError,
    LTCPlan,
    MLPPlan,
    PolicyPlan,
    RecurrentPlan,
    WiredPlan,
)

OPSET = 17
IR_VERSION = 8


class _Graph:
    """Nodes and initializers being collected (names are generated, unique)."""

    def __init__(self, helper: Any, numpy_helper: Any) -> None:
        self.h, self.nh = helper, numpy_helper
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def _name(self, base: str) -> str:
        self._n += 1
        return f"{base}_{self._n}"

    def const(self, value: Any, base: str = "c") -> str:
        name = self._name(base)
        arr = np.asarray(value)
        arr = arr.astype(np.int64) if arr.dtype.kind in "iu" else arr.astype(np.float32)
        self.inits.append(self.nh.from_array(arr, name))
        return name

    def op(
        self, op: str, *inputs: str, out: str | None = None, n_out: int = 1, **attrs: Any
    ) -> Any:
        outs = [out] if out is not None else [self._name(op.lower()) for _ in range(n_out)]
        self.nodes.append(self.h.make_node(op, list(inputs), outs, **attrs))
        return outs[0] if n_out == 1 else outs

    def dense(self, a: str, d: Dense, base: str) -> str:
        w, b = self.const(d.weight, base + "_w"), self.const(d.bias, base + "_b")
        return self.op("Gemm", a, w, b, transB=1)

    def split(self, a: str, sizes: list[int]) -> list[str]:
        if len(sizes) == 1:
            return [a]
        outs = self.op(
            "Split", a, self.const(np.array(sizes, np.int64), "split"), n_out=len(sizes), axis=1
        )
        return list(outs)


def _activation(g: _Graph, a: str, kind: str) -> str:
    if kind == "lecun_tanh":
        t = g.op("Tanh", g.op("Mul", a, g.const(np.float32(0.666))))
        return g.op("Mul", t, g.const(np.float32(1.7159)))
    if kind == "tanh":
        return g.op("Tanh", a)
    if kind == "relu":
        return g.op("Relu", a)
    if kind == "silu":
        return g.op("Mul", a, g.op("Sigmoid", a))
    if kind == "gelu":  # exact erf GELU
        e = g.op("Erf", g.op("Mul", a, g.const(np.float32(0.7071067811865476))))
        half = g.op("Mul", a, g.const(np.float32(0.5)))
        return g.op("Mul", half, g.op("Add", e, g.const(np.float32(1.0))))
    raise ExportError(f"no ONNX form of activation {kind!r}")


def _cfc(g: _Graph, c: CfCPlan, x: str, h: str, ts: str, base: str) -> tuple[str, str]:
    """One CfC step; returns ``(y, h')``."""
    a = g.op("Concat", x, h, axis=1)
    for k, layer in enumerate(c.backbone):
        a = _activation(g, g.dense(a, layer, f"{base}bb{k}"), c.activation)
    t = g.dense(a, c.heads, f"{base}heads")
    H = c.units
    if c.mode == "pure":
        assert c.abs_w_tau is not None and c.A is not None
        rate = g.op("Add", g.op("Abs", t), g.const(c.abs_w_tau, f"{base}abs_w_tau"))
        e = g.op("Exp", g.op("Mul", rate, g.op("Neg", ts)))
        new = g.op(
            "Add",
            g.op("Mul", g.op("Mul", e, g.const(-c.A, f"{base}neg_A")), t),
            g.const(c.A, f"{base}A"),
        )
    else:
        f1, f2, ta, tb = g.split(t, [H, H, H, H])
        f1, f2 = g.op("Tanh", f1), g.op("Tanh", f2)
        gate = g.op("Sigmoid", g.op("Add", g.op("Mul", ta, ts), tb))
        if c.mode == "no_gate":
            new = g.op("Add", f1, g.op("Mul", gate, f2))
        else:
            keep = g.op("Sub", g.const(np.float32(1.0)), gate)
            new = g.op("Add", g.op("Mul", f1, keep), g.op("Mul", gate, f2))
    y = g.dense(new, c.proj, f"{base}proj") if c.proj is not None else new
    return y, new


def _synapses(
    g: _Graph, src: str, mu: np.ndarray, sigma: np.ndarray, we: np.ndarray, w: np.ndarray, base: str
) -> tuple[str, str]:
    """``sum_i s we`` and ``sum_i s w`` over sources ``i`` of ``src`` [B, n_src]."""
    col = g.op("Unsqueeze", src, g.const(np.array([2], np.int64)))
    pre = g.op("Mul", g.op("Sub", col, g.const(mu, base + "mu")), g.const(sigma, base + "sigma"))
    s = g.op("Sigmoid", pre)
    axes = g.const(np.array([1], np.int64))
    num = g.op("ReduceSum", g.op("Mul", s, g.const(we, base + "we")), axes, keepdims=0)
    den = g.op("ReduceSum", g.op("Mul", s, g.const(w, base + "w")), axes, keepdims=0)
    return num, den


def _ltc(g: _Graph, c: LTCPlan, x: str, v: str, ts: str) -> tuple[str, str]:
    xm = g.op("Add", g.op("Mul", x, g.const(c.in_w, "in_w")), g.const(c.in_b, "in_b"))
    s_num, s_den = _synapses(g, xm, c.s_mu, c.s_sigma, c.s_we, c.s_w, "sensory_")
    step = g.op("Div", ts, g.const(np.float32(c.unfolds)))
    cmt = g.op("Div", g.const(c.cm, "cm"), step)
    num_c = g.op("Add", g.const(c.gl_vl, "gl_vl"), s_num)
    den_c = g.op(
        "Add",
        g.op("Add", g.op("Add", cmt, g.const(c.gleak, "gleak")), s_den),
        g.const(np.float32(c.epsilon)),
    )
    for k in range(c.unfolds):
        num, den = _synapses(g, v, c.mu, c.sigma, c.we, c.w, f"u{k}_")
        top = g.op("Add", g.op("Add", g.op("Mul", cmt, v), num_c), num)
        v = g.op("Div", top, g.op("Add", den_c, den))
    head = g.split(v, [c.out_dim, c.units - c.out_dim]) if c.out_dim < c.units else [v]
    y = g.op("Add", g.op("Mul", head[0], g.const(c.out_w, "out_w")), g.const(c.out_b, "out_b"))
    return y, v


def _recurrent(g: _Graph, c: RecurrentPlan, x: str, state: str) -> tuple[str, str]:
    H = c.units
    h, cs = g.split(state, [H, H]) if c.kind == "lstm" else (state, "")
    gi, gh = g.dense(x, c.ih, "ih"), g.dense(h, c.hh, "hh")
    if c.kind == "lstm":
        a_i, a_f, a_g, a_o = g.split(g.op("Add", gi, gh), [H, H, H, H])
        c_new = g.op(
            "Add",
            g.op("Mul", g.op("Sigmoid", a_f), cs),
            g.op("Mul", g.op("Sigmoid", a_i), g.op("Tanh", a_g)),
        )
        h_new = g.op("Mul", g.op("Sigmoid", a_o), g.op("Tanh", c_new))
        new = g.op("Concat", h_new, c_new, axis=1)
    else:
        i_r, i_z, i_n = g.split(gi, [H, H, H])
        h_r, h_z, h_n = g.split(gh, [H, H, H])
        r = g.op("Sigmoid", g.op("Add", i_r, h_r))
        z = g.op("Sigmoid", g.op("Add", i_z, h_z))
        n = g.op("Tanh", g.op("Add", i_n, g.op("Mul", r, h_n)))
        keep = g.op("Sub", g.const(np.float32(1.0)), z)
        h_new = new = g.op("Add", g.op("Mul", keep, n), g.op("Mul", z, h))
    y = g.dense(h_new, c.proj, "proj") if c.proj is not None else h_new
    return y, new


def _mlp(g: _Graph, c: MLPPlan, x: str, state: str) -> tuple[str, str]:
    keep = (c.frames - 1) * c.n_in
    a = g.op("Concat", x, state, axis=1) if keep else x
    new = g.split(a, [keep, c.n_in])[0] if keep else state
    for k, layer in enumerate(c.layers):
        a = _activation(g, g.dense(a, layer, f"layer{k}"), c.activation)
    y = g.dense(a, c.proj, "proj") if c.proj is not None else a
    return y, new


def build_model(plan: PolicyPlan) -> Any:
    """The ``onnx.ModelProto`` of ``plan`` (checked with ``onnx.checker``)."""
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ExportError(
            "the onnx target needs the onnx package: pip install 'liquidnode[export]'"
        ) from None
    g = _Graph(helper, numpy_helper)
    x = "obs"
    if plan.normalise:
        x = g.op(
            "Mul",
            g.op("Sub", x, g.const(plan.mean, "obs_mean")),
            g.const(plan.inv_std, "obs_inv_std"),
        )
    if plan.clip is not None:
        x = g.op("Clip", x, g.const(np.float32(-plan.clip)), g.const(np.float32(plan.clip)))
    ts = g.op("Mul", "dt", g.const(np.float32(plan.time_scale), "time_scale"))
    # state = [cell state | previous squashed action (feedback) | filtered command (low-pass)]
    sizes = {"cell": plan.cell_state_dim, "fed": plan.act_dim if plan.feedback else 0}
    sizes["filtered"] = plan.act_dim if plan.low_pass_hz is not None else 0
    used = {k: n for k, n in sizes.items() if n}
    parts = dict(zip(used, g.split("state", list(used.values())), strict=True)) if used else {}
    state = parts.get("cell", "state")
    if plan.feedback:
        x = g.op("Concat", x, parts["fed"], axis=1)
    cell = plan.cell
    if isinstance(cell, CfCPlan):
        y, new = _cfc(g, cell, x, state, ts, "")
    elif isinstance(cell, WiredPlan):
        hs = g.split(state, [layer.units for layer in cell.layers])
        news, inp = [], x
        for k, (layer, h) in enumerate(zip(cell.layers, hs, strict=True)):
            inp, _ = _cfc(g, layer, inp, h, ts, f"l{k}_")
            news.append(inp)
        y = inp
        new = g.op("Concat", *news, axis=1)
    elif isinstance(cell, LTCPlan):
        y, new = _ltc(g, cell, x, state, ts)
    elif isinstance(cell, RecurrentPlan):
        y, new = _recurrent(g, cell, x, state)
    elif isinstance(cell, MLPPlan):
        y, new = _mlp(g, cell, x, state)
    else:  # pragma: no cover - lower() only builds the three
        raise ExportError(f"no ONNX generator for {type(cell).__name__}")
    a = g.op("Tanh", y) if plan.tanh else y
    news = [new] if plan.cell_state_dim else []
    if plan.feedback:
        news.append(a)
    if plan.low_pass_hz is not None:  # z += (1 - exp(-2 pi f dt)) (a - z)
        w = np.float32(-2.0 * np.pi * plan.low_pass_hz)
        alpha = g.op("Sub", g.const(np.float32(1.0)), g.op("Exp", g.op("Mul", "dt", g.const(w))))
        z = parts["filtered"]
        a = g.op("Add", z, g.op("Mul", alpha, g.op("Sub", a, z)))
        news.append(a)
    if news:  # (a stateless policy keeps the cell's empty state)
        new = news[0] if len(news) == 1 else g.op("Concat", *news, axis=1)
    if plan.affine:
        a = g.op(
            "Add",
            g.op("Mul", a, g.const(plan.scale, "act_scale")),
            g.const(plan.offset, "act_offset"),
        )
    g.op("Identity", a, out="action")
    g.op("Identity", new, out="state_out")

    f = onnx.TensorProto.FLOAT
    inputs = [
        helper.make_tensor_value_info("obs", f, ["batch", plan.obs_dim]),
        helper.make_tensor_value_info("dt", f, ["batch", 1]),
        helper.make_tensor_value_info("state", f, ["batch", plan.state_dim]),
    ]
    outputs = [
        helper.make_tensor_value_info("action", f, ["batch", plan.act_dim]),
        helper.make_tensor_value_info("state_out", f, ["batch", plan.state_dim]),
    ]
    graph = helper.make_graph(g.nodes, "liquidnode_policy", inputs, outputs, g.inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="liquidnode",
        doc_string=(
            "Policy.step(obs, dt) with the hidden state explicit: feed state_out back as state; "
            "zeros = reset."
        ),
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(model, metadata(plan))
    onnx.checker.check_model(model, full_check=True)
    return model


def metadata(plan: PolicyPlan) -> dict[str, str]:
    """The ``metadata_props`` of the exported model (every value a string, JSON where nested)."""
    info = plan.info
    return {
        "liquidnode.format": "policy-step/1",
        "liquidnode.cell": str(info.get("cell")),
        "liquidnode.env_id": json.dumps(info.get("env_id")),
        "liquidnode.control_rate_hz": json.dumps(info.get("control_rate_hz")),
        "liquidnode.time_scale": json.dumps(plan.time_scale),
        "liquidnode.observation_space": json.dumps(info.get("observation_space")),
        "liquidnode.action_space": json.dumps(info.get("action_space")),
        "liquidnode.provenance": json.dumps(info.get("provenance"), sort_keys=True),
        "liquidnode.inputs": "obs [batch, obs_dim] env units; dt [batch, 1] s; "
        "state [batch, state_dim] (Policy.state layout, zeros = reset)",
        "liquidnode.action_feedback": json.dumps(plan.feedback),
        "liquidnode.action_low_pass_hz": json.dumps(plan.low_pass_hz),
        "liquidnode.outputs": "action [batch, act_dim] env units (unclamped); "
        "state_out [batch, state_dim]",
        "liquidnode.opset": str(OPSET),
    }


def write(plan: PolicyPlan, path: str) -> None:
    """Build and save the model to ``path``."""
    import onnx

    onnx.save_model(build_model(plan), path)
