"""The float32 export's C helpers: ``exp``, ``tanh``/``sigmoid`` by table, ``erf``, dense layers.

Each entry of :data:`HELPERS` is the text of one ``static`` C function (emitted once per
translation unit, in :data:`ORDER`, with the helpers it calls, :data:`NEEDS`). Every helper
has a plain C99 body for any compiler (gcc, avr-gcc with tables in ``PROGMEM``) and, where the
Cortex-M4F gains from it, an inline-assembler body that gives the same bits (the HIL check
compares a device's actions with the host build of the same export, bit for bit).

``tanh`` (:func:`tanh_table`): the argument is scaled to ``a = 7 x`` and split into an integer
``i = trunc(a)`` (saturated to -64..63) and ``u = a - i``; row ``i + 64`` of a 128-row table
holds a degree-5 polynomial in ``u`` (Chebyshev interpolant of ``tanh((i + u) / 7)`` on the
row's interval, coefficients rounded to float32), evaluated by Horner. Rows 0 and 127 are the
constants -1 and 1 (``|x| >= 9``: ``|tanh x| > 1 - 3.1e-8``). Maximum absolute error against
``tanh`` over all float32 ``x``: :data:`TANH_MAX_ERROR` (7.2e-8, float32 arithmetic included:
every float32 with ``|x| <= 9.5`` evaluated once; the tests hold a dense grid to it).
``sigmoid(x) = 0.5 + 0.5 tanh(x / 2)``, within half that plus one rounding. On the M4F a
``tanh`` is 13 instructions (``VCVT`` to a saturated integer and back, ``SSAT``, one ``VLDM``
of the six coefficients, five ``VMLA``), against about 60 for ``exp`` by range reduction and
a division. ``|x| > 4.8e37`` (``7 x`` overflows)
and NaN give NaN (the argument of an activation is a weighted sum of bounded values).

``ln_dense`` (rows in blocks of 8, :func:`blocked`): on the M4F one assembler loop per block
keeps the 8 accumulators in ``s0..s7``, loads 8 inputs in one ``VLDM``, then per 2 inputs the
16 weights in one ``VLDM`` and 16 ``VMLA`` (multiply rounded, then add: the same bits as the
C ``acc += w * a``): 71 instructions per 64 multiply-accumulates. Rows after the last whole
block take 8 inputs and their 8 weights per 2 ``VLDM``.
"""

from __future__ import annotations

import numpy as np

from liquidnode.controller.export.c_source import c_float

BLOCK = 8  # rows of a dense layer computed together (ln_dense's blocks)
TANH_SCALE = 7.0  # table rows per unit of x
TANH_HALF = 64  # rows on each side of 0: i = trunc(7 x) in -64..63
TANH_DEGREE = 5
TANH_STRIDE = 8  # floats per row on the M4F: the 6 coefficients, 2 zeros (rows 32 B apart)
TANH_MAX_ERROR = 8e-8  # |table tanh - tanh| over all float32 x (7.2e-8 at x = 0.84992)


def blocked(weight: np.ndarray) -> np.ndarray:
    """``weight`` ``(out, in)`` in ``ln_dense``'s order: each whole block of :data:`BLOCK` rows
    input-major (the block's weights of input 0, then of input 1, ...), then the remaining
    rows row-major."""
    whole = weight.shape[0] // BLOCK * BLOCK
    blocks = weight[:whole].reshape(-1, BLOCK, weight.shape[1]).transpose(0, 2, 1)
    return np.concatenate([blocks.reshape(-1), weight[whole:].reshape(-1)])


def tanh_table() -> np.ndarray:
    """The ``(128, 8)`` float32 table of ``ln_tanh_s``: row ``i + 64`` holds the coefficients
    ``c0..c5`` of ``tanh((i + u) / 7) ~ sum c_k u^k`` for ``u`` in ``[0, 1)`` (``i > 0``),
    ``(-1, 0]`` (``i < 0``) or ``(-1, 1)`` (``i = 0``), then two zeros."""
    rows = np.zeros((2 * TANH_HALF, TANH_STRIDE))
    nodes = np.cos((2 * np.arange(TANH_DEGREE + 1) + 1) * np.pi / (2 * TANH_DEGREE + 2))
    for j in range(2 * TANH_HALF):
        i = j - TANH_HALF
        if i in (-TANH_HALF, TANH_HALF - 1):
            rows[j, 0] = np.sign(i)
            continue
        lo, hi = (-1.0, 1.0) if i == 0 else ((0.0, 1.0) if i > 0 else (-1.0, 0.0))
        u = (lo + hi) / 2 + (hi - lo) / 2 * nodes
        rows[j, : TANH_DEGREE + 1] = np.polyfit(u, np.tanh((i + u) / TANH_SCALE), TANH_DEGREE)[::-1]
    rows[TANH_HALF, 0 : TANH_DEGREE + 1 : 2] = 0.0  # the middle row is odd: tanh(0) = 0
    return rows.astype(np.float32)


def tanh_reference(a: np.ndarray) -> np.ndarray:
    """What the generated ``ln_tanh_s(a)`` (``tanh(a / 7)``) returns for float32 ``a``, in numpy
    float32 arithmetic (the same operations in the same order)."""
    table = tanh_table()
    a = np.asarray(a, np.float32)
    with np.errstate(invalid="ignore"):
        i = np.where(np.isnan(a), 0, np.trunc(np.clip(a, -(2.0**31), 2.0**31 - 1)))
        u = (a - i.astype(np.float32)).astype(np.float32)
        c = table[np.clip(i, -TANH_HALF, TANH_HALF - 1).astype(np.int64) + TANH_HALF]
        p = c[..., TANH_DEGREE]
        for k in range(TANH_DEGREE - 1, -1, -1):
            p = c[..., k] + p * u
    return p


def _tanh_helper() -> str:
    rows = tanh_table()
    coef = rows[:, : TANH_DEGREE + 1]
    body = ",\n".join("    {" + ", ".join(c_float(v) for v in row) + "}" for row in coef)
    n, s = TANH_HALF, c_float(TANH_SCALE)
    return f"""\
/* tanh(a / {TANH_SCALE:g}) by table: row trunc(a) + {n} (saturated) holds a degree-5 polynomial in
   u = a - trunc(a); absolute error below {TANH_MAX_ERROR:g}. */
/* rows 32 B apart on the M4F (the address is one shift), packed elsewhere */
static const float ln_tanh_tbl[{2 * n}][LN_M4F ? {TANH_STRIDE} : {TANH_DEGREE + 1}] LN_FLASH = {{
{body}
}};

#if LN_M4F
static inline float ln_tanh_s(float a) {{
    register float y __asm__("s24"); /* c0, then the result */
    float f;
    uint32_t r;
    /* f = (int)a (toward zero, saturating), r = f saturated to -{n}..{n - 1}, a = a - f,
       then Horner over the row's six coefficients (s24 = c0 .. s29 = c5) */
    __asm__("vcvt.s32.f32 %[f], %[a]\\n\\t"
            "vmov %[r], %[f]\\n\\t"
            "vcvt.f32.s32 %[f], %[f]\\n\\t"
            "ssat %[r], #7, %[r]\\n\\t"
            "vsub.f32 %[a], %[a], %[f]\\n\\t"
            "add %[r], %[t], %[r], lsl #5\\n\\t"
            "vldmia %[r], {{s24-s29}}\\n\\t"
            "vmla.f32 s28, s29, %[a]\\n\\t"
            "vmla.f32 s27, s28, %[a]\\n\\t"
            "vmla.f32 s26, s27, %[a]\\n\\t"
            "vmla.f32 s25, s26, %[a]\\n\\t"
            "vmla.f32 %[y], s25, %[a]"
            : [y] "=&t"(y), [a] "+t"(a), [f] "=&t"(f), [r] "=&r"(r)
            : [t] "r"(ln_tanh_tbl[{n}])
            : "s25", "s26", "s27", "s28", "s29");
    return y;
}}
#else
static float ln_tanh_s(float a) {{
    /* VCVT.S32.F32: toward zero, saturating, NaN to 0 */
    const int32_t i = a != a ? 0 : (a >= 2147483648.0f ? INT32_MAX
                                  : (a <= -2147483648.0f ? INT32_MIN : (int32_t)a));
    const float u = a - (float)i;
    const float *c = ln_tanh_tbl[(i < -{n} ? -{n} : (i > {n - 1} ? {n - 1} : i)) + {n}];
    float p = LN_RD_F32(&c[5]);
    p = LN_RD_F32(&c[4]) + p * u;
    p = LN_RD_F32(&c[3]) + p * u;
    p = LN_RD_F32(&c[2]) + p * u;
    p = LN_RD_F32(&c[1]) + p * u;
    return LN_RD_F32(&c[0]) + p * u;
}}
#endif

static inline float ln_tanh(float v) {{ return ln_tanh_s({s} * v); }}
"""


HELPERS = {
    "ln_m4f": """\
/* The Cortex-M4F (FPv4-SP, hard float) gets the assembler bodies. */
#if defined(__ARM_ARCH_7EM__) && defined(__ARM_FP) && !defined(__SOFTFP__)
#define LN_M4F 1
#else
#define LN_M4F 0
#endif
""",
    "ln_exp": """\
/* exp(v), Cephes-style: range reduction by ln 2, degree-6 polynomial, exponent from bits. */
static float ln_exp(float v) {
    union { int32_t i; float f; } scale;
    float n, r, p;
    v = v > 88.0f ? 88.0f : (v < -87.0f ? -87.0f : v);
    n = (v * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    r = (v - n * 0.693359375f) + n * 2.12194440e-4f;
    p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    scale.i = ((int32_t)n + 127) << 23;
    return p * scale.f;
}
""",
    "ln_tanh": _tanh_helper(),
    "ln_sigmoid": f"""\
/* sigmoid(v) = 0.5 + 0.5 tanh(v / 2) */
static inline float ln_sigmoid(float v) {{
    return 0.5f + 0.5f * ln_tanh_s({c_float(TANH_SCALE / 2)} * v);
}}
""",
    "ln_erf": """\
/* erf(v), Abramowitz-Stegun 7.1.26 (absolute error below 1.5e-7). */
static float ln_erf(float v) {
    const float a = v < 0.0f ? -v : v;
    const float t = 1.0f / (1.0f + 0.3275911f * a);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    p = 1.0f - p * t * ln_exp(-a * a);
    return v < 0.0f ? -p : p;
}
""",
    "ln_dense": """\
/* y = W a + b for W in flash: rows in blocks of 8 (in a block the 8 weights of each input
   are adjacent), the rows after the last whole block row-major; every row's products summed
   in input order, bias last. */
#if LN_M4F
static const float ln_zero8[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
/* the 8 accumulators s0..s7 += the weights in s16..s23 (LN_VA) or s24..s31 (LN_VB) * x */
#define LN_VA(x) \\
    "vmla.f32 s0, s16, " x "\\n\\t" "vmla.f32 s1, s17, " x "\\n\\t" \\
    "vmla.f32 s2, s18, " x "\\n\\t" "vmla.f32 s3, s19, " x "\\n\\t" \\
    "vmla.f32 s4, s20, " x "\\n\\t" "vmla.f32 s5, s21, " x "\\n\\t" \\
    "vmla.f32 s6, s22, " x "\\n\\t" "vmla.f32 s7, s23, " x "\\n\\t"
#define LN_VB(x) \\
    "vmla.f32 s0, s24, " x "\\n\\t" "vmla.f32 s1, s25, " x "\\n\\t" \\
    "vmla.f32 s2, s26, " x "\\n\\t" "vmla.f32 s3, s27, " x "\\n\\t" \\
    "vmla.f32 s4, s28, " x "\\n\\t" "vmla.f32 s5, s29, " x "\\n\\t" \\
    "vmla.f32 s6, s30, " x "\\n\\t" "vmla.f32 s7, s31, " x "\\n\\t"
static void ln_dense(const float *w, const float *b, const float *a, unsigned int n_in,
                     unsigned int n_out, float *y) {
    unsigned int r = 0u;
    for (; r + 8u <= n_out; r += 8u) {
        const float *x = a;
        unsigned int n8 = n_in >> 3, n1 = n_in & 7u;
        /* s0..s7 the accumulators, s8..s15 eight inputs, s16..s31 two inputs' weights */
        __asm__ volatile(
            "vldmia %[z], {s0-s7}\\n\\t"
            "cmp %[n8], #0\\n\\t"
            "beq 2f\\n"
            "1:\\n\\t"
            "vldmia %[x]!, {s8-s15}\\n\\t"
            "vldmia %[w]!, {s16-s31}\\n\\t"
            LN_VA("s8") LN_VB("s9")
            "vldmia %[w]!, {s16-s31}\\n\\t"
            LN_VA("s10") LN_VB("s11")
            "vldmia %[w]!, {s16-s31}\\n\\t"
            LN_VA("s12") LN_VB("s13")
            "vldmia %[w]!, {s16-s31}\\n\\t"
            LN_VA("s14") LN_VB("s15")
            "subs %[n8], %[n8], #1\\n\\t"
            "bne 1b\\n"
            "2:\\n\\t"
            "cmp %[n1], #0\\n\\t"
            "beq 4f\\n"
            "3:\\n\\t"
            "vldmia %[x]!, {s8}\\n\\t"
            "vldmia %[w]!, {s16-s23}\\n\\t"
            LN_VA("s8")
            "subs %[n1], %[n1], #1\\n\\t"
            "bne 3b\\n"
            "4:\\n\\t"
            "vldmia %[b], {s16-s23}\\n\\t"
            "vadd.f32 s0, s0, s16\\n\\t" "vadd.f32 s1, s1, s17\\n\\t"
            "vadd.f32 s2, s2, s18\\n\\t" "vadd.f32 s3, s3, s19\\n\\t"
            "vadd.f32 s4, s4, s20\\n\\t" "vadd.f32 s5, s5, s21\\n\\t"
            "vadd.f32 s6, s6, s22\\n\\t" "vadd.f32 s7, s7, s23\\n\\t"
            "vstmia %[y], {s0-s7}"
            : [w] "+r"(w), [x] "+r"(x), [n8] "+r"(n8), [n1] "+r"(n1)
            : [z] "r"(ln_zero8), [b] "r"(b + r), [y] "r"(y + r)
            : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12",
              "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23",
              "s24", "s25", "s26", "s27", "s28", "s29", "s30", "s31", "cc", "memory");
    }
    for (; r < n_out; ++r) {
        const float *x = a;
        unsigned int n8 = n_in >> 3, n1 = n_in & 7u;
        float acc = 0.0f;
        /* one row: 8 inputs and their 8 weights per two VLDM, in input order */
        __asm__ volatile(
            "cmp %[n8], #0\\n\\t"
            "beq 2f\\n"
            "1:\\n\\t"
            "vldmia %[x]!, {s8-s15}\\n\\t"
            "vldmia %[w]!, {s16-s23}\\n\\t"
            "vmla.f32 %[acc], s16, s8\\n\\t" "vmla.f32 %[acc], s17, s9\\n\\t"
            "vmla.f32 %[acc], s18, s10\\n\\t" "vmla.f32 %[acc], s19, s11\\n\\t"
            "vmla.f32 %[acc], s20, s12\\n\\t" "vmla.f32 %[acc], s21, s13\\n\\t"
            "vmla.f32 %[acc], s22, s14\\n\\t" "vmla.f32 %[acc], s23, s15\\n\\t"
            "subs %[n8], %[n8], #1\\n\\t"
            "bne 1b\\n"
            "2:\\n\\t"
            "cmp %[n1], #0\\n\\t"
            "beq 4f\\n"
            "3:\\n\\t"
            "vldmia %[x]!, {s8}\\n\\t"
            "vldmia %[w]!, {s16}\\n\\t"
            "vmla.f32 %[acc], s16, s8\\n\\t"
            "subs %[n1], %[n1], #1\\n\\t"
            "bne 3b\\n"
            "4:"
            : [w] "+r"(w), [x] "+r"(x), [n8] "+r"(n8), [n1] "+r"(n1), [acc] "+t"(acc)
            :
            : "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", "s16", "s17", "s18",
              "s19", "s20", "s21", "s22", "s23", "cc", "memory");
        y[r] = acc + b[r];
    }
}
#else
#define LN_MAC8(w, v)                                                                    \\
    do {                                                                                 \\
        s0 += LN_RD_F32(w) * v;                                                          \\
        s1 += LN_RD_F32(w + 1) * v;                                                      \\
        s2 += LN_RD_F32(w + 2) * v;                                                      \\
        s3 += LN_RD_F32(w + 3) * v;                                                      \\
        s4 += LN_RD_F32(w + 4) * v;                                                      \\
        s5 += LN_RD_F32(w + 5) * v;                                                      \\
        s6 += LN_RD_F32(w + 6) * v;                                                      \\
        s7 += LN_RD_F32(w + 7) * v;                                                      \\
        w += 8;                                                                          \\
    } while (0)
static void ln_dense(const float *w, const float *b, const float *a, unsigned int n_in,
                     unsigned int n_out, float *y) {
    unsigned int r = 0u, i;
    for (; r + 8u <= n_out; r += 8u) {
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f, s4 = 0.0f, s5 = 0.0f, s6 = 0.0f,
              s7 = 0.0f;
        for (i = 0; i < n_in; ++i) {
            const float v = a[i];
            LN_MAC8(w, v);
        }
        y[r] = s0 + LN_RD_F32(&b[r]);
        y[r + 1u] = s1 + LN_RD_F32(&b[r + 1u]);
        y[r + 2u] = s2 + LN_RD_F32(&b[r + 2u]);
        y[r + 3u] = s3 + LN_RD_F32(&b[r + 3u]);
        y[r + 4u] = s4 + LN_RD_F32(&b[r + 4u]);
        y[r + 5u] = s5 + LN_RD_F32(&b[r + 5u]);
        y[r + 6u] = s6 + LN_RD_F32(&b[r + 6u]);
        y[r + 7u] = s7 + LN_RD_F32(&b[r + 7u]);
    }
    for (; r < n_out; ++r) {
        float acc = 0.0f;
        for (i = 0; i < n_in; ++i) acc += LN_RD_F32(w++) * a[i];
        y[r] = acc + LN_RD_F32(&b[r]);
    }
}
#endif
""",
}
# helpers that call other helpers
NEEDS = {
    "ln_tanh": ("ln_m4f",),
    "ln_sigmoid": ("ln_m4f", "ln_tanh"),
    "ln_erf": ("ln_exp",),
    "ln_dense": ("ln_m4f",),
}
ORDER = ("ln_m4f", "ln_exp", "ln_tanh", "ln_sigmoid", "ln_erf", "ln_dense")
