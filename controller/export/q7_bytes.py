"""Byte activations for the q7 export: a CfC backbone's tanh outputs and the state it reads
as 8-bit values, and the byte inner product (one 8 x 8 product per multiply-accumulate).

The q7 export keeps int16 activations everywhere except on a CfC backbone (``tanh`` or
``lecun_tanh``; state and layer widths multiples of 4, at most 252), where the widest layers
are: a backbone layer's ``tanh`` output is a byte, the state is a byte where the first
backbone layer reads it, and that layer reads the int16 observation as two bytes (low
unsigned, high signed). The heads read the last backbone layer's bytes.

Representation (offset binary, so that the AVR's unsigned ``MUL`` needs no sign fix-up): a
byte input ``a`` in ``[-128, 127]`` is stored as ``a + 128``; an int8 weight ``w`` in
``[-127, 127]`` as ``w + 128``. For row ``r`` with word inputs ``x_k`` and byte inputs
``a_i``::

    acc_r = c_r + sum_k (w_rk + 128) x_k + sum_i (w_ri + 128)(a_i + 128)
                - 128 (sum_k x_k + sum_i (a_i + 128))
          = c_r + sum_k w_rk x_k + sum_i w_ri a_i + 128 sum_i w_ri
    c_r   = b_r - 128 sum_i w_ri

``c_r`` is a per-row constant computed here; ``-128 (sum of the inputs)`` is computed once per
layer call and starts every row's sum. The AVR sums the byte products modulo 2^24, which is
exact because every row's weighted sum ``sum_k w_rk x_k + sum_i w_ri (a_i + 128)`` is kept
below 2^23 in magnitude (checked at export; else the observation part falls back to
``ln_dense_q7``). Everything is exact integer arithmetic: the host build and the AVR build
give the same bits.

Formats and errors (real value = byte value times the scale):

- backbone ``tanh`` output: ``t = round(127 tanh(v))`` from a 400-entry table indexed by
  ``|v|`` in Q7 (the accumulator rounded to 1/128, clamped at 399), scale ``gain / 127``
  (``lecun_tanh``: gain 1.7159); the worst table error ``EPS_TANH8`` is measured over every
  Q7 input, the input rounding (2^-8) is propagated by tanh's slope (1);
- state into the backbone: ``(h - (h >> 7) + 128) >> 8`` of the int16 state ``h`` (format
  ``Qf``; 127 h / 2^15 rounded, in 16-bit arithmetic: ``h - (h >> 7)`` is ``127 h / 128``
  plus at most 127/128), scale ``2^(15 - f) / 127``, error at most that scale times
  ``1/2 + 1/256``;
- the observation: exact (its int16 value, two bytes).

On the AVR a dense layer runs four rows together in one assembler loop: each input byte is
loaded once and multiplied by the four rows' weight bytes, which come from flash in order
(``LPM Z+``), each product added into the row's 24-bit sum in registers (``MUL``, ``ADD``,
``ADC``, ``ADC``: 8 cycles per multiply-accumulate, plus 2 per input byte and 1 per four for
the loop); then each row's int32 accumulator gets its constant and its sign-extended sum.
"""

from __future__ import annotations

import numpy as np

from liquidnode.controller.export.lowering import CfCPlan, ExportError
from liquidnode.controller.export.q15_arith import (
    Q15Unit,
    QDense,
    Segment,
    concat,
    rshift_expr,
    segment,
)

ROWS = 4  # rows of a byte dense layer computed together
MAX_IN = 252  # byte inputs (a multiple of 4) and rows of a byte dense layer
TANH8_LIMIT = 399  # |v| in Q7 from which the table's 127 is used
TANH8_LUT = np.round(127.0 * np.tanh(np.arange(TANH8_LIMIT + 1) / 128.0)).astype(np.int64)


def tanh_u8(v: np.ndarray) -> np.ndarray:
    """The generated ``ln_tanh_u8``: ``v`` int Q7 -> ``round(127 tanh(v / 128))`` as a byte
    (``+ 128``), int64 array."""
    v = np.asarray(v, np.int64)
    t = TANH8_LUT[np.minimum(np.abs(v), TANH8_LIMIT)]
    return np.where(v < 0, 128 - t, 128 + t)


def _tanh8_error() -> float:
    v = np.arange(-(1 << 15), 1 << 15)
    err = np.abs((tanh_u8(v) - 128) / 127.0 - np.tanh(v / 128.0))
    return float(np.max(err)) + 1e-7  # beyond |v| = 256 tanh is flat to 1e-111


EPS_TANH8 = _tanh8_error()


def offset_weights(
    wq: np.ndarray, bq: np.ndarray | None, n_words: int = 0, xmax: float = 32767.0
) -> np.ndarray:
    """The flash bytes of int8 weights ``wq`` ``(out, in)`` for ``ln_dense_u8``, its first
    ``n_words`` columns on word inputs (int16, ``|x| <= xmax``), the rest on byte inputs: per
    block of :data:`ROWS` rows the weight bytes ``w + 128`` input-major (a word input's
    twice: for its low and its high byte), then the rows' ``c_r`` (int32 little-endian:
    ``-128 sum_i w_ri`` over the byte columns, plus the int32 bias ``bq`` when given); then
    each remaining row's weight bytes (once) and ``c_r``.

    Raises:
        ExportError: a shape or weight out of range, or a row whose weighted sum could leave
            24 signed bits (the AVR's sums).
    """
    w = np.asarray(wq, np.int64)
    n_out, n = w.shape
    n_b = n - n_words
    if not (0 < n_b <= MAX_IN and n_b % 4 == 0 and 0 < n_out <= MAX_IN and n_words <= 64):
        raise ExportError(f"internal: byte dense layer of {w.shape} (byte inputs 4k)")
    if np.max(np.abs(w), initial=0) > 127:
        raise ExportError("internal: byte dense layer with weights beyond +-127")
    reach = np.abs(w[:, :n_words]).sum(axis=1) * xmax + np.abs(w[:, n_words:]).sum(axis=1) * 255
    if np.max(reach) >= 2**23:
        raise ExportError("byte dense layer: a row's sum could leave 24 bits")
    wu = w + 128
    c = -128 * w[:, n_words:].sum(axis=1)
    if bq is not None:
        c = c + np.asarray(bq, np.int64)
    if np.max(np.abs(c), initial=0) >= 2**31:
        raise ExportError("internal: byte dense layer constant beyond int32")
    cb = c.astype("<i4").view(np.uint8).reshape(n_out, 4)
    parts = []
    whole = n_out // ROWS * ROWS
    for r in range(0, whole, ROWS):
        block = wu[r : r + ROWS].T  # (in, 4)
        parts += [np.repeat(block[:n_words], 2, axis=0).reshape(-1), block[n_words:].reshape(-1)]
        parts.append(cb[r : r + ROWS].reshape(-1))
    for r in range(whole, n_out):
        parts += [wu[r], cb[r]]
    return np.concatenate(parts).astype(np.uint8)


def emit_dense_u8(
    u: Q15Unit,
    name: str,
    wq: np.ndarray,
    bq: np.ndarray | None,
    a: str,
    acc: str,
    add: bool,
    n_words: int = 0,
    xmax: float = 32767.0,
) -> None:
    """Emit ``acc (+)= bq + wq a`` over the input bytes ``a`` (``wq`` int8 ``(out, in)``, its
    first ``n_words`` columns on word inputs; no bias: ``bq`` None)."""
    wn = u.array(f"{name}_w", "uint8_t", offset_weights(wq, bq, n_words, xmax))
    u.use("ln_dense_u8")
    n_out, n_in = wq.shape
    u.emit(
        f"    ln_dense_u8({wn}, {a}, {n_words}u, {n_in - n_words}u, {n_out}u, {acc}, {int(add)}u);"
    )


def _mac(j: int) -> list[str]:
    """Row ``j`` of a block: its weight byte from flash times the input byte (r18), added
    into its 24-bit sum (r2 + 3j .. r4 + 3j)."""
    a = 2 + 3 * j
    return [
        "lpm r19, Z+",
        "mul r19, r18",
        f"add r{a}, r0",
        f"adc r{a + 1}, r1",
        f"adc r{a + 2}, %[z]",
    ]


def _mac_hi(j: int) -> list[str]:
    """Row ``j`` of a block: its weight byte times the signed high byte of a word input
    (r18), added one byte up into its 24-bit sum (what carries beyond 24 bits is dropped:
    the sums are exact modulo 2^24)."""
    a = 2 + 3 * j
    return ["lpm r19, Z+", "mulsu r18, r19", f"add r{a + 1}, r0", f"adc r{a + 2}, r1"]


def _start() -> list[str]:
    """A block's start: X to the input, every 24-bit sum := base."""
    init = [f"mov r{2 + 3 * j + k}, %{'ABC'[k]}[base]" for j in range(4) for k in range(3)]
    return ["movw r26, %[a]", *init]


def _epilogue(j: int, add: bool) -> list[str]:
    """Row ``j`` of a block: acc (at X, int32) := (acc if ``add``) + c (4 bytes from flash at
    Z) + its 24-bit sum sign-extended; X and Z to the next row."""
    a, b, c = (f"r{2 + 3 * j + k}" for k in range(3))
    plus_sum = [f"add r18, {a}", f"adc r19, {b}", f"adc r0, {c}", "adc r1, %[z]"]
    plus_sum += [f"sbrc {c}, 7", "dec r1"]  # the sum's sign into the top byte
    if not add:
        c_in = ["lpm r18, Z+", "lpm r19, Z+", "lpm r0, Z+", "lpm r1, Z+"]
        return c_in + plus_sum + ["st X+, r18", "st X+, r19", "st X+, r0", "st X+, r1"]
    old = ["ld r18, X+", "ld r19, X+", "ld r0, X+", "ld r1, X+"]
    plus_c = [f"lpm {a}, Z+", f"add r18, {a}", f"lpm {a}, Z+", f"adc r19, {a}"]
    plus_c += [f"lpm {a}, Z+", f"adc r0, {a}", f"lpm {a}, Z+", f"adc r1, {a}"]
    back = ["st -X, r1", "st -X, r0", "st -X, r19", "st -X, r18", "adiw r26, 4"]
    return old + plus_sum + plus_c + back


def _blocks_asm(add: bool) -> str:
    """The assembler loop over the blocks (see ``ln_dense_u8``): per block the word inputs
    (low byte unsigned, high byte signed), the byte inputs four a turn, then the 4 rows'
    epilogues; the acc pointer waits on the stack."""
    one_input = ["ld r18, X+", *(ln for j in range(4) for ln in _mac(j))]
    high = ["ld r18, X+", *(ln for j in range(4) for ln in _mac_hi(j))]
    words = ["cp r26, %[end_w]", "breq 3f", "4:", *one_input, *high, "cp r26, %[end_w]"]
    lines = ["clr %[z]", "0:", *_start(), *words, "brne 4b", "3:", "1:"]
    lines += one_input * 4
    lines += ["cp r26, %[end]", "breq 5f", "rjmp 1b", "5:", "pop r26", "pop r27"]
    lines += [ln for j in range(4) for ln in _epilogue(j, add)]
    lines += ["push r27", "push r26", "dec %[blocks]", "breq 2f", "rjmp 0b", "2:"]
    body = "".join(
        f'            "{ln}\\n"\n' if ln.endswith(":") else f'            "{ln}\\n\\t"\n'
        for ln in ["push r27", "push r26", *lines, "pop r26", "pop r27"]
    )
    return f"""        __asm__ volatile(
{body}            "clr r1"
            : [z] "=&r"(z), [blocks] "+r"(blocks), [w] "+z"(w), [acc] "+x"(acc)
            : [a] "r"(a), [end_w] "r"(end_w), [end] "r"(end), [base] "r"(base24)
            : "r0", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12", "r13",
              "r18", "r19", "memory");
"""


HELPERS = {
    "ln_tanh_u8": """\
/* round(127 tanh(k / 128)), k = 0..@LIM@. */
static const int8_t ln_tanh8_lut[@N@] LN_FLASH = {
@LUT@
};

/* 127 tanh(v / 128) of v (Q7) rounded, as a byte + 128 (1..255). */
static uint8_t ln_tanh_u8(int32_t v) {
    uint8_t t = 127u;
    if ((uint32_t)(v + @LIM@L) < 2u * @LIM@u + 1u) {
        const int16_t w = (int16_t)v;
        t = (uint8_t)LN_RD_I8(&ln_tanh8_lut[(uint16_t)(w < 0 ? -w : w)]);
    }
    return (uint8_t)(v < 0 ? 128u - t : 128u + t);
}
""".replace("@N@", str(TANH8_LIMIT + 1))
    .replace("@LIM@", str(TANH8_LIMIT))
    .replace(
        "@LUT@",
        ",\n".join(
            "    " + ", ".join(str(v) for v in TANH8_LUT[i : i + 16])
            for i in range(0, TANH8_LIMIT + 1, 16)
        ),
    ),
    "ln_dense_u8": """\
#define LN_RD_U8(p) ((uint8_t)LN_RD_I8(p))

/* The int32 c of a row: 4 bytes, little-endian, from flash. */
static int32_t ln_rd_c(const uint8_t *p) {
    return (int32_t)((uint32_t)LN_RD_U8(p) | ((uint32_t)LN_RD_U8(p + 1) << 8) |
                     ((uint32_t)LN_RD_U8(p + 2) << 16) | ((uint32_t)LN_RD_U8(p + 3) << 24));
}

/* The word input k of a: int16 from 2 bytes, little-endian. */
static int16_t ln_rd_word(const uint8_t *a, uint8_t k) {
    return (int16_t)((uint16_t)a[2u * k] | ((uint16_t)a[2u * k + 1u] << 8));
}

/* acc[r] (+)= c[r] + sum_k (w[r][k] - 128) x[k] + sum_i (w[r][n_w + i] - 128) a[2 n_w + i]
   over n_w word inputs x (int16, little-endian, the first 2 n_w bytes of a) and n_b byte
   inputs (int8 + 128; n_b a multiple of 4, 4..252), 0 < n_out <= 252 rows (add: 1 adds to
   acc, 0 sets it). w in flash: each whole block of 4 rows as the weight bytes (int8 + 128)
   input-major (the 4 rows' weights of word input 0 twice, of word input 1 twice, ..., then
   of byte input 0, ...) followed by the 4 rows' c (int32, 4 bytes each, little-endian); then
   each remaining row as its n_w + n_b weight bytes and its c. Exact integer arithmetic. On
   the AVR the blocks run in one assembler loop: each input byte loaded once for the block's
   4 rows, the rows' 24-bit sums in r2..r13, started at -128 (sum of the inputs) so that each
   ends as the row's weighted sum, which the generator keeps within 24 signed bits; then
   acc := (acc) + c + sum with the sum sign-extended. */
#if defined(__AVR__)
__attribute__((noinline)) /* its loop holds 28 registers: not inside a caller's */
#endif
static void ln_dense_u8(const uint8_t *w, const uint8_t *a, uint8_t n_w, uint8_t n_b,
                        uint8_t n_out, int32_t *acc, uint8_t add) {
    uint8_t i, r, blocks = (uint8_t)(n_out >> 2);
    const uint8_t *b = a + 2u * n_w;
#if defined(__AVR__) && defined(__AVR_HAVE_MUL__)
    if (blocks) {
        int32_t sum = 0;
        uint16_t sb = 0; /* at most 252 x 255 */
        __int24 base24;
        const uint8_t end_w = (uint8_t)((uint16_t)b & 0xffu);
        const uint8_t end = (uint8_t)((uint16_t)(b + n_b) & 0xffu);
        uint8_t z;
        for (i = 0; i < n_w; ++i) sum += ln_rd_word(a, i);
        for (i = 0; i < n_b; ++i) sb += b[i];
        base24 = (__int24)(-((sum + sb) << 7));
        if (add) {
@ASM_ADD@        } else {
@ASM_SET@        }
    }
#else
    for (; blocks; --blocks) {
        int32_t d[4] = {0, 0, 0, 0};
        uint8_t j;
        for (i = 0; i < n_w; ++i, w += 4)
            for (j = 0; j < 4u; ++j) d[j] += ((int32_t)LN_RD_U8(w++) - 128) * ln_rd_word(a, i);
        for (i = 0; i < n_b; ++i)
            for (j = 0; j < 4u; ++j) d[j] += ((int32_t)LN_RD_U8(w++) - 128) * b[i];
        for (j = 0; j < 4u; ++j, ++acc, w += 4) *acc = (add ? *acc : 0) + ln_rd_c(w) + d[j];
    }
#endif
    for (r = (uint8_t)(n_out & 3u); r; --r, ++acc, w += 4) {
        int32_t d = 0;
        for (i = 0; i < n_w; ++i) d += ((int32_t)LN_RD_U8(w++) - 128) * ln_rd_word(a, i);
        for (i = 0; i < n_b; ++i) d += ((int32_t)LN_RD_U8(w++) - 128) * b[i];
        *acc = (add ? *acc : 0) + ln_rd_c(w) + d;
    }
}
""".replace("@ASM_ADD@", _blocks_asm(True)).replace("@ASM_SET@", _blocks_asm(False)),
}
ORDER = ("ln_tanh_u8", "ln_dense_u8")


def byte_backbone(c: CfCPlan, q7: bool) -> bool:
    """Whether the q7 export runs ``c``'s backbone on bytes: a ``tanh``/``lecun_tanh`` backbone
    whose state and layer widths fit a byte layer (:data:`MAX_IN` inputs)."""
    return (
        q7
        and bool(c.backbone)
        and c.activation in ("lecun_tanh", "tanh")
        and c.units <= MAX_IN
        and c.units % 4 == 0
        and all(d.n_out <= MAX_IN and d.n_out % 4 == 0 for d in c.backbone)
    )


def emit_backbone(
    u: Q15Unit, c: CfCPlan, name: str, x: str, xin: Segment, h: str, f_h: int
) -> tuple[str, Segment]:
    """Emit the byte backbone of ``c`` on the int16 input ``x`` (``xin``) and the int16 state
    ``h`` (format Q``f_h``): the first layer on ``x`` as word inputs and the state as bytes
    in one byte layer (where its sums fit 24 bits; else ``x`` by ``ln_dense_q7`` first), each
    layer's tanh to bytes. Returns the C name of the last layer's output bytes and its
    segment."""
    n, H = c.n_in, c.units
    big = 2.0 ** (15 - f_h)
    seg = concat(xin, segment(H, big / 127.0, big, big / 254.0 + big / 32768.0))
    lecun = c.activation == "lecun_tanh"
    gain = 1.7159 if lecun else 1.0
    q = u.quantise(c.backbone[0].weight, c.backbone[0].bias, seg, 0.666 if lecun else 1.0)
    xmax = float(np.max(np.minimum(np.ceil(xin.bound / xin.scale), 32767)))
    try:
        first = offset_weights(q.wq, q.bq, n, xmax)
    except ExportError:
        first = None
    words = 0 if first is None else n
    if words:
        u.emit(f"    for (i = 0; i < {n}u; ++i) {{")
        u.emit(f"        const uint16_t v = (uint16_t){x}[i];")
        u.emit("        s->z8[2u * i] = (uint8_t)v;")
        u.emit("        s->z8[2u * i + 1u] = (uint8_t)(v >> 8);")
        u.emit("    }")
    u.emit(f"    for (i = 0; i < {H}u; ++i) {{")
    u.emit(f"        const int16_t v = {h}[i];")
    u.emit(
        f"        s->z8[{2 * words}u + i] = "
        "(uint8_t)(128 + (((int16_t)(v - (v >> 7)) + 128) >> 8));"
    )
    u.emit("    }")
    a = "s->z8"
    for k, layer in enumerate(c.backbone):
        if k:
            q = u.quantise(layer.weight, layer.bias, seg, 0.666 if lecun else 1.0)
        dst = "s->a8" if k % 2 == 0 else "s->b8"
        if k == 0 and words:
            emit_dense_u8(u, f"{name}bb0", q.wq, q.bq, a, "s->acc", False, n, xmax)
        elif k == 0:
            head = QDense(q.wq[:, :n], q.bq, q.s, q.bound, q.err)
            u.dense(f"{name}bb0x", head, x, n, "s->acc")
            emit_dense_u8(u, f"{name}bb0h", q.wq[:, n:], None, a, "s->acc", True)
        else:
            emit_dense_u8(u, f"{name}bb{k}", q.wq, q.bq, a, "s->acc", False)
        u.use("ln_tanh_u8")
        u.emit(
            f"    for (i = 0; i < {layer.n_out}u; ++i) "
            f"{dst}[i] = ln_tanh_u8({rshift_expr('s->acc[i]', q.s - 7)});"
        )
        seg = segment(layer.n_out, gain / 127.0, gain, gain * (q.err + 2.0**-8 + EPS_TANH8))
        a = dst
    return a, seg
