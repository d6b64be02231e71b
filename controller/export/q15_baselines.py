"""q15 fixed-point steps of the baseline cells (LSTM, GRU, MLP) for :mod:`.fixed_point`.

Same number formats and error accounting as the CfC (see :mod:`.fixed_point`): int16 weights
and activations, int32 accumulators in a per-matrix format, gate inputs as clamped Q12,
tanh/sigmoid from the shared table. State formats: GRU ``h`` Q15; LSTM ``[h | c]`` with ``h``
Q15 and the cell state ``c`` Q12 (saturating at ±8: the derived bound holds while ``|c| < 8``);
MLP the stacked previous inputs in the observation's format.
"""

from __future__ import annotations

import math

import numpy as np

from liquidnode.controller.export.lowering import ExportError, MLPPlan, PolicyPlan, RecurrentPlan
from liquidnode.controller.export.q15_arith import (
    EPS_SIGMOID,
    EPS_TANH,
    Q_ACT,
    Emitted,
    Q15Unit,
    Segment,
    concat,
    q12_expr,
    rshift_expr,
    segment,
)

_R12 = 2.0 ** -(Q_ACT + 1)  # rounding of a requantisation to Q12


def _out_format(bound: float, s: int) -> int:
    """Fractional bits of an int16 that holds values up to ``bound`` (at most ``s``)."""
    return min(s, 15 - max(0, math.ceil(math.log2(max(bound, 1e-9)))))


def _gates(u: Q15Unit, c: RecurrentPlan, xin: Segment, hseg: Segment, n: int) -> tuple[list, list]:
    """Quantise and emit ``W_ih x + b_ih`` into ``s->acc`` and ``W_hh h + b_hh`` into
    ``s->acch``, one accumulator format per gate."""
    H = c.units
    qi, qh = [], []
    for k in range(n):
        rows = slice(k * H, (k + 1) * H)
        qi.append(u.quantise(c.ih.weight[rows], c.ih.bias[rows], xin))
        qh.append(u.quantise(c.hh.weight[rows], c.hh.bias[rows], hseg))
        u.dense(f"ih{k}", qi[k], "s->x", c.n_in, f"(s->acc + {k * H}u)")
        u.dense(f"hh{k}", qh[k], "s->h", H, f"(s->acch + {k * H}u)")
    return qi, qh


def _pre(qi: list, qh: list, k: int, H: int) -> tuple[str, np.ndarray]:
    """C expression of gate ``k``'s clamped Q12 input, and its error bound."""
    a = rshift_expr(f"s->acc[{k * H}u + i]", qi[k].s - Q_ACT)
    b = rshift_expr(f"s->acch[{k * H}u + i]", qh[k].s - Q_ACT)
    return f"ln_clamp12(({a}) + ({b}))", qi[k].err + qh[k].err + 2 * _R12


def _gru(u: Q15Unit, c: RecurrentPlan, xin: Segment) -> Emitted:
    H = c.units
    hseg = segment(H, 2.0**-15, 1.0, 0.0)
    qi, qh = _gates(u, c, xin, hseg, 3)
    pre_r, e_pr = _pre(qi, qh, 0, H)
    pre_z, e_pz = _pre(qi, qh, 1, H)
    q_hn = qh[2]
    f_n = _out_format(float(q_hn.bound.max()), q_hn.s)
    u.use("ln_clamp12", "ln_sigmoid_q", "ln_tanh_q12", "ln_sat16")
    u.emit(f"    for (i = 0; i < {H}u; ++i) {{")
    u.emit(f"        const int16_t r = ln_sigmoid_q({pre_r});")
    u.emit(f"        const int16_t z = ln_sigmoid_q({pre_z});")
    ghn = rshift_expr(f"s->acch[{2 * H}u + i]", q_hn.s - f_n)
    u.emit(f"        const int16_t ghn = ln_sat16({ghn});")
    prod = rshift_expr("(int32_t)ghn * r", f_n + 15 - Q_ACT)
    gin = rshift_expr(f"s->acc[{2 * H}u + i]", qi[2].s - Q_ACT)
    u.emit(f"        const int32_t n = ln_tanh_q12(ln_clamp12(({gin}) + ({prod})));")
    u.emit(f"        s->h[i] = ln_sat16(n + ({rshift_expr('(s->h[i] - n) * z', 15)}));")
    u.emit("    }")
    e_r, e_z = e_pr / 4 + EPS_SIGMOID, e_pz / 4 + EPS_SIGMOID
    e_ghn = q_hn.err + 2.0 ** -(f_n + 1)
    e_prod = e_r * q_hn.bound + e_ghn + e_r * e_ghn + _R12
    e_n = qi[2].err + _R12 + e_prod + EPS_TANH
    e_h = e_n + 2 * e_z + e_n * e_z + 2.0**-16 + 2.0**-15
    acc = max(3 * H, c.proj.n_out if c.proj else 0)
    fields = [("int32_t", "acc", acc), ("int32_t", "acch", 3 * H)]
    return Emitted("s->h", segment(H, 2.0**-15, 1.0, e_h), c.proj, [(H, 15)], e_h, fields)


def _lstm(u: Q15Unit, c: RecurrentPlan, xin: Segment) -> Emitted:
    H = c.units
    hseg = segment(H, 2.0**-15, 1.0, 0.0)
    qi, qh = _gates(u, c, xin, hseg, 4)
    pres = [_pre(qi, qh, k, H) for k in range(4)]  # i, f, g, o
    u.use("ln_clamp12", "ln_sigmoid_q", "ln_tanh_q12", "ln_sat16")
    u.emit(f"    for (i = 0; i < {H}u; ++i) {{")
    u.emit(f"        const int16_t gi = ln_sigmoid_q({pres[0][0]});")
    u.emit(f"        const int16_t gf = ln_sigmoid_q({pres[1][0]});")
    u.emit(f"        const int16_t gg = ln_tanh_q12({pres[2][0]});")
    u.emit(f"        const int16_t go = ln_sigmoid_q({pres[3][0]});")
    fc = rshift_expr(f"(int32_t)gf * s->h[{H}u + i]", 15)
    ig = rshift_expr("(int32_t)gi * gg", 30 - Q_ACT)
    u.emit(f"        const int16_t c = ln_sat16(({fc}) + ({ig}));")
    u.emit(f"        s->h[{H}u + i] = c;")
    u.emit(f"        s->h[i] = ln_sat16({rshift_expr('(int32_t)go * ln_tanh_q12(c)', 15)});")
    u.emit("    }")
    e_i, e_f, e_o = (pres[k][1] / 4 + EPS_SIGMOID for k in (0, 1, 3))
    e_g = pres[2][1] + EPS_TANH
    e_c = 8.0 * e_f + e_i + e_g + e_i * e_g + 2 * _R12
    e_t = e_c + EPS_TANH
    e_h = e_o + e_t + e_o * e_t + 2.0**-16 + 2.0**-15
    acc = max(4 * H, c.proj.n_out if c.proj else 0)
    fields = [("int32_t", "acc", acc), ("int32_t", "acch", 4 * H)]
    err = np.concatenate([e_h, e_c])
    return Emitted(
        "s->h", segment(H, 2.0**-15, 1.0, e_h), c.proj, [(H, 15), (H, Q_ACT)], err, fields
    )


def _mlp(u: Q15Unit, c: MLPPlan, xin: Segment, f_x: int) -> Emitted:
    n, keep = c.n_in, (c.frames - 1) * c.n_in
    u.emit(f"    for (i = 0; i < {n}u; ++i) s->z[i] = s->x[i];")
    if keep:
        u.emit(f"    for (i = 0; i < {keep}u; ++i) s->z[{n}u + i] = s->h[i];")
        u.emit(f"    for (i = 0; i < {keep}u; ++i) s->h[i] = s->z[i];")
    seg = concat(xin, segment(keep, 2.0**-f_x, float(xin.bound[0]), 0.0))
    a, width = "s->z", c.frames * n
    for k, layer in enumerate(c.layers):
        q = u.quantise(layer.weight, layer.bias, seg)
        dst = "s->a" if k % 2 == 0 else "s->b"
        u.dense(f"layer{k}", q, a, width, "s->acc")
        if c.activation == "relu":
            f = _out_format(float(q.bound.max()), q.s)
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
            seg = segment(layer.n_out, 2.0**-15, 1.0, q.err + _R12 + EPS_TANH)
        a, width = dst, layer.n_out
    widths = [d.n_out for d in c.layers]
    fields = [("int16_t", "z", c.frames * n), ("int16_t", "a", max(widths))]
    if len(widths) > 1:
        fields.append(("int16_t", "b", max(widths)))
    fields.append(("int32_t", "acc", max([*widths, c.proj.n_out if c.proj else 0])))
    state_err = np.concatenate([xin.err, np.zeros(max(0, keep - n))])[:keep]
    fmt = [(keep, f_x)] if keep else []
    return Emitted(a, seg, c.proj, fmt, state_err, fields)


def emit(u: Q15Unit, plan: PolicyPlan, xin: Segment, f_x: int) -> Emitted:
    """Emit the q15 step of a baseline cell (input ``s->x`` in Q``f_x``)."""
    cell = plan.cell
    if isinstance(cell, RecurrentPlan):
        return _lstm(u, cell, xin) if cell.kind == "lstm" else _gru(u, cell, xin)
    if isinstance(cell, MLPPlan):
        if cell.activation not in ("tanh", "relu"):
            raise ExportError(f"q15 export has no MLP activation {cell.activation!r}")
        return _mlp(u, cell, xin, f_x)
    raise ExportError(f"internal: {plan.cell_kind} is not a baseline cell")
