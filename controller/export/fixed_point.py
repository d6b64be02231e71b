"""Fixed-point C export: int16 activations, int32 accumulators, LUT tanh; weights int16
(``q15``) or int8 (``q7``: half the weight flash and a cheaper AVR multiply, a coarser step;
a ``tanh``/``lecun_tanh`` CfC backbone runs on bytes, :mod:`.q7_bytes`). ``fixed_dt``
specialises the step for one control period, the CfC time gate folded (:func:`build`).

For MCUs without an FPU. The interface is the float32 export's (``<prefix>_step(state, obs, dt,
action)`` with float ``obs``/``dt``/``action``): the observation mapping and the action mapping
are a few float operations per channel at the boundary; everything in between is integer.
Covers CfC (all modes, backbone ``lecun_tanh``/``tanh``/``relu``, ``proj_size``), wired CfC
(NCP), LTC (:mod:`.q15_ltc`) and the baselines LSTM, GRU, MLP (:mod:`.q15_baselines`); other
backbone activations raise :class:`ExportError`.

Number formats (``Qf``: ``real = q / 2^f``):

- normalised observation ``x``: int16, ``f = 15 - ceil(log2(clip))`` (clip 10: Q11), saturating
  (no clip: ±16, Q11);
- state ``h``: int16 Q15 (``default``, ``|h| <= 1``), Q14 (``no_gate``, ``|h| <= 2``) or, in
  the ``pure`` mode (``h' = A - A exp(-ts (|w_tau| + |f|)) f``), the format of ``max|A| (1 +
  1 / (e ts))`` for ``ts >= TS_MIN_PURE`` (0.25; A = 1: Q13); there ``f`` (the ``ff1`` head,
  no activation) is int16 in the format of its bound, ``ts (|w_tau| + |f|)`` Q12 and
  ``exp(-u)`` a 65-entry table of ``2^(-k/64)`` (Q15, interpolated, shifted by the integer
  part of ``u / ln 2``; worst error ``EPS_EXP`` = 5.3e-5, measured over every Q12 input);
- action feedback (``PolicyPlan.feedback``, a ``tanh`` squash only): the previous squashed
  action, rounded from Q15 to ``x``'s format, kept after the cell's state and copied after
  the observation into the cell's input;
- ``ts = dt * time_scale``: int16 Q12, saturating at 8;
- backbone outputs: Q15 (``tanh``; ``lecun_tanh`` also, its 1.7159 folded into the next
  layer's weights and its 0.666 into this layer's), ``relu`` in a format from its bound;
- every dense layer ``W a + b``: int16 weights, int32 bias and accumulator in a format
  ``2^-s`` chosen per layer so that (1) every weight fits int16 and (2) the accumulator of any
  input within the formats' ranges stays below ``2^30`` (no overflow, ever);
- activations take the accumulator rounded to Q12 (clamped to ±16): ``tanh`` by a 513-entry
  table of ``tanh(k / 64)`` (Q15) with linear interpolation, ``sigmoid(v) = (1 + tanh(v/2))/2``
  from the same table.

The per-step error bound (:class:`Quantised` ``bound_action``/``bound_state``) is derived from
the quantised weights: rounding of every weight and bias, of each requantisation, the table's
worst error (measured over every Q12 input), propagated through each layer by the weights'
absolute row sums and the activations' Lipschitz constants (tanh 1, sigmoid 1/4), for one step
from a given state and ``ts <= 2``. It bounds ``|step_q15 - Policy.step|`` from the same state;
over many steps the difference depends on the closed loop (see the tests and the README).
It is a worst case (every rounding at its extreme, every input at its format's limit, errors
added through the weights' absolute row sums): the errors measured on the shipped pendulum
policies are a few hundred times smaller.
Right shifts of negative values are arithmetic (gcc, avr-gcc, arm-none-eabi-gcc).
"""

from __future__ import annotations

import math

import numpy as np

from liquidnode.controller.export import q7_bytes, q15_synapses
from liquidnode.controller.export.c_source import FLASH_MACROS, c_float, header
from liquidnode.controller.export.f32_kernels import HELPERS as F32_HELPERS
from liquidnode.controller.export.lowering import (
    CfCPlan,
    ExportError,
    LTCPlan,
    MLPPlan,
    PolicyPlan,
    RecurrentPlan,
    WiredPlan,
)
from liquidnode.controller.export.q15_arith import (
    EPS_EXP,
    EPS_SIGMOID,
    EPS_TANH,
    HELPERS,
    ORDER,
    Q_ACT,
    TS_MAX,
    TS_MIN_PURE,
    Emitted,
    Q15Unit,
    QDense,
    Quantised,
    Segment,
    concat,
    q12_expr,
    rshift_expr,
    segment,
)


def _check(plan: PolicyPlan) -> list[CfCPlan]:
    cell = plan.cell
    if not isinstance(cell, (CfCPlan, WiredPlan)):
        raise ExportError(
            f"q15 export supports cfc, wired_cfc, ltc, lstm, gru and mlp cells, not "
            f"{plan.cell_kind}; export it with --precision f32"
        )
    layers = cell.layers if isinstance(cell, WiredPlan) else [cell]
    for c in layers:
        if c.backbone and c.activation not in ("lecun_tanh", "tanh", "relu"):
            raise ExportError(
                f"q15 export supports the backbone activations lecun_tanh, tanh and relu, not "
                f"{c.activation}"
            )
    return layers


def _cfc(
    u: Q15Unit,
    c: CfCPlan,
    name: str,
    x: str,
    xin: Segment,
    h: str,
    f_h: int,
    fixed_ts: float | None = None,
) -> Segment:
    """Emit one q15 CfC step (input ``x`` int16, state ``h`` int16 in place); returns the new
    state's segment (its error bound includes ``xin``'s). ``fixed_ts``: the time gate folded
    for this ``ts`` (:func:`_heads`)."""
    n, H = c.n_in, c.units
    byte = q7_bytes.byte_backbone(c, u.wmax <= 127)
    if byte:
        a, seg = q7_bytes.emit_backbone(u, c, name, x, xin, h, f_h)
        width = c.backbone[-1].n_out
        backbone = []
    else:
        u.emit(f"    for (i = 0; i < {n}u; ++i) s->z[i] = {x}[i];")
        u.emit(f"    for (i = 0; i < {H}u; ++i) s->z[{n}u + i] = {h}[i];")
        seg = concat(xin, segment(H, 2.0**-f_h, 2.0 ** (15 - f_h), 0.0))
        a, width = "s->z", n + H
        backbone = c.backbone
    for k, layer in enumerate(backbone):
        lecun = c.activation == "lecun_tanh"
        q = u.quantise(layer.weight, layer.bias, seg, 0.666 if lecun else 1.0)
        dst = "s->a" if k % 2 == 0 else "s->b"
        u.dense(f"{name}bb{k}", q, a, width, "s->acc")
        e_in = q.err + 2.0 ** -(Q_ACT + 1)
        if c.activation == "relu":
            f = min(q.s, 15 - max(0, math.ceil(math.log2(max(float(q.bound.max()), 1e-9)))))
            u.use("ln_sat16")
            u.emit(
                f"    for (i = 0; i < {layer.n_out}u; ++i) {dst}[i] = "
                f"ln_sat16({rshift_expr('s->acc[i] > 0 ? s->acc[i] : 0', q.s - f)});"
            )
            seg = Segment(np.full(layer.n_out, 2.0**-f), q.bound, q.err + 2.0 ** -(f + 1))
        else:
            u.use("ln_clamp12", "ln_tanh_q12")
            u.emit(
                f"    for (i = 0; i < {layer.n_out}u; ++i) {dst}[i] = "
                f"ln_tanh_q12({q12_expr('s->acc[i]', q.s - Q_ACT)});"
            )
            gain = 1.7159 if lecun else 1.0
            seg = segment(layer.n_out, gain * 2.0**-15, gain, gain * (e_in + EPS_TANH))
        a, width = dst, layer.n_out
    if c.mode == "pure":
        return _pure(u, c, name, a, width, seg, h, f_h, byte)
    q1, q2, e_g = _heads(u, c, name, a, width, seg, byte, fixed_ts)
    e_s = e_g / 4 + EPS_SIGMOID
    e_f1 = q1.err + 2.0 ** -(Q_ACT + 1) + EPS_TANH
    e_f2 = q2.err + 2.0 ** -(Q_ACT + 1) + EPS_TANH
    if c.mode == "no_gate":  # h' = f1 + s f2, Q14
        prod = rshift_expr("(int32_t)(int16_t)f2 * sg", 15)
        u.emit(f"        {h}[i] = ln_sat16({rshift_expr(f'f1 + ({prod})', 1)});")
        err = e_f1 + e_f2 + e_s + e_f2 * e_s + 2.0**-16 + 2.0**-15
    else:  # h' = f1 + (f2 - f1) s, Q15
        u.emit(f"        {h}[i] = ln_sat16(f1 + ({rshift_expr('(f2 - f1) * sg', 15)}));")
        err = np.maximum(e_f1, e_f2) + 2 * e_s + (e_f1 + e_f2) * e_s + 2.0**-14
    u.emit("    }")
    return segment(H, 2.0**-f_h, 2.0 ** (15 - f_h), err)


def _heads(
    u: Q15Unit,
    c: CfCPlan,
    name: str,
    a: str,
    width: int,
    seg: Segment,
    byte: bool,
    fixed_ts: float | None,
) -> tuple[QDense, QDense, np.ndarray]:
    """Emit the heads ff1, ff2 (into ``acc[0:H]``, ``acc[H:2H]``) and the gate's argument,
    and open the per-unit loop with ``f1``, ``f2`` (tanh, Q15) and ``sg`` (the gate, Q15).
    Returns ff1's and ff2's quantised layers and the gate argument's error bound.

    ``fixed_ts`` None: heads time_a and time_b, ``g = time_a ts + time_b`` with the ``ts`` of
    the call. Else the gate is folded for that ``ts``: one head ``(W_a ts + W_b) a + b_a ts +
    b_b``; the step refuses other ``ts`` (Q12), so ``ts`` differs from ``fixed_ts`` by less
    than 2^-12, counted in the bound."""
    H = c.units
    W, b = c.heads.weight.astype(np.float64), c.heads.bias.astype(np.float64)
    rows = [slice(k * H, (k + 1) * H) for k in range(4)]
    if fixed_ts is None:
        parts = [(W[r], b[r]) for r in rows]
    else:
        wa, ba = W[rows[2]], b[rows[2]]
        wg, bg = wa * fixed_ts + W[rows[3]], ba * fixed_ts + b[rows[3]]
        parts = [(W[rows[0]], b[rows[0]]), (W[rows[1]], b[rows[1]]), (wg, bg)]
    qs = [u.quantise(w, bias, seg) for w, bias in parts]
    if byte and len(qs) * H <= q7_bytes.MAX_IN:
        wq = np.concatenate([q.wq for q in qs])
        bq = np.concatenate([q.bq for q in qs])
        q7_bytes.emit_dense_u8(u, f"{name}heads", wq, bq, a, "s->acc", False)
    elif byte:  # more rows than one byte layer holds: a byte layer per head
        for k, q in enumerate(qs):
            acc = f"(s->acc + {k * H}u)"
            q7_bytes.emit_dense_u8(u, f"{name}head{k}", q.wq, q.bq, a, acc, False)
    else:
        for k, q in enumerate(qs):
            u.dense(f"{name}head{k}", q, a, width, f"(s->acc + {k * H}u)")
    q1, q2 = qs[0], qs[1]
    u.use("ln_tanh_q12", "ln_sigmoid_q", "ln_sat16")
    u.emit(f"    for (i = 0; i < {H}u; ++i) {{")
    if fixed_ts is not None:  # tanh and sigmoid saturate beyond the clamp's ±16 by themselves
        qg = qs[2]
        f1 = rshift_expr("s->acc[i]", q1.s - Q_ACT)
        f2 = rshift_expr(f"s->acc[{H}u + i]", q2.s - Q_ACT)
        g = rshift_expr(f"s->acc[{2 * H}u + i]", qg.s - Q_ACT)
        u.emit(f"        const int32_t f1 = ln_tanh_q12({f1});")
        u.emit(f"        const int32_t f2 = ln_tanh_q12({f2});")
        u.emit(f"        const int16_t sg = ln_sigmoid_q({g});")
        wa, ba = W[rows[2]], b[rows[2]]
        a_bound = np.abs(wa) @ seg.bound + np.abs(ba)
        e_g = qg.err + 2.0 ** -(Q_ACT + 1) + a_bound * 2.0**-12
        e_g += 1e-6 * (np.abs(wa) * fixed_ts + np.abs(W[rows[3]])) @ seg.bound
        return q1, q2, e_g
    u.use("ln_clamp12")
    u.emit(f"        const int32_t f1 = ln_tanh_q12({q12_expr('s->acc[i]', q1.s - Q_ACT)});")
    u.emit(
        f"        const int32_t f2 = ln_tanh_q12({q12_expr(f's->acc[{H}u + i]', q2.s - Q_ACT)});"
    )
    qa, qb = qs[2], qs[3]
    f_ta = 15 - max(0, math.ceil(math.log2(max(float(qa.bound.max()), 1e-9))))
    f_ta = min(f_ta, qa.s)
    u.emit(
        f"        const int16_t ta = ln_sat16({rshift_expr(f's->acc[{2 * H}u + i]', qa.s - f_ta)});"
    )
    u.emit(
        f"        const int32_t g = ({rshift_expr('(int32_t)ta * ts', f_ta)}) + "
        f"({rshift_expr(f's->acc[{3 * H}u + i]', qb.s - Q_ACT)});"
    )
    u.emit(
        "        const int16_t sg = ln_sigmoid_q(g > 65536L ? 65536L : (g < -65536L ? -65536L "
        ": g));"
    )
    e_g = (qa.err + 2.0 ** -(f_ta + 1)) * TS_MAX + qa.bound * 2.0 ** -(Q_ACT + 1)
    e_g += qb.err + 3 * 2.0 ** -(Q_ACT + 1)
    return q1, q2, e_g


def _bits(bound: float) -> int:
    """Integer bits of a value of magnitude up to ``bound`` (at least 0)."""
    return max(0, math.ceil(math.log2(max(bound, 1e-9))))


def pure_state_bound(c: CfCPlan) -> float:
    """``|h'| <= max|A| (1 + 1 / (e TS_MIN_PURE))`` for the pure mode: ``h' = A (1 - phi)``
    with ``phi = f exp(-ts (|w_tau| + |f|))`` and ``|phi| <= 1 / (e ts)`` for every ``f``."""
    assert c.A is not None
    return float(np.max(np.abs(c.A))) * (1.0 + 1.0 / (math.e * TS_MIN_PURE))


def _pure(
    u: Q15Unit,
    c: CfCPlan,
    name: str,
    a: str,
    width: int,
    seg: Segment,
    h: str,
    f_h: int,
    byte: bool = False,
) -> Segment:
    """The pure-mode update ``h' = A - A exp(-ts (|w_tau| + |f|)) f`` with ``f = ff1``
    (no activation): ``f`` to Q``f_f``, ``u = ts (|w_tau| + |f|)`` to Q12, ``exp(-u)`` from
    the table (Q15), ``h'`` to Q``f_h``. ``byte``: ``a`` is the byte backbone's output."""
    assert c.A is not None and c.abs_w_tau is not None
    H = c.units
    q = u.quantise(c.heads.weight, c.heads.bias, seg)
    if byte:
        q7_bytes.emit_dense_u8(u, f"{name}head0", q.wq, q.bq, a, "s->acc", False)
    else:
        u.dense(f"{name}head0", q, a, width, "s->acc")
    wt = c.abs_w_tau.astype(np.float64)
    big = max(float(q.bound.max()), float(wt.max()))
    f_f = min(q.s, 15 - _bits(big))  # f and |w_tau| below 2^15: ts (wt + |f|) < 2^31
    f_a = 14 - _bits(float(np.max(np.abs(c.A))))  # A below 2^14: A (1 - phi) < 2^31
    sh = f_a + f_f - f_h
    if sh < 0:
        raise ExportError(f"internal: pure-mode output shift {sh}")
    wt_q = np.round(wt * 2.0**f_f)
    a_q = np.round(c.A.astype(np.float64) * 2.0**f_a)
    wt_c = u.array(f"{name}abs_w_tau", "int32_t", wt_q)
    a_c = u.array(f"{name}A", "int16_t", a_q)
    u.use("ln_sat16", "ln_exp_neg_q12")
    u.emit(f"    for (i = 0; i < {H}u; ++i) {{")
    u.emit(f"        const int32_t f = ln_sat16({rshift_expr('s->acc[i]', q.s - f_f)});")
    u.emit(f"        const int32_t v = LN_RD_I32(&{wt_c}[i]) + (f < 0 ? -f : f);")
    u.emit(f"        const int32_t e = ln_exp_neg_q12({rshift_expr('ts * v', f_f)});")
    u.emit(f"        const int32_t om = {1 << f_f}L - ({rshift_expr('e * f', 15)});")
    u.emit(f"        {h}[i] = ln_sat16({rshift_expr(f'(int32_t)LN_RD_I16(&{a_c}[i]) * om', sh)});")
    u.emit("    }")
    # error bound: phi = f exp(-ts (wt + |f|)) is 1-Lipschitz in f, |d phi / d ts| <= (wt + F)
    # E, |d phi / d wt| <= ts E with E = min(F, 1 / (e TS_MIN_PURE)) bounding |phi|
    F = q.bound
    E = np.minimum(F, 1.0 / (math.e * TS_MIN_PURE))
    e_f = q.err + 2.0 ** -(f_f + 1)
    e_wt = np.abs(wt - wt_q / 2.0**f_f)
    e_ts = 2.0**-13
    e_phi = e_f + e_ts * (wt + F) * E + TS_MAX * E * e_wt
    e_phi += E * 2.0**-13 + F * EPS_EXP + 2.0**-16 + 2.0 ** -(f_f + 1)  # u, table, e f roundings
    A = np.abs(c.A.astype(np.float64))
    e_a = np.abs(A - np.abs(a_q) / 2.0**f_a)
    err = e_a * (1.0 + E) + A * e_phi + 2.0 ** -(f_h + 1) + 1e-6 * A * (1.0 + E)
    return segment(H, 2.0**-f_h, 2.0 ** (15 - f_h), err)


def _frac_bits(scale: float) -> int | None:
    f = -math.log2(scale)
    return round(f) if abs(f - round(f)) < 1e-9 else None


def _readout(u: Q15Unit, plan: PolicyPlan, em: Emitted, f_x: int) -> tuple[np.ndarray, np.ndarray]:
    """Emit ``y`` and the action mapping; returns the per-action error bound (env units) and
    that of the squashed action (before the action scale).

    With action feedback the squashed action (Q15) is also written, rounded to the input
    format Q``f_x``, after the cell's state (``plan.cell_state_dim``). With an action low-pass
    the squashed action is filtered in float (the gain from the float export's ``exp``) and the
    filtered command kept at the state's end in Q15."""
    if em.proj is not None:
        q = u.quantise(em.proj.weight, em.proj.bias, em.y_seg)
        u.dense("proj", q, em.y, em.proj.n_in, "s->acc")
        if plan.tanh:
            u.use("ln_clamp12", "ln_tanh_q12")
            y_of = f"(float)ln_tanh_q12({q12_expr('s->acc[i]', q.s - Q_ACT)})"
            err, unit = q.err + 2.0 ** -(Q_ACT + 1) + EPS_TANH, 2.0**-15
        else:
            y_of, err, unit = "(float)s->acc[i]", q.err + 1e-7 * q.bound, 2.0**-q.s
    else:
        n = plan.act_dim
        scale = float(em.y_seg.scale[0])
        if np.any(em.y_seg.scale[:n] != scale):
            raise ExportError("internal: mixed formats in the cell output")
        f = _frac_bits(scale)
        err = em.y_seg.err[:n]
        if not plan.tanh:
            y_of, unit = f"(float){em.y}[i]", scale
        elif f is not None and 12 <= f <= 15:
            u.use(f"ln_tanh_q{f}")
            y_of, unit, err = f"(float)ln_tanh_q{f}({em.y}[i])", 2.0**-15, err + EPS_TANH
        elif f is not None and 0 <= f < 12:
            u.use("ln_clamp12", "ln_tanh_q12")
            y_of = f"(float)ln_tanh_q12(ln_clamp12((int32_t){em.y}[i] << {12 - f}))"
            unit, err = 2.0**-15, err + EPS_TANH
        else:
            raise ExportError(f"internal: no tanh for an output of scale {scale}")
    scale_a = plan.scale.astype(np.float64) if plan.affine else np.ones(plan.act_dim)
    low_pass = plan.low_pass_hz is not None
    if low_pass:  # the filter runs in float on the Q15 squashed action: z = z + alpha (t - z)
        w = c_float(-2.0 * math.pi * float(plan.low_pass_hz))  # type: ignore[arg-type]
        u.emit(f"    const float alpha = 1.0f - ln_exp(dt * {w}); /* the low-pass's gain */")
    gain = u.array("act_gain", "float", scale_a * (1.0 if low_pass else unit))
    u.emit(f"    for (i = 0; i < {plan.act_dim}u; ++i) {{")
    if plan.feedback or low_pass:  # y_of is "(float)<int16 Q15 tanh>" (both need the squash)
        u.emit(f"        const int16_t t = {y_of.removeprefix('(float)')};")
        y_of = "(float)t"
    if plan.feedback:
        fb = rshift_expr("(int32_t)t", 15 - f_x)
        u.emit(f"        s->h[{plan.cell_state_dim}u + i] = (int16_t)({fb});")
    if low_pass:  # the filtered command: Q15 in the state, float into the action mapping
        z = f"s->h[{plan.state_dim - plan.act_dim}u + i]"
        u.emit(f"        const float zp = (float){z} * {c_float(2.0**-15)};")
        u.emit(f"        const float z = zp + alpha * ((float)t * {c_float(2.0**-15)} - zp);")
        u.emit(f"        {z} = ln_from_float(z * 32768.0f);")
        y_of = "z"
        err = np.asarray(err) + 2e-7  # |alpha| <= 1 times the squashed action's error, + exp's
    line = f"        action[i] = {y_of} * LN_RD_F32(&{gain}[i])"
    if plan.affine:
        offset = u.array("act_offset", "float", plan.offset)
        line += f" + LN_RD_F32(&{offset}[i])"
    u.emit(line + ";")
    u.emit("    }")
    return np.abs(scale_a) * (err + 2e-7) + 1e-6 * np.abs(plan.offset), np.asarray(err)


def _emit_cfc_cells(
    u: Q15Unit, plan: PolicyPlan, xin: Segment, fixed_ts: float | None = None
) -> Emitted:
    layers = _check(plan)
    f_h = 14 if layers[0].mode == "no_gate" else 15
    if layers[0].mode == "pure":
        f_h = 15 - _bits(max(pure_state_bound(c) for c in layers))
    seg, start, inp, errs = xin, 0, "s->x", []
    for k, layer in enumerate(layers):
        h = f"(s->h + {start}u)"
        name = f"l{k}_" if len(layers) > 1 else ""
        seg = _cfc(u, layer, name, inp, seg, h, f_h, fixed_ts)
        errs.append(seg.err)
        inp, start = h, start + layer.units
    byte = [c for c in layers if q7_bytes.byte_backbone(c, u.wmax <= 127)]
    words = [c for c in layers if c not in byte]
    bb = [d.n_out for c in words for d in c.backbone]
    bb8 = [d.n_out for c in byte for d in c.backbone]
    acc = max([4 * c.units for c in layers] + bb + bb8 + [layers[-1].out_dim])
    fields = [("int32_t", "acc", acc)]
    if words:
        fields.insert(0, ("int16_t", "z", max(c.n_in + c.units for c in words)))
    if bb:
        fields.append(("int16_t", "a", max(bb)))
    if len(bb) > 1:
        fields.append(("int16_t", "b", max(bb)))
    if byte:
        fields.append(("uint8_t", "z8", max(2 * c.n_in + c.units for c in byte)))
        fields.append(("uint8_t", "a8", max(bb8)))
    if any(len(c.backbone) > 1 for c in byte):
        fields.append(("uint8_t", "b8", max(bb8)))
    last = layers[-1]
    fmt = [(plan.cell_state_dim, f_h)]
    return Emitted(inp, seg, last.proj, fmt, np.concatenate(errs), fields)


def _state_functions(prefix: str, fmt: list[tuple[int, int]]) -> str:
    """``<prefix>_reset``, ``_state_read``, ``_state_write`` over the state's parts."""
    read, write, start = [], [], 0
    for length, f in fmt:
        loop = f"    for (i = {start}u; i < {start + length}u; ++i)"
        read.append(f"{loop} h[i] = (float)s->h[i] * {c_float(2.0**-f)};")
        write.append(f"{loop} s->h[i] = ln_from_float(h[i] * {c_float(2.0**f)});")
        start += length
    if start == 0:
        return f"""void {prefix}_reset({prefix}_state *s) {{ (void)s; }}

void {prefix}_state_read(const {prefix}_state *s, float *h) {{ (void)s; (void)h; }}

void {prefix}_state_write({prefix}_state *s, const float *h) {{ (void)s; (void)h; }}
"""
    nl = "\n"
    return f"""void {prefix}_reset({prefix}_state *s) {{
    unsigned int i;
    for (i = 0; i < {start}u; ++i) s->h[i] = 0;
}}

void {prefix}_state_read(const {prefix}_state *s, float *h) {{
    unsigned int i;
{nl.join(read)}
}}

static int16_t ln_from_float(float v) {{
    v = v > 32767.0f ? 32767.0f : (v < -32767.0f ? -32767.0f : v);
    return (int16_t)(v < 0.0f ? v - 0.5f : v + 0.5f);
}}

void {prefix}_state_write({prefix}_state *s, const float *h) {{
    unsigned int i;
{nl.join(write)}
}}
"""


def has_time_gate(plan: PolicyPlan) -> bool:
    """Whether ``plan`` is a CfC or wired CfC whose layers have the time gate
    ``sigmoid(time_a ts + time_b)`` (modes ``default``, ``no_gate``): what ``fixed_dt``
    folds."""
    cell = plan.cell
    if not isinstance(cell, (CfCPlan, WiredPlan)):
        return False
    layers = cell.layers if isinstance(cell, WiredPlan) else [cell]
    return all(c.mode != "pure" for c in layers)


def fixed_ts_q12(plan: PolicyPlan, dt: float) -> int:
    """The step's Q12 ``ts`` for ``dt`` seconds, as the generated C computes it (float32)."""
    t = np.float32(np.float32(dt) * np.float32(plan.time_scale * 4096.0)) + np.float32(0.5)
    return 32767 if t >= 32767.0 else (1 if t < 1.0 else int(t))


def build(
    plan: PolicyPlan, prefix: str, precision: str = "q15", fixed_dt: float | None = None
) -> tuple[dict[str, str], Quantised]:
    """The fixed-point files (``<prefix>.h``, ``<prefix>.c``) and what was derived for them.

    ``precision``: ``"q15"`` (int16 weights) or ``"q7"`` (int8 weights, half the flash, a
    cheaper multiply on the AVR, a larger error); activations are int16 in both, except on a
    CfC backbone in q7, which runs on bytes (:mod:`.q7_bytes`).

    ``fixed_dt``: a step specialised for this control period (seconds; CfC and wired CfC with
    a time gate only): the gate's two heads are folded into one, ``(W_a ts + W_b) a + b_a ts
    + b_b`` at ``ts = fixed_dt * time_scale`` (a quarter fewer multiply-accumulates in the
    heads). The step then returns int: 0 after a step, -1 without stepping (state and action
    untouched) when called with a ``dt`` whose Q12 ``ts`` differs from ``fixed_dt``'s; the
    header defines ``<PREFIX>_FIXED_DT_S``, ``<PREFIX>_FIXED_DT_US`` (rounded) and
    ``<PREFIX>_FIXED_TS_Q12``. The bound covers any accepted ``dt``.
    """
    if precision not in ("q15", "q7"):
        raise ExportError(f"unknown fixed-point precision {precision!r}")
    from liquidnode.controller.export import q15_baselines, q15_ltc

    baseline = isinstance(plan.cell, (RecurrentPlan, MLPPlan))
    if not baseline and not isinstance(plan.cell, LTCPlan):
        _check(plan)
    fixed_ts = None
    if fixed_dt is not None:
        if not has_time_gate(plan):
            raise ExportError(
                f"a fixed dt folds the CfC time gate; a {plan.cell_kind} policy (or the CfC "
                "pure mode) has none: export it without a fixed dt"
            )
        fixed_ts = float(fixed_dt) * plan.time_scale
        if not (math.isfinite(fixed_ts) and 2.0**-12 <= fixed_ts <= TS_MAX):
            raise ExportError(
                f"fixed dt {fixed_dt!r} s gives ts = dt * time_scale = {fixed_ts:g}, outside "
                f"[2^-12, {TS_MAX:g}]"
            )
    if plan.feedback and not plan.tanh:
        raise ExportError(
            "a fixed-point export feeds the action back in the input's format, which needs a "
            "bounded action: action squash tanh (export this policy with --precision f32)"
        )
    if plan.low_pass_hz is not None and not plan.tanh:
        raise ExportError(
            "a fixed-point export keeps the action low-pass's command in Q15, which needs a "
            "bounded action: action squash tanh (export this policy with --precision f32)"
        )
    u = Q15Unit(prefix, wmax=127 if precision == "q7" else 32767)
    u.use("ln_asr8")  # static inline: no warning where no shift needs it
    X = plan.clip if plan.clip is not None else 16.0
    f_x = min(15, 15 - max(0, math.ceil(math.log2(X))))
    # observation mapping (float), then Q(f_x), saturating; the factor 2^f_x is folded into
    # inv_std and the limit (a power of two: the same floats as multiplying after the clip)
    scale = 2.0**f_x
    u.emit(f"    for (i = 0; i < {plan.obs_dim}u; ++i) {{")
    if plan.normalise:
        mean = u.array("obs_mean", "float", plan.mean)
        inv_q = (plan.inv_std.astype(np.float32) * np.float32(scale)).astype(np.float32)
        inv = u.array("obs_inv_std_q", "float", inv_q)
        u.emit(f"        float v = (obs[i] - LN_RD_F32(&{mean}[i])) * LN_RD_F32(&{inv}[i]);")
    else:
        u.emit(f"        float v = obs[i] * {c_float(scale)};")
    lim = c_float(min(X, 32767 / scale) * scale)
    u.emit(f"        v = v > {lim} ? {lim} : v;")
    u.emit(f"        v = v < -{lim} ? -{lim} : v;")
    u.emit("        s->x[i] = (int16_t)(v < 0.0f ? v - 0.5f : v + 0.5f);")
    u.emit("    }")
    xin = segment(plan.obs_dim, 2.0**-f_x, X, 2.0 ** -(f_x + 1) + 1e-6 * X)
    if plan.feedback:  # the previous squashed action, kept in the state in the same format
        u.emit(
            f"    for (i = 0; i < {plan.act_dim}u; ++i) "
            f"s->x[{plan.obs_dim}u + i] = s->h[{plan.cell_state_dim}u + i];"
        )
        xin = concat(xin, segment(plan.act_dim, 2.0**-f_x, 1.0, 0.0))
    if baseline:
        u.emit("    (void)dt; /* baseline cells assume the nominal period */")
        em = q15_baselines.emit(u, plan, xin, f_x)
    elif fixed_dt is not None:  # ts is folded in: only a dt of the same Q12 ts is accepted
        up = prefix.upper()
        u.emit(f"    if (dt != {up}_FIXED_DT_S) {{")
        u.emit(f"        const float t = dt * {c_float(plan.time_scale * 4096.0)} + 0.5f;")
        u.emit("        const int16_t ts = t >= 32767.0f ? 32767 : (t < 1.0f ? 1 : (int16_t)t);")
        u.emit(f"        if (ts != {up}_FIXED_TS_Q12) return -1;")
        u.emit("    }")
        em = _emit_cfc_cells(u, plan, xin, fixed_ts)
    else:
        u.emit("    {")
        u.emit(f"        const float t = dt * {c_float(plan.time_scale * 4096.0)} + 0.5f;")
        u.emit("        ts = t >= 32767.0f ? 32767 : (t < 1.0f ? 1 : (int16_t)t);")
        u.emit("    }")
        em = (
            q15_ltc.emit(u, plan.cell, xin, f_x)
            if isinstance(plan.cell, LTCPlan)
            else _emit_cfc_cells(u, plan, xin, fixed_ts)
        )
    bound_action, err_squashed = _readout(u, plan, em, f_x)
    state_fmt, state_err = list(em.state_fmt), em.state_err
    if plan.feedback:  # the fed-back action: the squashed action's error and its rounding
        state_fmt.append((plan.act_dim, f_x))
        state_err = np.concatenate([state_err, err_squashed + 2.0 ** -(f_x + 1)])
    if plan.low_pass_hz is not None:  # the filtered command: its error and its Q15 rounding
        state_fmt.append((plan.act_dim, 15))
        state_err = np.concatenate([state_err, err_squashed + 2.0**-16])
    f_h = state_fmt[0][1] if state_fmt else f_x
    info = Quantised(f_x, f_h, bound_action, state_err, u.flash_bytes())

    fields = [("int16_t", "h", max(1, plan.state_dim)), ("int16_t", "x", plan.cell_in)]
    fields += em.fields
    if em.proj is not None and not any(n == "acc" for _, n, _ in fields):
        fields.append(("int32_t", "acc", em.proj.n_out))
    struct = "".join(f"    {t} {n}[{size}];\n" for t, n, size in fields)
    helpers = "\n".join(HELPERS[h] for h in ORDER if h in u.helpers)
    helpers += "".join("\n" + q7_bytes.HELPERS[h] for h in q7_bytes.ORDER if h in u.helpers)
    helpers += "".join("\n" + q15_synapses.HELPERS[h] for h in q15_synapses.ORDER if h in u.helpers)
    if plan.low_pass_hz is not None:  # the float export's exp, for the low-pass's gain
        helpers += "\n" + F32_HELPERS["ln_exp"]
    formats = ", ".join(f"{n} values Q{f}" for n, f in state_fmt) or "none"
    state_bound = float(np.max(state_err, initial=0.0))
    where = f"ts <= {TS_MAX:g}" if fixed_dt is None else f"dt = {fixed_dt:g} s only"
    bound = (
        f"/* Per-step error bound vs Policy.step from the same state ({where}):\n"
        f" *   |action - Policy.step| <= {np.array2string(bound_action, precision=3)}\n"
        f" *   |state' - Policy.state'| <= {state_bound:.3g} (max over the state)\n"
        f" * Formats: x Q{f_x}, state {formats}, ts Q12 (saturates at 8), activations\n"
        " * Q12 -> Q15.\n"
        " */\n"
    )
    ts_decl = "" if baseline or fixed_dt is not None else "    int16_t ts;\n"
    command = f"liquidnode export --target c --precision {precision}"
    fixed = None
    ret, done = "void", ""
    if fixed_dt is not None:
        command += f" --fixed-dt {fixed_dt:g}"
        fixed = (float(fixed_dt), fixed_ts_q12(plan, fixed_dt))
        ret, done = "int", "\n    return 0;"
    source = f"""/* {prefix}.c: generated by `{command}`. */
#include "{prefix}.h"

{bound}
{FLASH_MACROS}
{u.arrays_source()}
{helpers}
{_state_functions(prefix, state_fmt)}
{ret} {prefix}_step({prefix}_state *s, const float *obs, float dt, float *action) {{
    unsigned int i;
{ts_decl}{chr(10).join(u.lines)}{done}
}}
"""
    files = {
        f"{prefix}.h": header(plan, prefix, precision, struct, fixed),
        f"{prefix}.c": source,
    }
    return files, info


def generate(
    plan: PolicyPlan, prefix: str, precision: str = "q15", fixed_dt: float | None = None
) -> dict[str, str]:
    """``{"<prefix>.h": text, "<prefix>.c": text}`` for a fixed-point export of ``plan``
    (:func:`build`)."""
    return build(plan, prefix, precision, fixed_dt)[0]
