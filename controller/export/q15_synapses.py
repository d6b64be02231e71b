"""The LTC's synapse layer in fixed point: the Q11 sigmoid and the C helper that sums one layer's
synapses into the update's numerator and denominator (:mod:`.q15_ltc`).

A synapse from source ``i`` to destination ``j`` contributes ``s_ji we_ji`` and ``s_ji w_ji``
with ``s_ji = sigmoid(arg)``, ``arg = (a_ji in_i + B_ji) >> sh`` clamped to ``±32767`` (Q11:
``±16``), ``a`` int16, ``in`` int16, ``B`` the offset in Q11 shifted left by ``sh`` plus the
rounding half (int32, ``|B| < 2^30``), ``s`` Q15 from the shared tanh table. Each synapse is one
record of five int16 in flash, in the order read: ``a``, ``B`` low half, ``B`` high half,
``we``, ``w`` (q7: the weights within ±127); records destination-major (``n x n_in``).

On the AVR (with the hardware multiplier, ``8 <= sh <= 23``) each destination's sources are one
assembler loop that keeps both sums in registers; elsewhere the C loop computes the same bits.
:func:`sigmoid_q11` replicates ``ln_sigmoid_q11`` (its worst error :data:`EPS_SIGMOID11` is
measured over every input).
"""

from __future__ import annotations

import numpy as np

from liquidnode.controller.export.q15_arith import Q_ACT, tanh_q


def sigmoid_q11(u: np.ndarray) -> np.ndarray:
    """The generated ``ln_sigmoid_q11``: ``u`` Q11 (``|u| <= 32767``) -> sigmoid Q15."""
    return (32768 + tanh_q(u, Q_ACT)) >> 1


_U11 = np.arange(-32767, 32768)
# the Q11 sigmoid over every input; beyond the clamp (|v| > 15.9995) it differs by < 1.2e-7
EPS_SIGMOID11 = (
    float(np.max(np.abs(sigmoid_q11(_U11) / 32768.0 - 1.0 / (1.0 + np.exp(-_U11 / 2048.0)))))
    + 1.2e-7
)


def _s16(v: np.ndarray) -> np.ndarray:
    return np.where(v >= 32768, v - 65536, v)


def records(a: np.ndarray, big: np.ndarray, we: np.ndarray, w: np.ndarray, q7: bool) -> np.ndarray:
    """The flash records (``n x n_in x 5`` int16 values, q7 ``x 4``) of a layer given
    source-major ``n_in x n`` arrays: gains ``a``, offsets ``big`` (``B``), weights ``we``,
    ``w``."""
    b = big.T.astype(np.int64)
    parts = [a.T.astype(np.int64), _s16(b & 0xFFFF), b >> 16]
    if q7:
        parts.append(_s16((we.T.astype(np.int64) & 0xFF) | ((w.T.astype(np.int64) & 0xFF) << 8)))
    else:
        parts += [we.T.astype(np.int64), w.T.astype(np.int64)]
    return np.stack(parts, axis=-1)


HELPERS: dict[str, str] = {
    "ln_sigmoid_q11": """\
/* sigmoid of u (Q11, |u| <= 32767) in Q15: (1 + tanh(u / 2)) / 2, u read as Q12 (the table
   with linear interpolation: 16-bit arithmetic throughout). */
static inline int16_t ln_sigmoid_q11(int16_t u) {
    const uint16_t a = (uint16_t)(u < 0 ? -u : u);
    const int16_t *p = &ln_tanh_lut[a >> 6];
    const uint16_t lo = (uint16_t)LN_RD_I16(p);
    const uint16_t d = (uint16_t)((uint16_t)LN_RD_I16(p + 1) - lo);
    const uint16_t m = (uint16_t)(d * (uint8_t)(a & 63u) + 32u);
    const uint16_t t = (uint16_t)(lo + ((uint16_t)(m << 1) >> 7));
    return (int16_t)((uint16_t)(u < 0 ? 32768u - t : 32768u + t) >> 1);
}
"""
}

HELPERS["ln_ts_mul"] = """\
/* floor(ts v / 2^16) for 1 <= ts <= 32767 (the update's ts N and ts D: |v| < 2^30); on the
   AVR always inlined (its registers are then the caller's). */
#if defined(__AVR__) && defined(__AVR_HAVE_MUL__)
static inline __attribute__((always_inline)) int32_t ln_ts_mul(int16_t ts, int32_t v) {
    int32_t res;
    __asm__(
        "movw r18, %A[t]\\n\\t"
        "movw r20, %A[v]\\n\\t"
        "movw r22, %C[v]\\n\\t"
        "clr r26\\n\\t"
        "mul r18, r20\\n\\t"
        "movw r24, r0\\n\\t"
        "mul r19, r21\\n\\t"
        "movw %A[res], r0\\n\\t"
        "mulsu r23, r19\\n\\t"
        "movw %C[res], r0\\n\\t"
        "mul r18, r21\\n\\t"
        "add r25, r0\\n\\t"
        "adc %A[res], r1\\n\\t"
        "adc %B[res], r26\\n\\t"
        "adc %C[res], r26\\n\\t"
        "adc %D[res], r26\\n\\t"
        "mul r19, r20\\n\\t"
        "add r25, r0\\n\\t"
        "adc %A[res], r1\\n\\t"
        "adc %B[res], r26\\n\\t"
        "adc %C[res], r26\\n\\t"
        "adc %D[res], r26\\n\\t"
        "mul r18, r22\\n\\t"
        "add %A[res], r0\\n\\t"
        "adc %B[res], r1\\n\\t"
        "adc %C[res], r26\\n\\t"
        "adc %D[res], r26\\n\\t"
        "mul r19, r22\\n\\t"
        "add %B[res], r0\\n\\t"
        "adc %C[res], r1\\n\\t"
        "adc %D[res], r26\\n\\t"
        "mulsu r23, r18\\n\\t"
        "sbc %D[res], r26\\n\\t"
        "add %B[res], r0\\n\\t"
        "adc %C[res], r1\\n\\t"
        "adc %D[res], r26\\n\\t"
        "clr r1"
        : [res] "=&r"(res)
        : [t] "r"(ts), [v] "r"(v)
        : "r0", "r18", "r19", "r20", "r21", "r22", "r23", "r24", "r25", "r26");
    return res;
}
#else
static int32_t ln_ts_mul(int16_t ts, int32_t v) {
    return (int32_t)(((int64_t)ts * v) >> 16);
}
#endif
"""

# The AVR loop over one destination's sources: r18-r25 scratch, %[z] zero; muls/mulsu need
# r16-r23 (a, x, g, the weights live in r18-r21).
_AVR_ARG = """\
            "lpm r18, Z+\\n\\t"
            "lpm r19, Z+\\n\\t"
            "ld r20, X+\\n\\t"
            "ld r21, X+\\n\\t"
            "mul r18, r20\\n\\t"
            "movw r22, r0\\n\\t"
            "muls r19, r21\\n\\t"
            "movw r24, r0\\n\\t"
            "mulsu r19, r20\\n\\t"
            "sbc r25, %[z]\\n\\t"
            "add r23, r0\\n\\t"
            "adc r24, r1\\n\\t"
            "adc r25, %[z]\\n\\t"
            "mulsu r21, r18\\n\\t"
            "sbc r25, %[z]\\n\\t"
            "add r23, r0\\n\\t"
            "adc r24, r1\\n\\t"
            "adc r25, %[z]\\n\\t"
            "lpm r18, Z+\\n\\t"
            "lpm r19, Z+\\n\\t"
            "lpm r20, Z+\\n\\t"
            "lpm r21, Z+\\n\\t"
            "add r22, r18\\n\\t"
            "adc r23, r19\\n\\t"
            "adc r24, r20\\n\\t"
            "adc r25, r21\\n\\t"
            "bst r25, 7\\n\\t"
            "brtc 3f\\n\\t"
            "com r25\\n\\t"
            "com r24\\n\\t"
            "com r23\\n\\t"
            "neg r22\\n\\t"
            "sbci r23, -1\\n\\t"
            "sbci r24, -1\\n\\t"
            "sbci r25, -1\\n"
            "3:\\n\\t"
"""
# g = sigmoid(+-mag) from r23 = (mag << 2) & 0xff, r24:r25 = mag >> 6 (the table index) and
# the sign in T -> r18:r19 (the C ln_sigmoid_q11, step by step)
_AVR_SIGMOID = """\
            "andi r23, 0xfc\\n\\t"
            "lsl r24\\n\\t"
            "rol r25\\n\\t"
            "mov r22, r23\\n\\t"
            "movw r20, r24\\n\\t"
            "movw r24, r30\\n\\t"
            "ldi r30, lo8(%[lut])\\n\\t"
            "ldi r31, hi8(%[lut])\\n\\t"
            "add r30, r20\\n\\t"
            "adc r31, r21\\n\\t"
            "lpm r18, Z+\\n\\t"
            "lpm r19, Z+\\n\\t"
            "lpm r20, Z+\\n\\t"
            "lpm r21, Z\\n\\t"
            "movw r30, r24\\n\\t"
            "sub r20, r18\\n\\t"
            "sbc r21, r19\\n\\t"
            "clr r23\\n\\t"
            "mul r20, r22\\n\\t"
            "movw r24, r0\\n\\t"
            "mul r21, r22\\n\\t"
            "add r25, r0\\n\\t"
            "adc r23, r1\\n\\t"
            "subi r24, 0x80\\n\\t"
            "sbci r25, 0xff\\n\\t"
            "sbci r23, 0xff\\n\\t"
            "add r18, r25\\n\\t"
            "adc r19, r23\\n\\t"
            "brts 4f\\n\\t"
            "lsr r19\\n\\t"
            "ror r18\\n\\t"
            "ori r19, 0x40\\n\\t"
            "rjmp 5f\\n"
            "4:\\n\\t"
            "com r19\\n\\t"
            "neg r18\\n\\t"
            "sbci r19, -1\\n\\t"
            "subi r19, 0x80\\n\\t"
            "lsr r19\\n\\t"
            "ror r18\\n"
            "5:\\n\\t"
"""


def _avr_magnitude(sh: int) -> str:
    """|v| (r22-r25) plus the rounding half, saturated, shifted right by ``sh - 2`` into r23-r25
    (``10 <= sh <= 17``): ``mag << 2`` and two bits below, ``mag`` at most 32767."""
    neg = (-(1 << (sh - 1))) & 0xFFFFFFFF
    first = (sh - 1) // 8
    lines = []
    for byte in range(first, 4):
        op = "subi" if byte == first else "sbci"
        lines.append(f"{op} r{22 + byte}, 0x{(neg >> (8 * byte)) & 0xFF:02x}")
    if sh <= 16:  # mag > 32767 iff |v| + half >= 2^(15 + sh)
        lines += [f"cpi r25, 0x{1 << (sh - 9):02x}", "brlo 6f"]
        lines += ["ldi r23, 0xfc", "ldi r24, 0xff", "ldi r25, 0x01", "rjmp 7f"]
        body = "".join(f'            "{ln}\\n\\t"\n' for ln in lines)
        body = body[: -len('\\n\\t"\n')] + '\\n"\n' + '            "6:\\n\\t"\n'
        lines = []
    else:
        body = "".join(f'            "{ln}\\n\\t"\n' for ln in lines)
        lines = []
    lines += ["lsr r25", "ror r24", "ror r23"] * (sh - 10)
    body += "".join(f'            "{ln}\\n\\t"\n' for ln in lines)
    if sh <= 16:
        body += '            "7:\\n\\t"\n'
    return body


def _avr_mac(acc: str, q7: bool) -> str:
    """acc += w g: the weight from flash (lpm) signed, g (r18:r19) in [0, 32767]."""
    if q7:
        lines = [
            "lpm r20, Z+",
            "mulsu r20, r18",
            "sbc r21, r21",
            f"add %A[{acc}], r0",
            f"adc %B[{acc}], r1",
            f"adc %C[{acc}], r21",
            f"adc %D[{acc}], r21",
            "muls r20, r19",
            "sbc r21, r21",
            f"add %B[{acc}], r0",
            f"adc %C[{acc}], r1",
            f"adc %D[{acc}], r21",
        ]
    else:
        lines = [
            "lpm r20, Z+",
            "lpm r21, Z+",
            "mul r20, r18",
            f"add %A[{acc}], r0",
            f"adc %B[{acc}], r1",
            f"adc %C[{acc}], %[z]",
            f"adc %D[{acc}], %[z]",
            "muls r21, r19",
            f"add %C[{acc}], r0",
            f"adc %D[{acc}], r1",
            "mulsu r21, r18",
            f"sbc %D[{acc}], %[z]",
            f"add %B[{acc}], r0",
            f"adc %C[{acc}], r1",
            f"adc %D[{acc}], %[z]",
            "mulsu r19, r20",
            f"sbc %D[{acc}], %[z]",
            f"add %B[{acc}], r0",
            f"adc %C[{acc}], r1",
            f"adc %D[{acc}], %[z]",
        ]
    return "".join(f'            "{ln}\\n\\t"\n' for ln in lines)


def _avr_row(sh: int, q7: bool) -> str:
    """The assembler loop of one destination (``10 <= sh <= 17``)."""
    return (
        '            "clr %[z]\\n"\n            "1:\\n\\t"\n'
        + _AVR_ARG
        + _avr_magnitude(sh)
        + _AVR_SIGMOID
        + _avr_mac("sn", q7)
        + _avr_mac("sd", q7)
        + '            "dec %[n]\\n\\t"\n            "breq 2f\\n\\t"\n'
        + '            "rjmp 1b\\n"\n            "2:\\n\\t"\n            "clr r1"\n'
    )


def rows_helper(sh: int, q7: bool) -> tuple[str, str]:
    """``(name, C source)`` of the layer helper for the argument shift ``sh`` (0..30); ``q7``:
    records of four int16 (the two int8 weights packed: ``we`` low byte, ``w`` high byte)."""
    name = f"ln_synapse_rows{'_q7' if q7 else ''}_s{sh}"
    size = 4 if q7 else 5
    asm = ""
    if 10 <= sh <= 17:
        asm = f"""#if defined(__AVR__) && defined(__AVR_HAVE_MUL__)
        {{
            const int16_t *x = in;
            uint8_t k = (uint8_t)n_in, z;
            __asm__ volatile(
{_avr_row(sh, q7)}            : [sn] "+r"(sn), [sd] "+r"(sd), [r] "+z"(r), [x] "+x"(x), [n] "+r"(k),
              [z] "=&r"(z)
            : [lut] "i"(ln_tanh_lut)
            : "r0", "r18", "r19", "r20", "r21", "r22", "r23", "r24", "r25", "memory");
        }}
#else
"""
    if q7:
        weights = """            {
                const uint16_t ww = (uint16_t)LN_RD_I16(r + 3);
                sn += (int32_t)g * (int8_t)(uint8_t)(ww & 0xffu);
                sd += (int32_t)g * (int8_t)(uint8_t)(ww >> 8);
            }
"""
    else:
        weights = """            sn += (int32_t)g * LN_RD_I16(r + 3);
            sd += (int32_t)g * LN_RD_I16(r + 4);
"""
    half = f"{1 << (sh - 1)}UL" if sh else "0UL"
    c_loop = f"""        for (i = 0; i < n_in; ++i) {{
            const int32_t b = (int32_t)(((uint32_t)(uint16_t)LN_RD_I16(r + 2) << 16) |
                                        (uint16_t)LN_RD_I16(r + 1));
            const int32_t v = (int32_t)LN_RD_I16(r) * in[i] + b;
            uint32_t mag = ((v < 0 ? -(uint32_t)v : (uint32_t)v) + {half}) >> {sh};
            int16_t g;
            if (mag > 32767u) mag = 32767u;
            g = ln_sigmoid_q11(v < 0 ? (int16_t)-(int16_t)mag : (int16_t)mag);
{weights}            r += {size};
        }}
"""
    end = "#endif\n" if asm else ""
    unused = "    unsigned int i;\n"
    if asm:
        unused = f"#if !defined(__AVR__) || !defined(__AVR_HAVE_MUL__)\n{unused}#endif\n"
    src = f"""\
/* For each of n destinations j: num[j] = n0[j] + sum_i s_ji we_ji, den[j] = d0[j] + sum_i s_ji
   w_ji (n0, d0 may be num, den) over
   n_in (1..255) sources in, s_ji = sigmoid of the Q11 argument: v = a_ji in_i + B_ji, its
   magnitude (|v| + 2^{sh} / 2) >> {sh} saturated at 32767, v's sign; r: the layer's records
   (a, B low, B high, {"we | w << 8" if q7 else "we, w"}). */
static void {name}(const int16_t *r, const int16_t *in, unsigned int n_in, unsigned int n,
{" " * (len(name) + 13)}const int32_t *n0, const int32_t *d0, int32_t *num, int32_t *den) {{
{unused}    while (n--) {{
        int32_t sn = *n0++, sd = *d0++;
{asm}{c_loop}{end}        *num++ = sn;
        *den++ = sd;
    }}
}}
"""
    return name, src


for _sh in range(31):
    for _q7 in (False, True):
        _name, _src = rows_helper(_sh, _q7)
        HELPERS[_name] = _src
ORDER = tuple(HELPERS)
