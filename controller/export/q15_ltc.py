"""Fixed-point step of the LTC cell for :mod:`.fixed_point` (``q15``: int16 synapse weights,
``q7``: int8).

The float step (:class:`~.lowering.LTCPlan`) divides by ``cm_t = cm / (ts / unfolds)``; here
numerator and denominator are multiplied by ``ts / (unfolds cm)`` first (the same value: no
division by a small ``ts``, and ``cm`` folded into the weights at export)::

    v' = (v + ts N) / (1 + ts D)
    N  = (gl_vl + sum_i s_i we_i + sum_i s_i we_i) / (unfolds cm)     (sensory, then recurrent)
    D  = (gleak + eps + sum_i s_i w_i + sum_i s_i w_i) / (unfolds cm)

Number formats (``Qf``: ``real = q / 2^f``):

- membrane potential ``v`` (the state): int16 Q``f_v`` with ``f_v = 14 - ceil(log2 V)``. ``v'``
  is a weighted mean (all weights ``cm``, ``gleak``, ``w s`` are >= 0) of ``v``, ``vleak`` and
  the reversal potentials ``erev``, so from the reset state ``|v| <= V = max(|vleak|, |erev|)``;
- synapse argument ``sigma (v_i - mu) = a v_i + b``: ``a`` int16 (a per-layer format), ``b`` in
  Q11 added before the shift to Q11, the magnitude rounded half up and saturated at 32767 (±16);
  ``s = sigmoid`` from the shared table, Q15 (:mod:`.q15_synapses`: one flash record per
  synapse, an assembler loop per destination on the AVR);
- ``N``, ``D``: int32 in one format ``2^-A`` with the weights ``we / (unfolds cm)``, ``w /
  (unfolds cm)`` quantised to ``±wmax`` in ``2^-(A - 15)`` and every sum below ``2^30``;
- ``ts N``, ``ts D``: int32, floored to ``2^-F`` (``F = A - 4``: one = ``2^F``; two 16 x 16-bit
  products each, ``ln_ts_mul``); numerator ``v 2^(F - f_v) + ts N`` below ``2^31``, denominator
  ``2^F + ts D`` below ``2^30``; the quotient by restoring division, 15 bits, rounded half up
  (in magnitude) to Q``f_v``. No 64-bit arithmetic and no library division.

Per-step error bound (the LTC has no ``Dense`` layers, so it is derived here): each synapse's
``|Δs| <= |Δarg| / 4 + EPS_SIGMOID11`` with ``|Δarg| <= |σ| |Δv| + |Δa| V + |Δb| + 2^-12``,
``|ΔN| <= Σ (|Δw| + |w_q| |Δs|) + |Δc|``, and per unfold ``|Δv'| <= |Δnum| + V |Δden| +
2^-(f_v+1)`` (the denominator is at least 1) with ``|Δnum| <= |Δv| + TS_MAX |ΔN| + 2^-13 max|N|
+ 2^-F`` (``ts`` is Q12) and ``|Δden|`` alike, for ``ts <= TS_MAX``, and never above ``V +
2^(15 - f_v)`` (the two values' ranges). Each unfold can multiply the incoming error by the
synapses' worst-case gain (``1 + TS_MAX sum |w| (|erev| + V) sigma / (4 unfolds cm)``): for one
unfold the bound is a useful tolerance (tested), for the shipped 6 it is valid but reaches that
cap, while the measured error stays small (shipped pendulum LTC: 0.0018 of ±3 over 1,000
free-running steps). It requires ``w``, ``sensory w``, ``gleak`` >= 0 and ``cm`` > 0
(softplus-constrained cells always have them).
"""

from __future__ import annotations

import math

import numpy as np

from liquidnode.controller.export.lowering import Dense, ExportError, LTCPlan
from liquidnode.controller.export.q15_arith import (
    ACC_LIMIT,
    TS_MAX,
    Emitted,
    Q15Unit,
    Segment,
    segment,
)
from liquidnode.controller.export.q15_synapses import EPS_SIGMOID11, records, rows_helper


def _bits(bound: float) -> int:
    return max(0, math.ceil(math.log2(max(bound, 1e-9))))


def _check(c: LTCPlan) -> None:
    for label, arr in (("w", c.w), ("sensory_w", c.s_w), ("gleak", c.gleak)):
        if np.any(arr < 0):
            raise ExportError(
                f"fixed-point LTC export needs {label} >= 0 (softplus-constrained parameters), "
                f"got min {float(arr.min()):.3g}"
            )
    if np.any(c.cm <= 0):
        raise ExportError(f"fixed-point LTC export needs cm > 0, got min {float(c.cm.min()):.3g}")


def _potential_bound(c: LTCPlan) -> float:
    """``V``: the largest |vleak| or |erev| of a synapse with a positive weight."""
    parts = [np.abs(c.gl_vl / np.maximum(c.gleak, 1e-30))[c.gleak > 0]]
    for we, w in ((c.we, c.w), (c.s_we, c.s_w)):
        parts.append(np.abs(we[w > 0] / w[w > 0]))
    return max([float(np.max(p, initial=0.0)) for p in parts] + [1e-3])


def _acc_format(
    mats_n: list[np.ndarray], mats_d: list[np.ndarray], const: list[np.ndarray], wmax: int, f_v: int
) -> int:
    """The largest ``A`` with every weight within ``±wmax`` in ``2^-(A-15)``, each
    accumulator's sums (``N``: its constant and the ``we`` of every synapse into the unit,
    ``D``: the ``w``) below ``2^30``, and ``A <= f_v + 19`` (the numerator ``v 2^(A - 4 - f_v)``
    below ``2^30``)."""
    mats = mats_n + mats_d
    big = max(float(np.max(np.abs(m))) for m in mats)
    A = min(50, math.floor(15 + math.log2(wmax / max(big, 1e-30))))
    A = min(A, f_v + 19)
    while A > 0:
        q = [np.abs(np.round(m * 2.0 ** (A - 15))) for m in mats]
        ok = all(np.max(m) <= wmax for m in q)
        for group, k in zip((q[: len(mats_n)], q[len(mats_n) :]), const, strict=True):
            sums = sum(np.sum(m, axis=0) for m in group)
            ok = ok and bool(np.max(sums * 32768 + np.abs(np.round(k * 2.0**A))) < ACC_LIMIT)
        if ok:
            return A
        A -= 1
    raise ExportError("LTC synapse weights too large for fixed point")


class _Layer:
    """One synapse layer quantised: argument ``a x + b`` and the weights into N and D."""

    def __init__(
        self,
        u: Q15Unit,
        name: str,
        a: np.ndarray,
        b: np.ndarray,
        we: np.ndarray,
        w: np.ndarray,
        f_in: int,
        A: int,
    ) -> None:
        f_a = 15 - _bits(float(np.max(np.abs(a))) * (1 + 2**-14))
        self.sh = f_a + f_in - 11
        if self.sh < 0:
            raise ExportError(f"LTC synapse gains too large for fixed point ({name})")
        self.a_q = np.round(a * 2.0**f_a)
        self.b_q = np.round(b * 2048.0)
        # the offset enters before the shift: B = b 2^sh
        big = self.b_q * 2.0**self.sh
        if np.max(np.abs(big)) >= 2**30:
            raise ExportError(f"LTC synapse offsets too large for fixed point ({name})")
        self.e_a = np.abs(a - self.a_q / 2.0**f_a)
        self.e_b = np.abs(b - self.b_q / 2048.0)
        self.a = np.abs(a)
        self.bound_arg = self.a + np.abs(b)  # per unit input
        self.wq = [np.round(m * 2.0 ** (A - 15)) for m in (we, w)]
        self.e_w = [np.abs(m - q / 2.0 ** (A - 15)) for m, q in zip((we, w), self.wq, strict=True)]
        self.w_abs = [np.abs(q) / 2.0 ** (A - 15) for q in self.wq]
        if a.shape[0] > 255:
            raise ExportError(f"fixed-point LTC export takes up to 255 sources ({name})")
        q7 = u.wmax <= 127
        self.rec = u.array(
            f"{name}_rec", "int16_t", records(self.a_q, big, self.wq[0], self.wq[1], q7)
        )
        self.fn = rows_helper(self.sh, q7)[0]
        u.use("ln_tanh_lut", "ln_sigmoid_q11", "ln_ts_mul", self.fn)

    def call(self, inp: str, n_in: int, n: int, sums: str) -> str:
        """The call: ``sums`` the C arguments ``n0, d0, num, den`` (``num = n0 + ...``)."""
        return f"{self.fn}({self.rec}, {inp}, {n_in}u, {n}u, {sums});"

    def errors(self, x_bound: np.ndarray, x_err: np.ndarray) -> list[np.ndarray]:
        """Error bounds of this layer's contributions to N and D, per destination."""
        x_bound, x_err = x_bound[:, None], x_err[:, None]
        e_arg = self.a * x_err + self.e_a * x_bound + self.e_b + 2.0**-12
        e_arg += 1e-6 * (self.a * x_bound + self.bound_arg)  # float32 reference rounding
        e_s = e_arg / 4 + EPS_SIGMOID11
        return [np.sum(e + wa * e_s, axis=0) for e, wa in zip(self.e_w, self.w_abs, strict=True)]


def _update(n: int, F: int, f_v: int, p: int) -> list[str]:
    """C lines of the update ``v' = (v + ts N) / (1 + ts D)`` of each unit (``N``, ``D`` in
    ``2^-A``, ``ts`` Q12, ``F = A - 4``): ``ts N`` and ``ts D`` floored to ``2^-F``
    (``ln_ts_mul``; ``|N|, D < 2^30``: below ``2^29``); the quotient's magnitude by restoring
    division, 15 bits (``p`` integer bits fed from the numerator, then ``f_v`` fractional),
    rounded half up, saturating at 32767."""
    sh = F - f_v  # 0..15; v 2^sh with whole bytes moved (v 2^16 >> 8), not shifted bit by bit
    v = f"(int32_t)s->h[i] * {1 << sh}L"
    if sh >= 8:
        v = f"ln_asr8((int32_t)s->h[i] * 65536L) * {1 << (sh - 8)}L"
    lines = [
        f"            for (i = 0; i < {n}u; ++i) {{",
        f"                const int32_t den = {1 << F}L + ln_ts_mul(ts, s->den[i]);",
        f"                const int32_t num = {v} + ln_ts_mul(ts, s->num[i]);",
        "                const uint32_t r = num < 0 ? -(uint32_t)num : (uint32_t)num;",
        "                const uint32_t d = (uint32_t)den;",
        f"                uint32_t rem = r >> {p};",
        "                uint16_t q = 32767u;",
        "                if (rem < d) {",
        f"                    uint16_t low = (uint16_t)((uint16_t)r << {16 - p});",
        "                    unsigned char b;",
        "                    q = 0u;",
        f"                    for (b = 0; b < {p}u; ++b) {{",
        "                        rem = (rem << 1) | (low >> 15);",
        "                        low = (uint16_t)(low << 1);",
        "                        q = (uint16_t)(q << 1);",
        "                        if (rem >= d) { rem -= d; q |= 1u; }",
        "                    }",
    ]
    if f_v:
        lines += [
            f"                    for (b = 0; b < {f_v}u; ++b) {{",
            "                        rem <<= 1;",
            "                        q = (uint16_t)(q << 1);",
            "                        if (rem >= d) { rem -= d; q |= 1u; }",
            "                    }",
        ]
    lines += [
        "                    if (rem >= d - rem && q < 32767u) ++q;",
        "                }",
        "                s->h[i] = num < 0 ? (int16_t)-(int16_t)q : (int16_t)q;",
        "            }",
    ]
    return lines


def emit(u: Q15Unit, c: LTCPlan, xin: Segment, f_x: int) -> Emitted:
    """Emit the fixed-point LTC step (input ``s->x`` in Q``f_x``, state ``s->h`` Q``f_v``)."""
    _check(c)
    S, N, U = c.n_in, c.units, c.unfolds
    V = _potential_bound(c)
    f_v = 14 - _bits(V)
    f64 = np.float64
    in_w, in_b = c.in_w.astype(f64)[:, None], c.in_b.astype(f64)[:, None]
    s_sigma, sigma = c.s_sigma.astype(f64), c.sigma.astype(f64)
    if f_v < 0:
        raise ExportError(f"LTC potentials too large for fixed point (|v| up to {V:.3g})")
    cm = c.cm.astype(f64)
    k = 1.0 / (U * cm)  # N and D divided by cm (per destination): the update's den is 1 + ts D
    mats_n = [c.s_we.astype(f64) * k, c.we.astype(f64) * k]
    mats_d = [c.s_w.astype(f64) * k, c.w.astype(f64) * k]
    c_n = c.gl_vl.astype(f64) * k
    c_d = (c.gleak.astype(f64) + c.epsilon) * k
    A = _acc_format(mats_n, mats_d, [c_n, c_d], u.wmax, f_v)
    F = A - 4  # ts N and ts D (ts Q12) shifted right by 16: one = 2^F
    if f_v > F:
        raise ExportError("LTC synapse weights too large for fixed point (accumulator format)")
    sens = _Layer(
        u, "sens", s_sigma * in_w, s_sigma * (in_b - c.s_mu), mats_n[0], mats_d[0], f_x, A
    )
    rec = _Layer(u, "syn", sigma, -sigma * c.mu, mats_n[1], mats_d[1], f_v, A)
    cn_q, cd_q = np.round(c_n * 2.0**A), np.round(c_d * 2.0**A)
    cn_c = u.array("n_const", "int32_t", cn_q)
    cd_c = u.array("d_const", "int32_t", cd_q)
    p = 15 - f_v  # integer bits of the quotient
    u.emit(f"    for (i = 0; i < {N}u; ++i) {{")
    u.emit(f"        s->ns[i] = LN_RD_I32(&{cn_c}[i]);")
    u.emit(f"        s->ds[i] = LN_RD_I32(&{cd_c}[i]);")
    u.emit("    }")
    u.emit("    " + sens.call("s->x", S, N, "s->ns, s->ds, s->ns, s->ds"))
    u.emit("    {")
    u.emit("        unsigned int k;")
    u.emit(f"        for (k = 0; k < {U}u; ++k) {{")
    u.emit("            " + rec.call("s->h", N, N, "s->ns, s->ds, s->num, s->den"))
    for line in _update(N, F, f_v, p):
        u.emit(line)
    u.emit("        }")
    u.emit("    }")

    # error bound, one unfold at a time from the same state (Δv = 0)
    xb = np.minimum(xin.bound, 32767 * xin.scale)
    e_sn, e_sd = sens.errors(xb, xin.err)
    e_sn += np.abs(c_n - cn_q / 2.0**A) + 1e-6 * np.abs(c_n)
    e_sd += np.abs(c_d - cd_q / 2.0**A) + 1e-6 * np.abs(c_d)
    n_max = np.abs(c_n) + sum(np.sum(np.abs(m), axis=0) for m in mats_n)
    d_max = np.abs(c_d) + sum(np.sum(np.abs(m), axis=0) for m in mats_d)
    e_v = np.zeros(N)
    vb = np.full(N, V)
    for _ in range(U):
        e_rn, e_rd = rec.errors(vb, e_v)
        e_n, e_d = e_sn + e_rn, e_sd + e_rd
        e_num = e_v + TS_MAX * e_n + 2.0**-13 * n_max + 2.0**-F
        e_den = TS_MAX * e_d + 2.0**-13 * d_max + 2.0**-F
        e_v = e_num + V * e_den + 2.0 ** -(f_v + 1) + 2e-6 * V  # den >= 1
        e_v = np.minimum(e_v, V + 2.0 ** (15 - f_v))  # both within their ranges
    # the readout y = v[:M] out_w + out_b as a (sparse) linear layer on the state
    M = c.out_dim
    w_out = np.zeros((M, N), np.float32)
    w_out[np.arange(M), np.arange(M)] = c.out_w
    proj = Dense(w_out, c.out_b.astype(np.float32))
    fields = [("int32_t", k, N) for k in ("ns", "ds", "num", "den")]
    y_seg = segment(N, 2.0**-f_v, V, e_v)
    return Emitted("s->h", y_seg, proj, [(N, f_v)], e_v, fields)
