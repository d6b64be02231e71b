"""Fixed-point step of the LTC cell for :mod:`.fixed_point` (``q15``: int16 synapse weights,
``q7``: int8).

The float step (:class:`~.lowering.LTCPlan`) divides by ``cm_t = cm / (ts / unfolds)``; here
numerator and denominator are multiplied by ``ts / unfolds`` first (the same value, no division
by a small ``ts``)::

    v' = (cm v + ts N) / (cm + ts D)
    N  = (gl_vl + sum_i s_i we_i + sum_i s_i we_i) / unfolds     (sensory, then recurrent)
    D  = (gleak + eps + sum_i s_i w_i + sum_i s_i w_i) / unfolds

Number formats (``Qf``: ``real = q / 2^f``):

- membrane potential ``v`` (the state): int16 Q``f_v`` with ``f_v = 14 - ceil(log2 V)``. ``v'``
  is a weighted mean (all weights ``cm``, ``gleak``, ``w s`` are >= 0) of ``v``, ``vleak`` and
  the reversal potentials ``erev``, so from the reset state ``|v| <= V = max(|vleak|, |erev|)``;
- synapse argument ``sigma (v_i - mu) = a v_i + b``: ``a`` int16 (a per-layer format), ``b``
  int32 Q12, the sum rounded to Q12 and clamped to ±16; ``s = sigmoid`` from the shared table,
  Q15;
- ``N``, ``D``: int32 in one format ``2^-A`` with the weights ``we / unfolds``, ``w /
  unfolds`` quantised to ``±wmax`` in ``2^-(A - 15)`` and every sum below ``2^30``;
- ``cm``: int32; numerator and denominator int64 (``|num| < 2^61``), the quotient rounded to
  Q``f_v``. The AVR has no divide instruction: the 64-bit division is a library call.

Per-step error bound (the LTC has no ``Dense`` layers, so it is derived here): each synapse's
``|Δs| <= |Δarg| / 4 + EPS_SIGMOID`` with ``|Δarg| <= |σ| |Δv| + |Δa| V + |Δb| + 2^-13``,
``|ΔN| <= Σ (|Δw| + |w_q| |Δs|) + |Δc|``, and per unfold ``|Δv'| <= (|Δnum| + V |Δden|) /
cm + 2^-(f_v+1)`` with ``|Δnum| <= |Δcm| V + cm |Δv| + TS_MAX |ΔN| + 2^-13 max|N|`` (``ts`` is
Q12) and ``|Δden|`` alike, for ``ts <= TS_MAX``, and never above ``V + 2^(15 - f_v)`` (the two
values' ranges). Each unfold can multiply the incoming error by the synapses' worst-case gain
(``1 + TS_MAX sum |w| (|erev| + V) sigma / (4 unfolds cm)``): for one unfold the bound is a
useful tolerance (tested), for the shipped 6 it is valid but reaches that cap, while the
measured error stays small (shipped pendulum LTC: 0.0037 of ±3 over 1,000 free-running
steps). It requires ``w``, ``sensory w``, ``gleak`` >= 0 and ``cm`` > 0 (softplus-constrained
cells always have them).
"""

from __future__ import annotations

import math

import numpy as np

from liquidnode.controller.export.lowering import Dense, ExportError, LTCPlan
from liquidnode.controller.export.q15_arith import (
    ACC_LIMIT,
    EPS_SIGMOID,
    TS_MAX,
    Emitted,
    Q15Unit,
    Segment,
    segment,
)


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


def _acc_format(mats: list[np.ndarray], const: list[np.ndarray], wmax: int, cm_max: float) -> int:
    """The largest ``A`` with every weight within ``±wmax`` in ``2^-(A-15)``, every sum of the
    rows below ``2^30`` and ``cm 2^(A + 27) < 2^61`` (the int64 numerator)."""
    big = max(float(np.max(np.abs(m))) for m in mats)
    A = min(50, math.floor(15 + math.log2(wmax / max(big, 1e-30))))
    A = min(A, math.floor(34 - math.log2(cm_max)))
    while A > 0:
        ok = all(np.max(np.abs(np.round(m * 2.0 ** (A - 15)))) <= wmax for m in mats)
        sums = sum(np.sum(np.abs(np.round(m * 2.0 ** (A - 15))), axis=0) for m in mats)
        cs = [np.abs(np.round(k * 2.0**A)) for k in const]
        if ok and all(np.max(sums * 32768 + k) < ACC_LIMIT for k in cs):
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
        self.sh = f_a + f_in - 12
        if self.sh < 0:
            raise ExportError(f"LTC synapse gains too large for fixed point ({name})")
        self.a_q = np.round(a * 2.0**f_a)
        self.b_q = np.round(b * 4096.0)
        if np.max(np.abs(self.b_q)) >= 2**30:
            raise ExportError(f"LTC synapse offsets too large for fixed point ({name})")
        self.e_a = np.abs(a - self.a_q / 2.0**f_a)
        self.e_b = np.abs(b - self.b_q / 4096.0)
        self.a = np.abs(a)
        self.bound_arg = self.a + np.abs(b)  # per unit input
        wtype = "int8_t" if u.wmax <= 127 else "int16_t"
        self.wq = [np.round(m * 2.0 ** (A - 15)) for m in (we, w)]
        self.e_w = [np.abs(m - q / 2.0 ** (A - 15)) for m, q in zip((we, w), self.wq, strict=True)]
        self.w_abs = [np.abs(q) / 2.0 ** (A - 15) for q in self.wq]
        self.names = (
            u.array(f"{name}_a", "int16_t", self.a_q),
            u.array(f"{name}_b", "int32_t", self.b_q),
            u.array(f"{name}_we", wtype, self.wq[0]),
            u.array(f"{name}_w", wtype, self.wq[1]),
        )

    def call(self, fn: str, inp: str, n_in: int, n: int, num: str, den: str) -> str:
        a, b, we, w = self.names
        return f"{fn}({a}, {b}, {we}, {w}, {inp}, {n_in}u, {n}u, {self.sh}u, {num}, {den});"

    def errors(self, x_bound: np.ndarray, x_err: np.ndarray) -> list[np.ndarray]:
        """Error bounds of this layer's contributions to N and D, per destination."""
        x_bound, x_err = x_bound[:, None], x_err[:, None]
        e_arg = self.a * x_err + self.e_a * x_bound + self.e_b + 2.0**-13
        e_arg += 1e-6 * (self.a * x_bound + self.bound_arg)  # float32 reference rounding
        e_s = e_arg / 4 + EPS_SIGMOID
        return [np.sum(e + wa * e_s, axis=0) for e, wa in zip(self.e_w, self.w_abs, strict=True)]


def emit(u: Q15Unit, c: LTCPlan, xin: Segment, f_x: int) -> Emitted:
    """Emit the fixed-point LTC step (input ``s->x`` in Q``f_x``, state ``s->h`` Q``f_v``)."""
    _check(c)
    S, N, U = c.n_in, c.units, c.unfolds
    V = _potential_bound(c)
    f_v = 14 - _bits(V)
    f64 = np.float64
    in_w, in_b = c.in_w.astype(f64)[:, None], c.in_b.astype(f64)[:, None]
    s_sigma, sigma = c.s_sigma.astype(f64), c.sigma.astype(f64)
    mats_n = [c.s_we.astype(f64) / U, c.we.astype(f64) / U]
    mats_d = [c.s_w.astype(f64) / U, c.w.astype(f64) / U]
    c_n = c.gl_vl.astype(f64) / U
    c_d = (c.gleak.astype(f64) + c.epsilon) / U
    cm = c.cm.astype(f64)
    A = _acc_format(mats_n + mats_d, [c_n, c_d], u.wmax, float(cm.max()))
    sens = _Layer(
        u, "sens", s_sigma * in_w, s_sigma * (in_b - c.s_mu), mats_n[0], mats_d[0], f_x, A
    )
    rec = _Layer(u, "syn", sigma, -sigma * c.mu, mats_n[1], mats_d[1], f_v, A)
    cn_q, cd_q = np.round(c_n * 2.0**A), np.round(c_d * 2.0**A)
    f_c = min(30 - _bits(float(cm.max())), A + 12)
    cm_q = np.round(cm * 2.0**f_c)
    cn_c = u.array("n_const", "int32_t", cn_q)
    cd_c = u.array("d_const", "int32_t", cd_q)
    cm_c = u.array("cm", "int32_t", cm_q)
    fn = "ln_synapses_q7" if u.wmax <= 127 else "ln_synapses_q"
    u.use(fn)
    u.emit(f"    for (i = 0; i < {N}u; ++i) {{")
    u.emit(f"        s->ns[i] = LN_RD_I32(&{cn_c}[i]);")
    u.emit(f"        s->ds[i] = LN_RD_I32(&{cd_c}[i]);")
    u.emit("    }")
    u.emit("    " + sens.call(fn, "s->x", S, N, "s->ns", "s->ds"))
    u.emit("    {")
    u.emit("        unsigned int k;")
    u.emit(f"        for (k = 0; k < {U}u; ++k) {{")
    u.emit(
        f"            for (i = 0; i < {N}u; ++i) {{ s->num[i] = s->ns[i]; s->den[i] = s->ds[i]; }}"
    )
    u.emit("            " + rec.call(fn, "s->h", N, N, "s->num", "s->den"))
    u.emit(f"            for (i = 0; i < {N}u; ++i) {{")
    u.emit(
        f"                const int64_t cm = (int64_t)LN_RD_I32(&{cm_c}[i]) * "
        f"((int64_t)1 << {A + 12 - f_c});"
    )
    u.emit(
        f"                const int64_t num = (int64_t)ts * s->num[i] * ((int64_t)1 << {f_v}) "
        "+ cm * s->h[i];"
    )
    u.emit("                const int64_t den = (int64_t)ts * s->den[i] + cm;")
    u.emit("                const int64_t q = (num + (num < 0 ? -(den / 2) : den / 2)) / den;")
    u.emit("                s->h[i] = (int16_t)(q > 32767 ? 32767 : (q < -32767 ? -32767 : q));")
    u.emit("            }")
    u.emit("        }")
    u.emit("    }")

    # error bound, one unfold at a time from the same state (Δv = 0)
    xb = np.minimum(xin.bound, 32767 * xin.scale)
    e_sn, e_sd = sens.errors(xb, xin.err)
    e_sn += np.abs(c_n - cn_q / 2.0**A) + 1e-6 * np.abs(c_n)
    e_sd += np.abs(c_d - cd_q / 2.0**A) + 1e-6 * np.abs(c_d)
    n_max = np.abs(c_n) + sum(np.sum(np.abs(m), axis=0) for m in mats_n)
    d_max = np.abs(c_d) + sum(np.sum(np.abs(m), axis=0) for m in mats_d)
    e_cm = np.abs(cm - cm_q / 2.0**f_c)
    cm_min = np.minimum(cm, cm_q / 2.0**f_c)
    e_v = np.zeros(N)
    vb = np.full(N, V)
    for _ in range(U):
        e_rn, e_rd = rec.errors(vb, e_v)
        e_n, e_d = e_sn + e_rn, e_sd + e_rd
        e_num = e_cm * V + cm * e_v + TS_MAX * e_n + 2.0**-13 * n_max
        e_den = e_cm + TS_MAX * e_d + 2.0**-13 * d_max
        e_v = (e_num + V * e_den) / cm_min + 2.0 ** -(f_v + 1) + 2e-6 * V
        e_v = np.minimum(e_v, V + 2.0 ** (15 - f_v))  # both within their ranges
    # the readout y = v[:M] out_w + out_b as a (sparse) linear layer on the state
    M = c.out_dim
    w_out = np.zeros((M, N), np.float32)
    w_out[np.arange(M), np.arange(M)] = c.out_w
    proj = Dense(w_out, c.out_b.astype(np.float32))
    fields = [("int32_t", k, N) for k in ("ns", "ds", "num", "den")]
    y_seg = segment(N, 2.0**-f_v, V, e_v)
    return Emitted("s->h", y_seg, proj, [(N, f_v)], e_v, fields)
