"""q15 fixed-point C export: int16 weights and activations, int32 accumulators, LUT tanh.

For MCUs without an FPU. The interface is the float32 export's (``<prefix>_step(state, obs, dt,
action)`` with float ``obs``/``dt``/``action``): the observation mapping and the action mapping
are a few float operations per channel at the boundary; everything in between is integer.
Covers CfC (``default`` and ``no_gate`` modes, backbone ``lecun_tanh``/``tanh``/``relu``,
``proj_size``), wired CfC (NCP) and the baselines LSTM, GRU, MLP (:mod:`.q15_baselines`);
LTC and the CfC ``pure`` mode raise :class:`ExportError`.

Number formats (``Qf``: ``real = q / 2^f``):

- normalised observation ``x``: int16, ``f = 15 - ceil(log2(clip))`` (clip 10: Q11), saturating
  (no clip: ±16, Q11);
- state ``h``: int16 Q15 (``default``, ``|h| <= 1``) or Q14 (``no_gate``, ``|h| <= 2``);
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
from dataclasses import dataclass, field

import numpy as np

from liquidnode.controller.export.c_source import FLASH_MACROS, CUnit, c_float, header
from liquidnode.controller.export.lowering import (
    CfCPlan,
    Dense,
    ExportError,
    MLPPlan,
    PolicyPlan,
    RecurrentPlan,
    WiredPlan,
)

ACC_LIMIT = 2**30  # accumulator bound: one bit of headroom for the rounding add
Q_ACT = 12  # activation input format (int32 Q12, clamped to ±16)
CLAMP = 16 << Q_ACT
TS_MAX = 2.0  # the bound holds for ts = dt * time_scale up to this
TANH_LUT = np.minimum(np.round(np.tanh(np.arange(513) / 64.0) * 32768.0), 32767).astype(np.int64)


def tanh_q(u: np.ndarray, fb: int = Q_ACT) -> np.ndarray:
    """The generated ``ln_tanh_q``: ``u`` int Q``fb`` -> tanh Q15 (int64 array)."""
    u = np.asarray(u, np.int64)
    a = np.minimum(np.abs(u), (8 << fb) - 1)
    sh = fb - 6
    idx, fr = a >> sh, a & ((1 << sh) - 1)
    lo = TANH_LUT[idx]
    t = lo + (((TANH_LUT[idx + 1] - lo) * fr + (1 << (sh - 1))) >> sh)
    t = np.where(np.abs(u) >= (8 << fb), 32767, t)
    return np.where(u < 0, -t, t)


def sigmoid_q(u: np.ndarray) -> np.ndarray:
    """The generated ``ln_sigmoid_q``: ``u`` Q12 -> sigmoid Q15 in ``[0, 32767]``."""
    return (32768 + tanh_q(u, Q_ACT + 1)) >> 1


def _table_errors() -> tuple[float, float]:
    u = np.arange(-CLAMP, CLAMP + 1)
    v = u / 2.0**Q_ACT
    e_t = float(np.max(np.abs(tanh_q(u) / 32768.0 - np.tanh(v))))
    e_s = float(np.max(np.abs(sigmoid_q(u) / 32768.0 - 1.0 / (1.0 + np.exp(-v)))))
    # beyond the clamp (|v| > 16) the functions differ from their value at 16 by < 1.2e-7
    return e_t + 1.2e-7, e_s + 1.2e-7


EPS_TANH, EPS_SIGMOID = _table_errors()

HELPERS = {
    "ln_dense_q": """\
#if defined(__AVR__) && defined(__AVR_HAVE_MUL__)
/* sum += (int32_t)x * y with the hardware multiplier (mul, muls, mulsu; r1 cleared after). */
#define LN_MAC(sum, x, y)                     \\
    do {                                      \\
        uint8_t ln_z_;                        \\
        __asm__(                              \\
            "clr %[z]\\n\\t"                  \\
            "mul %A[a], %A[b]\\n\\t"          \\
            "add %A[s], r0\\n\\t"             \\
            "adc %B[s], r1\\n\\t"             \\
            "adc %C[s], %[z]\\n\\t"           \\
            "adc %D[s], %[z]\\n\\t"           \\
            "muls %B[a], %B[b]\\n\\t"         \\
            "add %C[s], r0\\n\\t"             \\
            "adc %D[s], r1\\n\\t"             \\
            "mulsu %B[a], %A[b]\\n\\t"        \\
            "sbc %D[s], %[z]\\n\\t"           \\
            "add %B[s], r0\\n\\t"             \\
            "adc %C[s], r1\\n\\t"             \\
            "adc %D[s], %[z]\\n\\t"           \\
            "mulsu %B[b], %A[a]\\n\\t"        \\
            "sbc %D[s], %[z]\\n\\t"           \\
            "add %B[s], r0\\n\\t"             \\
            "adc %C[s], r1\\n\\t"             \\
            "adc %D[s], %[z]\\n\\t"           \\
            "clr r1"                          \\
            : [s] "+r"(sum), [z] "=&r"(ln_z_) \\
            : [a] "a"(x), [b] "a"(y)          \\
            : "r0");                          \\
    } while (0)
#else
#define LN_MAC(sum, x, y) ((sum) += (int32_t)(x) * (y))
#endif

/* acc = b + W a: int16 W (row-major, flash), int32 b, int32 accumulation (bounded < 2^30). */
static void ln_dense_q(const int16_t *w, const int32_t *b, const int16_t *a, unsigned int n_in,
                       unsigned int n_out, int32_t *acc) {
    const int16_t *end = a + n_in;
    while (n_out--) {
        const int16_t *p = a;
        int32_t sum = LN_RD_I32(b++);
        while (p != end) {
            const int16_t wv = LN_RD_I16(w++);
            const int16_t av = *p++;
            LN_MAC(sum, wv, av);
        }
        *acc++ = sum;
    }
}
""",
    "ln_clamp12": """\
/* Clamp a Q12 activation input to +-16. */
static int32_t ln_clamp12(int32_t v) {
    return v > 65536L ? 65536L : (v < -65536L ? -65536L : v);
}
""",
    "ln_sat16": """\
static int16_t ln_sat16(int32_t v) {
    return (int16_t)(v > 32767L ? 32767L : (v < -32767L ? -32767L : v));
}
""",
    "ln_tanh_lut": """\
/* tanh(k / 64) in Q15, k = 0..512. */
static const int16_t ln_tanh_lut[513] LN_FLASH = {
@LUT@
};
""".replace(
        "@LUT@",
        ",\n".join(
            "    " + ", ".join(str(v) for v in TANH_LUT[i : i + 12]) for i in range(0, 513, 12)
        ),
    ),
    "ln_sigmoid_q": """\
/* sigmoid of u (Q12) in Q15: (1 + tanh(u / 2)) / 2, u read as Q13. */
static int16_t ln_sigmoid_q(int32_t u) {
    return (int16_t)((32768L + ln_tanh_q13(u)) >> 1);
}
""",
}
for _fb in (12, 13, 14, 15):
    _sh = _fb - 6
    HELPERS[f"ln_tanh_q{_fb}"] = f"""\
/* tanh of u (Q{_fb}) in Q15: the table with linear interpolation, saturating beyond 8. */
static int16_t ln_tanh_q{_fb}(int32_t u) {{
    const int32_t a = u < 0 ? -u : u;
    int32_t t = 32767;
    if (a < {8 << _fb}L) {{
        const int16_t lo = LN_RD_I16(&ln_tanh_lut[a >> {_sh}]);
        const int16_t hi = LN_RD_I16(&ln_tanh_lut[(a >> {_sh}) + 1]);
        const int16_t fr = (int16_t)(a & {(1 << _sh) - 1});
        t = lo + (((int32_t)(int16_t)(hi - lo) * fr + {1 << (_sh - 1)}L) >> {_sh});
    }}
    return (int16_t)(u < 0 ? -t : t);
}}
"""
_NEEDS = {f"ln_tanh_q{fb}": ("ln_tanh_lut",) for fb in (12, 13, 14, 15)}
_NEEDS["ln_sigmoid_q"] = ("ln_tanh_lut", "ln_tanh_q13")
_ORDER = (
    "ln_dense_q",
    "ln_clamp12",
    "ln_sat16",
    "ln_tanh_lut",
    "ln_tanh_q12",
    "ln_tanh_q13",
    "ln_tanh_q14",
    "ln_tanh_q15",
    "ln_sigmoid_q",
)


def _rs(expr: str, sh: int) -> str:
    """C expression: ``expr`` (int32) rounded and arithmetically shifted right by ``sh``."""
    if sh < 0:
        raise ExportError(f"internal: negative shift {sh}")
    return expr if sh == 0 else f"(({expr}) + {1 << (sh - 1)}L) >> {sh}"


def _q12(expr: str, sh: int) -> str:
    """C expression: an accumulator ``2^-sh`` above Q12 as a clamped Q12 activation input."""
    return f"ln_clamp12({_rs(expr, sh)})"


@dataclass
class Segment:
    """Inputs of a dense layer: ``real = q * scale``, ``|real| <= bound``, error ``err``."""

    scale: np.ndarray
    bound: np.ndarray
    err: np.ndarray


def _seg(n: int, scale: float, bound: float, err: np.ndarray | float) -> Segment:
    return Segment(np.full(n, scale), np.full(n, bound), np.broadcast_to(err, (n,)).astype(float))


def _cat(*segs: Segment) -> Segment:
    return Segment(
        *(np.concatenate([getattr(s, k) for s in segs]) for k in ("scale", "bound", "err"))
    )


@dataclass
class QDense:
    """A quantised dense layer: ``acc = bq + Wq aq`` with ``real(acc) = acc / 2^s``."""

    wq: np.ndarray
    bq: np.ndarray
    s: int
    bound: np.ndarray  # real |acc| bound per row
    err: np.ndarray  # real error bound per row (inputs' errors and weight rounding)


def quantise_dense(weight: np.ndarray, bias: np.ndarray, inp: Segment, gain: float = 1.0) -> QDense:
    """Quantise ``gain * (weight @ a + bias)`` for inputs described by ``inp``."""
    W = np.asarray(weight, np.float64) * gain
    b = np.asarray(bias, np.float64) * gain
    col = np.max(np.abs(W), axis=0) * inp.scale
    col = col[col > 0]
    s = min(40, math.floor(math.log2(32767.0 / col.max())) if col.size else 40)
    qmax = np.minimum(np.ceil(inp.bound / inp.scale), 32767)
    while True:
        wq = np.round(W * inp.scale * 2.0**s)
        bq = np.round(b * 2.0**s)
        if np.max(np.abs(wq)) <= 32767 and np.max(np.abs(wq) @ qmax + np.abs(bq)) < ACC_LIMIT:
            break
        s -= 1
    if s < Q_ACT + 1:
        raise ExportError(f"weights too large for q15 (accumulator format 2^-{s})")
    w_eff = wq / (inp.scale * 2.0**s)
    err = np.abs(W - w_eff) @ inp.bound + np.abs(b - bq / 2.0**s) + np.abs(w_eff) @ inp.err
    err += 1e-6 * (np.abs(W) @ inp.bound + np.abs(b))  # float32 reference rounding
    bound = np.abs(W) @ inp.bound + np.abs(b)
    return QDense(wq.astype(np.int16), bq.astype(np.int32), s, bound, err)


@dataclass
class Quantised:
    """What the q15 generator derived: formats and the per-step error bounds (real units)."""

    f_x: int
    f_h: int
    bound_action: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bound_state: np.ndarray = field(default_factory=lambda: np.zeros(0))
    flash_weights: int = 0


class _Q(CUnit):
    def use(self, *names: str) -> None:
        for name in names:
            super().use(*_NEEDS.get(name, ()))
            super().use(name)

    def dense(self, name: str, q: QDense, a: str, n_in: int, acc: str) -> None:
        w = self.array(f"{name}_w", "int16_t", q.wq)
        b = self.array(f"{name}_b", "int32_t", q.bq)
        self.use("ln_dense_q")
        self.emit(f"    ln_dense_q({w}, {b}, {a}, {n_in}u, {len(q.bq)}u, {acc});")


def _check(plan: PolicyPlan) -> list[CfCPlan]:
    cell = plan.cell
    if not isinstance(cell, (CfCPlan, WiredPlan)):
        raise ExportError(
            f"q15 export supports cfc, wired_cfc, lstm, gru and mlp cells, not "
            f"{plan.cell_kind}; export it with --precision f32"
        )
    layers = cell.layers if isinstance(cell, WiredPlan) else [cell]
    for c in layers:
        if c.mode == "pure":
            raise ExportError("q15 export supports the CfC modes default and no_gate, not pure")
        if c.backbone and c.activation not in ("lecun_tanh", "tanh", "relu"):
            raise ExportError(
                f"q15 export supports the backbone activations lecun_tanh, tanh and relu, not "
                f"{c.activation}"
            )
    return layers


def _cfc(u: _Q, c: CfCPlan, name: str, x: str, xin: Segment, h: str, f_h: int) -> Segment:
    """Emit one q15 CfC step (input ``x`` int16, state ``h`` int16 in place); returns the new
    state's segment (its error bound includes ``xin``'s)."""
    n, H = c.n_in, c.units
    u.emit(f"    for (i = 0; i < {n}u; ++i) s->z[i] = {x}[i];")
    u.emit(f"    for (i = 0; i < {H}u; ++i) s->z[{n}u + i] = {h}[i];")
    seg = _cat(xin, _seg(H, 2.0**-f_h, 2.0 ** (15 - f_h), 0.0))
    a, width = "s->z", n + H
    for k, layer in enumerate(c.backbone):
        lecun = c.activation == "lecun_tanh"
        q = quantise_dense(layer.weight, layer.bias, seg, 0.666 if lecun else 1.0)
        dst = "s->a" if k % 2 == 0 else "s->b"
        u.dense(f"{name}bb{k}", q, a, width, "s->acc")
        e_in = q.err + 2.0 ** -(Q_ACT + 1)
        if c.activation == "relu":
            f = min(q.s, 15 - max(0, math.ceil(math.log2(max(float(q.bound.max()), 1e-9)))))
            u.use("ln_sat16")
            u.emit(
                f"    for (i = 0; i < {layer.n_out}u; ++i) {dst}[i] = "
                f"ln_sat16({_rs('s->acc[i] > 0 ? s->acc[i] : 0', q.s - f)});"
            )
            seg = Segment(np.full(layer.n_out, 2.0**-f), q.bound, q.err + 2.0 ** -(f + 1))
        else:
            u.use("ln_clamp12", "ln_tanh_q12")
            u.emit(
                f"    for (i = 0; i < {layer.n_out}u; ++i) {dst}[i] = "
                f"ln_tanh_q12({_q12('s->acc[i]', q.s - Q_ACT)});"
            )
            gain = 1.7159 if lecun else 1.0
            seg = _seg(layer.n_out, gain * 2.0**-15, gain, gain * (e_in + EPS_TANH))
        a, width = dst, layer.n_out
    # heads: ff1, ff2, time_a, time_b, each its own accumulator format
    W, b = c.heads.weight, c.heads.bias
    qs = [quantise_dense(W[k * H : (k + 1) * H], b[k * H : (k + 1) * H], seg) for k in range(4)]
    for k, q in enumerate(qs):
        u.dense(f"{name}head{k}", q, a, width, f"(s->acc + {k * H}u)")
    q1, q2, qa, qb = qs
    f_ta = 15 - max(0, math.ceil(math.log2(max(float(qa.bound.max()), 1e-9))))
    f_ta = min(f_ta, qa.s)
    u.use("ln_clamp12", "ln_tanh_q12", "ln_sigmoid_q", "ln_sat16")
    u.emit(f"    for (i = 0; i < {H}u; ++i) {{")
    u.emit(f"        const int32_t f1 = ln_tanh_q12({_q12('s->acc[i]', q1.s - Q_ACT)});")
    u.emit(f"        const int32_t f2 = ln_tanh_q12({_q12(f's->acc[{H}u + i]', q2.s - Q_ACT)});")
    u.emit(f"        const int16_t ta = ln_sat16({_rs(f's->acc[{2 * H}u + i]', qa.s - f_ta)});")
    u.emit(
        f"        const int32_t g = ({_rs('(int32_t)ta * ts', f_ta)}) + "
        f"({_rs(f's->acc[{3 * H}u + i]', qb.s - Q_ACT)});"
    )
    u.emit(
        "        const int16_t sg = ln_sigmoid_q(g > 65536L ? 65536L : (g < -65536L ? -65536L "
        ": g));"
    )
    e_f1 = q1.err + 2.0 ** -(Q_ACT + 1) + EPS_TANH
    e_f2 = q2.err + 2.0 ** -(Q_ACT + 1) + EPS_TANH
    e_g = (qa.err + 2.0 ** -(f_ta + 1)) * TS_MAX + qa.bound * 2.0 ** -(Q_ACT + 1)
    e_g += qb.err + 3 * 2.0 ** -(Q_ACT + 1)
    e_s = e_g / 4 + EPS_SIGMOID
    if c.mode == "no_gate":  # h' = f1 + s f2, Q14
        prod = _rs("(int32_t)(int16_t)f2 * sg", 15)
        u.emit(f"        {h}[i] = ln_sat16({_rs(f'f1 + ({prod})', 1)});")
        err = e_f1 + e_f2 + e_s + e_f2 * e_s + 2.0**-16 + 2.0**-15
    else:  # h' = f1 + (f2 - f1) s, Q15
        u.emit(f"        {h}[i] = ln_sat16(f1 + ({_rs('(f2 - f1) * sg', 15)}));")
        err = np.maximum(e_f1, e_f2) + 2 * e_s + (e_f1 + e_f2) * e_s + 2.0**-14
    u.emit("    }")
    return _seg(H, 2.0**-f_h, 2.0 ** (15 - f_h), err)


@dataclass
class Emitted:
    """What a cell emitter leaves for the readout and the struct.

    Attributes:
        y: C pointer expression of the int16 vector the readout reads (the projection's input,
            else the output itself, first ``act_dim`` values).
        y_seg: formats, bounds and errors of that vector.
        proj: the linear readout, or None.
        state_fmt: ``(length, fractional bits)`` of the state's parts, in state order.
        state_err: per-step error bound of each state value.
        fields: struct fields besides ``h`` and ``x``: ``(ctype, name, length)``.
    """

    y: str
    y_seg: Segment
    proj: Dense | None
    state_fmt: list[tuple[int, int]]
    state_err: np.ndarray
    fields: list[tuple[str, str, int]]


def _frac_bits(scale: float) -> int | None:
    f = -math.log2(scale)
    return round(f) if abs(f - round(f)) < 1e-9 else None


def _readout(u: _Q, plan: PolicyPlan, em: Emitted) -> np.ndarray:
    """Emit ``y`` and the action mapping; returns the per-action error bound."""
    if em.proj is not None:
        q = quantise_dense(em.proj.weight, em.proj.bias, em.y_seg)
        u.dense("proj", q, em.y, em.proj.n_in, "s->acc")
        if plan.tanh:
            u.use("ln_clamp12", "ln_tanh_q12")
            y_of = f"(float)ln_tanh_q12({_q12('s->acc[i]', q.s - Q_ACT)})"
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
    gain = u.array("act_gain", "float", scale_a * unit)
    line = f"        action[i] = {y_of} * LN_RD_F32(&{gain}[i])"
    if plan.affine:
        offset = u.array("act_offset", "float", plan.offset)
        line += f" + LN_RD_F32(&{offset}[i])"
    u.emit(f"    for (i = 0; i < {plan.act_dim}u; ++i)")
    u.emit(line + ";")
    return np.abs(scale_a) * (err + 2e-7) + 1e-6 * np.abs(plan.offset)


def _emit_cfc_cells(u: _Q, plan: PolicyPlan, xin: Segment) -> Emitted:
    layers = _check(plan)
    f_h = 14 if layers[0].mode == "no_gate" else 15
    seg, start, inp, errs = xin, 0, "s->x", []
    for k, layer in enumerate(layers):
        h = f"(s->h + {start}u)"
        seg = _cfc(u, layer, f"l{k}_" if len(layers) > 1 else "", inp, seg, h, f_h)
        errs.append(seg.err)
        inp, start = h, start + layer.units
    z = max(c.n_in + c.units for c in layers)
    bb = [d.n_out for c in layers for d in c.backbone]
    acc = max([4 * c.units for c in layers] + bb + [layers[-1].out_dim])
    fields = [("int16_t", "z", z), ("int32_t", "acc", acc)]
    if bb:
        fields.append(("int16_t", "a", max(bb)))
    if len(bb) > 1:
        fields.append(("int16_t", "b", max(bb)))
    last = layers[-1]
    return Emitted(inp, seg, last.proj, [(plan.state_dim, f_h)], np.concatenate(errs), fields)


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


def build(plan: PolicyPlan, prefix: str) -> tuple[dict[str, str], Quantised]:
    """The q15 files (``<prefix>.h``, ``<prefix>.c``) and what was derived for them."""
    from liquidnode.controller.export import q15_baselines

    baseline = isinstance(plan.cell, (RecurrentPlan, MLPPlan))
    if not baseline:
        _check(plan)
    u = _Q(prefix)
    X = plan.clip if plan.clip is not None else 16.0
    f_x = min(15, 15 - max(0, math.ceil(math.log2(X))))
    # observation mapping (float), then Q(f_x), saturating
    u.emit(f"    for (i = 0; i < {plan.obs_dim}u; ++i) {{")
    if plan.normalise:
        mean = u.array("obs_mean", "float", plan.mean)
        inv = u.array("obs_inv_std", "float", plan.inv_std)
        u.emit(f"        float v = (obs[i] - LN_RD_F32(&{mean}[i])) * LN_RD_F32(&{inv}[i]);")
    else:
        u.emit("        float v = obs[i];")
    lim = c_float(min(X, 32767 / 2.0**f_x))
    u.emit(f"        v = v > {lim} ? {lim} : v;")
    u.emit(f"        v = v < -{lim} ? -{lim} : v;")
    u.emit(f"        v *= {c_float(2.0**f_x)};")
    u.emit("        s->x[i] = (int16_t)(v < 0.0f ? v - 0.5f : v + 0.5f);")
    u.emit("    }")
    xin = _seg(plan.obs_dim, 2.0**-f_x, X, 2.0 ** -(f_x + 1) + 1e-6 * X)
    if baseline:
        u.emit("    (void)dt; /* baseline cells assume the nominal period */")
        em = q15_baselines.emit(u, plan, xin, f_x)
    else:
        u.emit("    {")
        u.emit(f"        const float t = dt * {c_float(plan.time_scale * 4096.0)} + 0.5f;")
        u.emit("        ts = t >= 32767.0f ? 32767 : (t < 1.0f ? 1 : (int32_t)t);")
        u.emit("    }")
        em = _emit_cfc_cells(u, plan, xin)
    bound_action = _readout(u, plan, em)
    f_h = em.state_fmt[0][1] if em.state_fmt else f_x
    info = Quantised(f_x, f_h, bound_action, em.state_err, u.flash_bytes())

    fields = [("int16_t", "h", max(1, plan.state_dim)), ("int16_t", "x", plan.obs_dim)]
    fields += em.fields
    if em.proj is not None and not any(n == "acc" for _, n, _ in fields):
        fields.append(("int32_t", "acc", em.proj.n_out))
    struct = "".join(f"    {t} {n}[{size}];\n" for t, n, size in fields)
    helpers = "\n".join(HELPERS[h] for h in _ORDER if h in u.helpers)
    formats = ", ".join(f"{n} values Q{f}" for n, f in em.state_fmt) or "none"
    state_bound = float(np.max(em.state_err, initial=0.0))
    bound = (
        f"/* Per-step error bound vs Policy.step from the same state (ts <= {TS_MAX:g}):\n"
        f" *   |action - Policy.step| <= {np.array2string(bound_action, precision=3)}\n"
        f" *   |state' - Policy.state'| <= {state_bound:.3g} (max over the state)\n"
        f" * Formats: x Q{f_x}, state {formats}, ts Q12 (saturates at 8), activations\n"
        " * Q12 -> Q15.\n"
        " */\n"
    )
    ts_decl = "" if baseline else "    int32_t ts;\n"
    source = f"""/* {prefix}.c: generated by `liquidnode export --target c --precision q15`. */
#include "{prefix}.h"

{bound}
{FLASH_MACROS}
{u.arrays_source()}
{helpers}
{_state_functions(prefix, em.state_fmt)}
void {prefix}_step({prefix}_state *s, const float *obs, float dt, float *action) {{
    unsigned int i;
{ts_decl}{chr(10).join(u.lines)}
}}
"""
    files = {f"{prefix}.h": header(plan, prefix, "q15", struct), f"{prefix}.c": source}
    return files, info


def generate(plan: PolicyPlan, prefix: str) -> dict[str, str]:
    """``{"<prefix>.h": text, "<prefix>.c": text}`` for a q15 export of ``plan``."""
    return build(plan, prefix)[0]
