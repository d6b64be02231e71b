"""q15 arithmetic shared by the fixed-point generators: formats, the tanh table, the C helpers,
the quantisation of a dense layer and the error bookkeeping.

Conventions (see :mod:`.fixed_point` for the whole scheme): a vector of int16 values ``q`` means
``real = q * scale`` with ``|real| <= bound`` and an error bound ``err`` against the float
reference (:class:`Segment`); a dense layer's int32 accumulator means ``real = acc / 2^s``
(:class:`QDense`); activation inputs are int32 Q12 clamped to ±16; tanh and sigmoid outputs
are Q15. The Python replicas :func:`tanh_q` / :func:`sigmoid_q` compute exactly what the C
helpers compute, so the table's worst error is measured, not estimated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from liquidnode.controller.export.c_source import CUnit
from liquidnode.controller.export.lowering import Dense, ExportError

ACC_LIMIT = 2**30  # accumulator bound: one bit of headroom for the rounding add
Q_ACT = 12  # activation input format (int32 Q12, clamped to ±16)
CLAMP = 16 << Q_ACT
TS_MAX = 2.0  # the bound holds for ts = dt * time_scale up to this
TS_MIN_PURE = 0.25  # and, for the CfC pure mode (its state bound is 1 / (e ts)), from this
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


EXP2_LUT = np.round(2.0 ** (-np.arange(65) / 64.0) * 32768.0).astype(np.int64)


def exp_neg_q(u: np.ndarray) -> np.ndarray:
    """The generated ``ln_exp_neg_q12``: ``u >= 0`` int Q12 -> ``exp(-u)`` Q15 in
    ``[0, 32768]``: ``2^-(u / ln 2)`` from a 65-entry table of ``2^(-k/64)`` with linear
    interpolation, shifted right by the integer part (0 from ``u >= 16``)."""
    u = np.asarray(u, np.int64)
    p = (np.minimum(u, 65535) * 47274 + 4096) >> 13  # u / ln 2 in Q14, rounded
    n, idx, fr = p >> 14, (p >> 8) & 63, p & 255
    lo, hi = EXP2_LUT[idx], EXP2_LUT[idx + 1]
    t = lo - (((lo - hi) * fr + 128) >> 8)
    e = np.where(n > 0, (t + (np.int64(1) << np.maximum(n - 1, 0))) >> n, t)
    return np.where(u >= 65536, 0, e)


def _table_errors() -> tuple[float, float]:
    u = np.arange(-CLAMP, CLAMP + 1)
    v = u / 2.0**Q_ACT
    e_t = float(np.max(np.abs(tanh_q(u) / 32768.0 - np.tanh(v))))
    e_s = float(np.max(np.abs(sigmoid_q(u) / 32768.0 - 1.0 / (1.0 + np.exp(-v)))))
    # beyond the clamp (|v| > 16) the functions differ from their value at 16 by < 1.2e-7
    return e_t + 1.2e-7, e_s + 1.2e-7


EPS_TANH, EPS_SIGMOID = _table_errors()
# exp(-u) table error over every Q12 input below 16, and exp(-16) for the zero beyond
_U = np.arange(65536)
EPS_EXP = max(float(np.max(np.abs(exp_neg_q(_U) / 32768.0 - np.exp(-_U / 4096)))), math.exp(-16))


# The AVR inner products: the weight from flash (Z), the activation from RAM (X), the 32-bit
# sum with the hardware multiplier (r1 cleared after). int16 weights: four products (mul,
# muls, two mulsu with the sign fixed by sbc); int8 weights: two (mulsu, muls).
_AVR_MAC = {
    "int16_t": """\
            "lpm r18, Z+\\n\\t"
            "lpm r19, Z+\\n\\t"
            "ld r20, X+\\n\\t"
            "ld r21, X+\\n\\t"
            "mul r18, r20\\n\\t"
            "add %A[s], r0\\n\\t"
            "adc %B[s], r1\\n\\t"
            "adc %C[s], %[z]\\n\\t"
            "adc %D[s], %[z]\\n\\t"
            "muls r19, r21\\n\\t"
            "add %C[s], r0\\n\\t"
            "adc %D[s], r1\\n\\t"
            "mulsu r19, r20\\n\\t"
            "sbc %D[s], %[z]\\n\\t"
            "add %B[s], r0\\n\\t"
            "adc %C[s], r1\\n\\t"
            "adc %D[s], %[z]\\n\\t"
            "mulsu r21, r18\\n\\t"
            "sbc %D[s], %[z]\\n\\t"
            "add %B[s], r0\\n\\t"
            "adc %C[s], r1\\n\\t"
            "adc %D[s], %[z]\\n\\t"
""",
    "int8_t": """\
            "lpm r18, Z+\\n\\t"
            "ld r20, X+\\n\\t"
            "ld r21, X+\\n\\t"
            "mulsu r18, r20\\n\\t"
            "sbc r19, r19\\n\\t"
            "add %A[s], r0\\n\\t"
            "adc %B[s], r1\\n\\t"
            "adc %C[s], r19\\n\\t"
            "adc %D[s], r19\\n\\t"
            "muls r18, r21\\n\\t"
            "sbc r19, r19\\n\\t"
            "add %B[s], r0\\n\\t"
            "adc %C[s], r1\\n\\t"
            "adc %D[s], r19\\n\\t"
""",
}


def _dense_loop(name: str, wtype: str, read: str) -> str:
    """The C dense layer ``acc = b + W a`` over weights of C type ``wtype`` read from flash with
    ``read``: on the AVR each row's inner product is one assembler loop."""
    pad = " " * (len(name) + 13)
    dot = f"{name.replace('dense', 'dot')}"
    dpad = " " * (len(dot) + 16)
    note = f"{wtype[:-2]} W (row-major, flash), int32 b, int32 accumulation (bounded < 2^30)"
    return f"""#if defined(__AVR__) && defined(__AVR_HAVE_MUL__)
/* sum + w . a over n > 0 terms: w {wtype[:-2]} in flash, a int16 in RAM; an odd term first,
   then two terms per loop turn. */
static int32_t {dot}(const {wtype} *w, const int16_t *a, unsigned int n,
{dpad}int32_t sum) {{
    uint8_t z;
    __asm__ volatile(
            "clr %[z]\\n\\t"
            "lsr %B[n]\\n\\t"
            "ror %A[n]\\n\\t"
            "brcc 2f\\n\\t"
{_AVR_MAC[wtype]}            "2:\\n\\t"
            "sbiw %[n], 0\\n\\t"
            "breq 3f\\n"
            "1:\\n\\t"
{_AVR_MAC[wtype]}{_AVR_MAC[wtype]}            "sbiw %[n], 1\\n\\t"
            "brne 1b\\n"
            "3:\\n\\t"
            "clr r1"
            : [s] "+r"(sum), [z] "=&r"(z), [w] "+z"(w), [a] "+x"(a), [n] "+w"(n)
            :
            : "r0", "r18", "r19", "r20", "r21", "memory");
    return sum;
}}
#else
static int32_t {dot}(const {wtype} *w, const int16_t *a, unsigned int n,
{dpad}int32_t sum) {{
    while (n--) sum += (int32_t){read}(w++) * *a++;
    return sum;
}}
#endif

/* acc = b + W a: {note}. */
static void {name}(const {wtype} *w, const int32_t *b, const int16_t *a, unsigned int n_in,
{pad}unsigned int n_out, int32_t *acc) {{
    while (n_out--) {{
        *acc++ = {dot}(w, a, n_in, LN_RD_I32(b++));
        w += n_in;
    }}
}}
"""


HELPERS = {
    "ln_dense_q": _dense_loop("ln_dense_q", "int16_t", "LN_RD_I16"),
    "ln_dense_q7": _dense_loop("ln_dense_q7", "int8_t", "LN_RD_I8"),
    "ln_asr8": """\
/* v >> 8; on the AVR opaque to the optimiser, so that a longer shift is not merged with it
   (bytes are moved for this one, the rest is shifted bit by bit). */
static inline int32_t ln_asr8(int32_t v) {
    v >>= 8;
#if defined(__AVR__)
    __asm__("" : "+r"(v));
#endif
    return v;
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
    return (int16_t)((uint16_t)((uint16_t)ln_tanh_q13(u) + 32768u) >> 1);
}
""",
}
# neighbours of the table differ by at most 512: (hi - lo) fr stays below 2^16 for fr < 2^7
assert int(np.max(np.diff(TANH_LUT))) <= 512
for _fb in (12, 13):  # |u| < 8 << fb fits 16 bits: 16-bit arithmetic (the AVR's cheap case)
    _sh = _fb - 6
    # x >> 6 as (x << 1) >> 7 (x < 2^15 here: a < 8 << 12, m < 513 * 64): avr-gcc shifts by 7
    # with a few byte operations, by 6 in a loop of six two-byte shifts
    _a, _m = (
        ("a >> 7", "m >> 7") if _sh == 7 else ("(uint16_t)(a << 1) >> 7", "(uint16_t)(m << 1) >> 7")
    )
    HELPERS[f"ln_tanh_q{_fb}"] = f"""\
/* tanh of u (Q{_fb}) in Q15: the table with linear interpolation, saturating beyond 8. */
static int16_t ln_tanh_q{_fb}(int32_t u) {{
    uint16_t t = 32767u;
    if (u > -{8 << _fb}L && u < {8 << _fb}L) {{
        const uint16_t a = (uint16_t)(u < 0 ? -u : u);
        const int16_t *p = &ln_tanh_lut[{_a}];
        const uint16_t lo = (uint16_t)LN_RD_I16(p);
        const uint16_t d = (uint16_t)((uint16_t)LN_RD_I16(p + 1) - lo);
        const uint16_t m = (uint16_t)(d * (uint8_t)(a & {(1 << _sh) - 1}u) + {1 << (_sh - 1)}u);
        t = (uint16_t)(lo + ({_m}));
    }}
    return u < 0 ? (int16_t)-(int16_t)t : (int16_t)t;
}}
"""
for _fb in (14, 15):
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
HELPERS["ln_exp_neg_q12"] = """\
/* exp(-u) of u >= 0 (Q12) in Q15 (0..32768): 2^-(u / ln 2) from a table of 2^(-k/64) (Q15)
   with linear interpolation, shifted right by the integer part; 0 from u >= 16. */
static const uint16_t ln_exp2_lut[65] LN_FLASH = {
@LUT@
};
static int32_t ln_exp_neg_q12(int32_t u) {
    uint32_t p;
    unsigned int n;
    int32_t lo, hi, t;
    if (u >= 65536L) return 0;
    p = ((uint32_t)u * 47274UL + 4096UL) >> 13; /* u / ln 2 in Q14 */
    n = (unsigned int)(p >> 14);
    lo = (int32_t)(uint16_t)LN_RD_I16(&ln_exp2_lut[(p >> 8) & 63u]);
    hi = (int32_t)(uint16_t)LN_RD_I16(&ln_exp2_lut[((p >> 8) & 63u) + 1u]);
    t = lo - (((lo - hi) * (int32_t)(p & 255u) + 128L) >> 8);
    return n ? (t + (1L << (n - 1u))) >> n : t;
}
""".replace(
    "@LUT@",
    ",\n".join("    " + ", ".join(str(v) for v in EXP2_LUT[i : i + 12]) for i in range(0, 65, 12)),
)
NEEDS: dict[str, tuple[str, ...]] = {f"ln_tanh_q{fb}": ("ln_tanh_lut",) for fb in (12, 13, 14, 15)}
NEEDS["ln_sigmoid_q"] = ("ln_tanh_lut", "ln_tanh_q13")
ORDER = (
    "ln_asr8",
    "ln_dense_q",
    "ln_dense_q7",
    "ln_clamp12",
    "ln_sat16",
    "ln_tanh_lut",
    "ln_tanh_q12",
    "ln_tanh_q13",
    "ln_tanh_q14",
    "ln_tanh_q15",
    "ln_sigmoid_q",
    "ln_exp_neg_q12",
)


def rshift_expr(expr: str, sh: int) -> str:
    """C expression: ``expr`` (int32) rounded and arithmetically shifted right by ``sh``.

    Shifts by more than 8 that are not whole bytes go through ``ln_asr8`` (whole bytes first:
    avr-gcc moves bytes for those, and shifts one bit per loop turn otherwise); a remainder
    of 6 or 7 bits as a multiplication by 4 or 2 and one more ``ln_asr8`` (after a byte the
    value is below 2^23 in magnitude: the product cannot overflow)."""
    if sh < 0:
        raise ExportError(f"internal: negative shift {sh}")
    if sh == 0:
        return expr
    rounded = f"({expr}) + {1 << (sh - 1)}L"
    if sh < 8 or sh % 8 == 0:
        return f"({rounded}) >> {sh}"
    for _ in range(sh // 8):
        rounded = f"ln_asr8({rounded})"
    if sh % 8 >= 6:
        return f"ln_asr8({rounded} * {1 << (8 - sh % 8)})"
    return f"{rounded} >> {sh % 8}"


def q12_expr(expr: str, sh: int) -> str:
    """C expression: an accumulator ``2^-sh`` above Q12 as a clamped Q12 activation input."""
    return f"ln_clamp12({rshift_expr(expr, sh)})"


@dataclass
class Segment:
    """Inputs of a dense layer: ``real = q * scale``, ``|real| <= bound``, error ``err``."""

    scale: np.ndarray
    bound: np.ndarray
    err: np.ndarray


def segment(n: int, scale: float, bound: float, err: np.ndarray | float) -> Segment:
    return Segment(np.full(n, scale), np.full(n, bound), np.broadcast_to(err, (n,)).astype(float))


def concat(*segs: Segment) -> Segment:
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


def quantise_dense(
    weight: np.ndarray, bias: np.ndarray, inp: Segment, gain: float = 1.0, wmax: int = 32767
) -> QDense:
    """Quantise ``gain * (weight @ a + bias)`` for inputs described by ``inp``; weights are
    integers within ``±wmax`` (32767: int16, 127: int8)."""
    W = np.asarray(weight, np.float64) * gain
    b = np.asarray(bias, np.float64) * gain
    col = np.max(np.abs(W), axis=0) * inp.scale
    col = col[col > 0]
    s = min(40, math.floor(math.log2(wmax / col.max())) if col.size else 40)
    qmax = np.minimum(np.ceil(inp.bound / inp.scale), 32767)
    while True:
        wq = np.round(W * inp.scale * 2.0**s)
        bq = np.round(b * 2.0**s)
        if np.max(np.abs(wq)) <= wmax and np.max(np.abs(wq) @ qmax + np.abs(bq)) < ACC_LIMIT:
            break
        s -= 1
    if s < Q_ACT + 1:
        raise ExportError(f"weights too large for fixed point (accumulator format 2^-{s})")
    w_eff = wq / (inp.scale * 2.0**s)
    err = np.abs(W - w_eff) @ inp.bound + np.abs(b - bq / 2.0**s) + np.abs(w_eff) @ inp.err
    err += 1e-6 * (np.abs(W) @ inp.bound + np.abs(b))  # float32 reference rounding
    bound = np.abs(W) @ inp.bound + np.abs(b)
    wtype = np.int8 if wmax <= 127 else np.int16
    return QDense(wq.astype(wtype), bq.astype(np.int32), s, bound, err)


@dataclass
class Quantised:
    """What the q15 generator derived: formats and the per-step error bounds (real units)."""

    f_x: int
    f_h: int
    bound_action: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bound_state: np.ndarray = field(default_factory=lambda: np.zeros(0))
    flash_weights: int = 0


@dataclass
class Q15Unit(CUnit):
    """A fixed-point translation unit: int16 activations, weights within ``±wmax``
    (32767: int16, ``q15``; 127: int8, ``q7``)."""

    wmax: int = 32767

    def use(self, *names: str) -> None:
        """Mark helpers (and the helpers they call) as used."""
        for name in names:
            super().use(*NEEDS.get(name, ()))
            super().use(name)

    def quantise(
        self, weight: np.ndarray, bias: np.ndarray, inp: Segment, gain: float = 1.0
    ) -> QDense:
        """:func:`quantise_dense` at this unit's weight width."""
        return quantise_dense(weight, bias, inp, gain, self.wmax)

    def dense(self, name: str, q: QDense, a: str, n_in: int, acc: str) -> None:
        """Emit ``acc = b + W a`` for a quantised layer (weights and bias into flash)."""
        q7 = self.wmax <= 127
        w = self.array(f"{name}_w", "int8_t" if q7 else "int16_t", q.wq)
        b = self.array(f"{name}_b", "int32_t", q.bq)
        fn = "ln_dense_q7" if q7 else "ln_dense_q"
        self.use(fn)
        self.emit(f"    {fn}({w}, {b}, {a}, {n_in}u, {len(q.bq)}u, {acc});")


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
