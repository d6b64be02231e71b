"""Float32 C export: ``<prefix>.h`` + ``<prefix>.c`` doing exactly what ``Policy.step`` does.

The arithmetic follows the runtime's compiled step (``controller/cells/cfc_kernel.c``): float32
throughout, every weighted sum in input order with the bias last, ``exp`` by the same
Cephes-style range reduction and polynomial (within 2 ulp of ``expf``). Differences to
``Policy.step``: the observation mapping and the action mapping run in float32 instead of
float64 (about 1e-7 relative), ``tanh`` and ``sigmoid`` come from a table of degree-5
polynomials (absolute error below 8e-8, :mod:`.f32_kernels`), ``gelu`` uses an ``erf``
approximation with absolute error below 1.5e-7 (Abramowitz-Stegun 7.1.26), the pure mode's
``exp`` is the Cephes one instead of libm's. No libm is linked.

A policy with action feedback (``PolicyPlan.feedback``) keeps its previous squashed action
(float32) after the cell's state and copies it after the observation into the cell's input.
A policy with an action low-pass (``PolicyPlan.low_pass_hz``) keeps its filtered command
(float32, normalised units) at the end of the state; its gain ``1 - exp(-2 pi f dt)`` uses the
same ``exp`` (within 2 ulp of ``expf``).

Dense layers run 8 rows at a time (the weights are stored in that order,
:func:`~.f32_kernels.blocked`): each input is loaded once for 8 accumulators; on the
Cortex-M4F an assembler loop loads 8 inputs and then 16 weights per ``VLDM`` and accumulates
with ``VMLA`` (multiply rounded, then add: the same bits as the C ``acc += w * a``, so a device
build equals the host build bit for bit). The helpers' C is in :mod:`.f32_kernels`.

The generated code is C99 with no allocation and no VLAs; it compiles with
``-std=c99 -Wall -Wextra -Werror`` on gcc, avr-gcc (weights in ``PROGMEM``) and
arm-none-eabi-gcc. ``float`` must be IEEE single precision (it is on all three).
"""

from __future__ import annotations

import math

from liquidnode.controller.export.c_source import FLASH_MACROS, CUnit, c_float, header
from liquidnode.controller.export.f32_kernels import HELPERS, NEEDS, ORDER, TANH_SCALE, blocked
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

_ACT_CODE = {
    "lecun_tanh": f"{{y}} = 1.7159f * ln_tanh_s({c_float(0.666 * TANH_SCALE)} * {{y}});",
    "tanh": "{y} = ln_tanh({y});",
    "relu": "{y} = {y} > 0.0f ? {y} : 0.0f;",
    "silu": "{y} = {y} / (1.0f + ln_exp(-{y}));",
    "gelu": "{y} = 0.5f * {y} * (1.0f + ln_erf({y} * 0.70710678118654752f));",
}
_ACT_HELPERS = {
    "lecun_tanh": ("ln_tanh",),
    "tanh": ("ln_tanh",),
    "relu": (),
    "silu": ("ln_exp",),
    "gelu": ("ln_erf",),
}


class _Float(CUnit):
    def use(self, *names: str) -> None:
        for name in names:
            super().use(*NEEDS.get(name, ()))
            super().use(name)

    def dense(self, name: str, layer: Dense, a: str, y: str) -> None:
        w = self.array(f"{name}_w", "float", blocked(layer.weight))
        b = self.array(f"{name}_b", "float", layer.bias)
        self.use("ln_dense")
        self.emit(f"    ln_dense({w}, {b}, {a}, {layer.n_in}u, {layer.n_out}u, {y});")


def _cfc(u: _Float, c: CfCPlan, name: str, x: str, h: str, y: str | None) -> None:
    """Emit one CfC step: input ``x`` (C expression, n_in floats), state ``h`` (in place),
    readout into ``y`` when ``c.proj``. Work: ``z`` (n_in + H), ``ta``/``tb`` buffers."""
    n, H = c.n_in, c.units
    u.emit(f"    for (i = 0; i < {n}u; ++i) s->z[i] = {x}[i];")
    u.emit(f"    for (i = 0; i < {H}u; ++i) s->z[{n}u + i] = {h}[i];")
    a = "s->z"
    for k, layer in enumerate(c.backbone):
        dst = "s->a" if k % 2 == 0 else "s->b"
        u.dense(f"{name}bb{k}", layer, a, dst)
        u.use(*_ACT_HELPERS[c.activation])
        act = _ACT_CODE[c.activation].format(y=f"{dst}[i]")
        u.emit(f"    for (i = 0; i < {layer.n_out}u; ++i) {act}")
        a = dst
    u.dense(f"{name}heads", c.heads, a, "s->t")
    if c.mode == "pure":
        assert c.abs_w_tau is not None and c.A is not None
        wt = u.array(f"{name}abs_w_tau", "float", c.abs_w_tau)
        A = u.array(f"{name}A", "float", c.A)
        u.use("ln_exp")
        u.emit(f"    for (i = 0; i < {H}u; ++i) {{")
        u.emit("        const float f = s->t[i];")
        u.emit(f"        const float A = LN_RD_F32(&{A}[i]);")
        u.emit(
            f"        const float e = ln_exp(-ts * (LN_RD_F32(&{wt}[i]) + (f < 0.0f ? -f : f)));"
        )
        u.emit(f"        {h}[i] = -A * e * f + A;")
        u.emit("    }")
    else:
        u.use("ln_tanh", "ln_sigmoid")
        u.emit(f"    for (i = 0; i < {H}u; ++i) {{")
        u.emit("        const float f1 = ln_tanh(s->t[i]);")
        u.emit(f"        const float f2 = ln_tanh(s->t[{H}u + i]);")
        u.emit(f"        const float g = ln_sigmoid(s->t[{2 * H}u + i] * ts + s->t[{3 * H}u + i]);")
        if c.mode == "no_gate":
            u.emit(f"        {h}[i] = f1 + g * f2;")
        else:
            u.emit(f"        {h}[i] = f1 * (1.0f - g) + g * f2;")
        u.emit("    }")
    if c.proj is not None and y is not None:
        u.dense(f"{name}proj", c.proj, h, y)


def _ltc(u: _Float, c: LTCPlan, x: str) -> None:
    S, N, M = c.n_in, c.units, c.out_dim
    arr = {
        k: u.array(k, "float", getattr(c, k))
        for k in (
            "in_w",
            "in_b",
            "s_mu",
            "s_sigma",
            "s_we",
            "s_w",
            "mu",
            "sigma",
            "we",
            "w",
            "cm",
            "gleak",
            "gl_vl",
            "out_w",
            "out_b",
        )
    }
    u.use("ln_exp")
    u.emit("    {")
    u.emit("        unsigned int j, k;")
    u.emit("        const float *m, *sg, *a, *b;")
    u.emit(f"        const float step = ts / {c_float(c.unfolds)};")
    u.emit(f"        for (j = 0; j < {N}u; ++j) {{ s->num[j] = 0.0f; s->den[j] = 0.0f; }}")
    u.emit(
        f"        m = {arr['s_mu']}; sg = {arr['s_sigma']}; a = {arr['s_we']}; b = {arr['s_w']};"
    )
    u.emit(f"        for (i = 0; i < {S}u; ++i) {{")
    u.emit(
        f"            const float xi = {x}[i] * LN_RD_F32(&{arr['in_w']}[i]) + "
        f"LN_RD_F32(&{arr['in_b']}[i]);"
    )
    u.emit(f"            for (j = 0; j < {N}u; ++j) {{")
    u.emit(
        "                const float g = 1.0f / (1.0f + ln_exp(-((xi - LN_RD_F32(m++)) * "
        "LN_RD_F32(sg++))));"
    )
    u.emit("                s->num[j] += g * LN_RD_F32(a++);")
    u.emit("                s->den[j] += g * LN_RD_F32(b++);")
    u.emit("            }")
    u.emit("        }")
    u.emit(f"        for (j = 0; j < {N}u; ++j) {{")
    u.emit(f"            s->cmt[j] = LN_RD_F32(&{arr['cm']}[j]) / step;")
    u.emit(f"            s->num_c[j] = LN_RD_F32(&{arr['gl_vl']}[j]) + s->num[j];")
    u.emit(
        f"            s->den_c[j] = ((s->cmt[j] + LN_RD_F32(&{arr['gleak']}[j])) + s->den[j]) "
        f"+ {c_float(c.epsilon)};"
    )
    u.emit("        }")
    u.emit(f"        for (k = 0; k < {c.unfolds}u; ++k) {{")
    u.emit(f"            for (j = 0; j < {N}u; ++j) {{ s->num[j] = 0.0f; s->den[j] = 0.0f; }}")
    u.emit(f"            m = {arr['mu']}; sg = {arr['sigma']}; a = {arr['we']}; b = {arr['w']};")
    u.emit(f"            for (i = 0; i < {N}u; ++i) {{")
    u.emit("                const float vi = s->h[i];")
    u.emit(f"                for (j = 0; j < {N}u; ++j) {{")
    u.emit(
        "                    const float g = 1.0f / (1.0f + ln_exp(-((vi - LN_RD_F32(m++)) * "
        "LN_RD_F32(sg++))));"
    )
    u.emit("                    s->num[j] += g * LN_RD_F32(a++);")
    u.emit("                    s->den[j] += g * LN_RD_F32(b++);")
    u.emit("                }")
    u.emit("            }")
    u.emit(f"            for (j = 0; j < {N}u; ++j)")
    u.emit(
        "                s->h[j] = ((s->cmt[j] * s->h[j] + s->num_c[j]) + s->num[j]) / "
        "(s->den_c[j] + s->den[j]);"
    )
    u.emit("        }")
    u.emit(
        f"        for (j = 0; j < {M}u; ++j) s->y[j] = s->h[j] * LN_RD_F32(&{arr['out_w']}[j]) "
        f"+ LN_RD_F32(&{arr['out_b']}[j]);"
    )
    u.emit("    }")


def _recurrent(u: _Float, c: RecurrentPlan, x: str) -> None:
    """LSTM / GRU step on ``s->h`` in place; ``s->y`` gets the readout when ``c.proj``."""
    H = c.units
    u.dense("ih", c.ih, x, "s->gi")
    u.dense("hh", c.hh, "s->h", "s->gh")
    u.use("ln_tanh", "ln_sigmoid")
    u.emit(f"    for (i = 0; i < {H}u; ++i) {{")
    if c.kind == "lstm":  # gates i, f, g, o; state [h | c]
        u.emit("        const float gi = ln_sigmoid(s->gi[i] + s->gh[i]);")
        u.emit(f"        const float gf = ln_sigmoid(s->gi[{H}u + i] + s->gh[{H}u + i]);")
        u.emit(f"        const float gg = ln_tanh(s->gi[{2 * H}u + i] + s->gh[{2 * H}u + i]);")
        u.emit(f"        const float go = ln_sigmoid(s->gi[{3 * H}u + i] + s->gh[{3 * H}u + i]);")
        u.emit(f"        const float c = gf * s->h[{H}u + i] + gi * gg;")
        u.emit(f"        s->h[{H}u + i] = c;")
        u.emit("        s->h[i] = go * ln_tanh(c);")
    else:  # gates r, z, n
        u.emit("        const float r = ln_sigmoid(s->gi[i] + s->gh[i]);")
        u.emit(f"        const float z = ln_sigmoid(s->gi[{H}u + i] + s->gh[{H}u + i]);")
        u.emit(f"        const float n = ln_tanh(s->gi[{2 * H}u + i] + r * s->gh[{2 * H}u + i]);")
        u.emit("        s->h[i] = (1.0f - z) * n + z * s->h[i];")
    u.emit("    }")
    if c.proj is not None:
        u.dense("proj", c.proj, "s->h", "s->y")


def _mlp(u: _Float, c: MLPPlan, x: str) -> str:
    """MLP over stacked frames; returns the C expression of its output."""
    n, keep = c.n_in, (c.frames - 1) * c.n_in
    u.emit(f"    for (i = 0; i < {n}u; ++i) s->z[i] = {x}[i];")
    if keep:
        u.emit(f"    for (i = 0; i < {keep}u; ++i) s->z[{n}u + i] = s->h[i];")
        u.emit(f"    for (i = 0; i < {keep}u; ++i) s->h[i] = s->z[i];")
    a = "s->z"
    for k, layer in enumerate(c.layers):
        dst = "s->a" if k % 2 == 0 else "s->b"
        u.dense(f"layer{k}", layer, a, dst)
        u.use(*_ACT_HELPERS[c.activation])
        act = _ACT_CODE[c.activation].format(y=f"{dst}[i]")
        u.emit(f"    for (i = 0; i < {layer.n_out}u; ++i) {act}")
        a = dst
    if c.proj is not None:
        u.dense("proj", c.proj, a, "s->y")
        return "s->y"
    return a


def _work_fields(plan: PolicyPlan) -> list[tuple[str, int]]:
    """The float scratch arrays of the state struct for this plan."""
    cell = plan.cell
    fields = [("x", plan.cell_in)]
    if isinstance(cell, RecurrentPlan):
        fields += [("gi", cell.ih.n_out), ("gh", cell.hh.n_out)]
        return fields + ([("y", cell.proj.n_out)] if cell.proj is not None else [])
    if isinstance(cell, MLPPlan):
        widths = [d.n_out for d in cell.layers]
        fields += [("z", cell.frames * cell.n_in), ("a", max(widths))]
        fields += [("b", max(widths))] if len(widths) > 1 else []
        return fields + ([("y", cell.proj.n_out)] if cell.proj is not None else [])
    if isinstance(cell, LTCPlan):
        n = cell.units
        return (
            fields
            + [(k, n) for k in ("num", "den", "cmt", "num_c", "den_c")]
            + [("y", cell.out_dim)]
        )
    layers = cell.layers if isinstance(cell, WiredPlan) else [cell]
    z = max(c.n_in + c.units for c in layers)
    t = max(c.heads.n_out for c in layers)
    fields += [("z", z), ("t", t)]
    bb = [d.n_out for c in layers for d in c.backbone]
    if bb:
        fields.append(("a", max(bb)))
    if len(bb) > 1:
        fields.append(("b", max(bb)))
    if isinstance(cell, CfCPlan) and cell.proj is not None:
        fields.append(("y", cell.proj.n_out))
    return fields


def _state_loop(plan: PolicyPlan, body: str, empty: str) -> str:
    """A loop over the state (``empty`` for a stateless policy: no loop to warn about)."""
    if plan.state_dim == 0:
        return f"    {empty}"
    return f"    unsigned int i;\n    for (i = 0; i < {plan.state_dim}u; ++i) {body}"


def generate(plan: PolicyPlan, prefix: str) -> dict[str, str]:
    """``{"<prefix>.h": text, "<prefix>.c": text}`` for a float32 export of ``plan``."""
    u = _Float(prefix)
    cell = plan.cell
    # observation mapping
    if plan.normalise:
        mean = u.array("obs_mean", "float", plan.mean)
        inv = u.array("obs_inv_std", "float", plan.inv_std)
        u.emit(f"    for (i = 0; i < {plan.obs_dim}u; ++i) {{")
        u.emit(f"        float v = (obs[i] - LN_RD_F32(&{mean}[i])) * LN_RD_F32(&{inv}[i]);")
    else:
        u.emit(f"    for (i = 0; i < {plan.obs_dim}u; ++i) {{")
        u.emit("        float v = obs[i];")
    if plan.clip is not None:
        clip = c_float(plan.clip)
        u.emit(f"        v = v > {clip} ? {clip} : v;")
        u.emit(f"        v = v < -{clip} ? -{clip} : v;")
    u.emit("        s->x[i] = v;")
    u.emit("    }")
    fb = plan.cell_state_dim  # with feedback: where the previous squashed action is kept
    if plan.feedback:
        u.emit(
            f"    for (i = 0; i < {plan.act_dim}u; ++i) "
            f"s->x[{plan.obs_dim}u + i] = s->h[{fb}u + i];"
        )
    u.emit(f"    ts = dt * {c_float(plan.time_scale)};")
    if isinstance(cell, (RecurrentPlan, MLPPlan)):
        u.emit("    (void)ts; /* baseline cells assume the nominal period */")
    # cell
    if isinstance(cell, CfCPlan):
        _cfc(u, cell, "", "s->x", "s->h", "s->y")
        y = "s->y" if cell.proj is not None else "s->h"
    elif isinstance(cell, WiredPlan):
        start, inp = 0, "s->x"
        for k, layer in enumerate(cell.layers):
            h = f"(s->h + {start}u)"
            _cfc(u, layer, f"l{k}_", inp, h, None)
            inp, start = h, start + layer.units
        y = f"(s->h + {start - cell.layers[-1].units}u)"
    elif isinstance(cell, LTCPlan):
        _ltc(u, cell, "s->x")
        y = "s->y"
    elif isinstance(cell, RecurrentPlan):
        _recurrent(u, cell, "s->x")
        y = "s->y" if cell.proj is not None else "s->h"
    elif isinstance(cell, MLPPlan):
        y = _mlp(u, cell, "s->x")
    else:  # pragma: no cover - lower() only builds the three
        raise ExportError(f"no C generator for {type(cell).__name__}")
    # action mapping
    if plan.affine:
        scale = u.array("act_scale", "float", plan.scale)
        offset = u.array("act_offset", "float", plan.offset)
    lp = plan.state_dim - plan.act_dim  # with a low-pass: where the filtered command is kept
    if plan.low_pass_hz is not None:
        u.use("ln_exp")
        w = c_float(-2.0 * math.pi * plan.low_pass_hz)
        u.emit(f"    const float alpha = 1.0f - ln_exp(dt * {w}); /* the low-pass's gain */")
    u.emit(f"    for (i = 0; i < {plan.act_dim}u; ++i) {{")
    if plan.tanh:
        u.use("ln_tanh")
        u.emit(f"        float a = ln_tanh({y}[i]);")
    else:
        u.emit(f"        float a = {y}[i];")
    if plan.feedback:
        u.emit(f"        s->h[{fb}u + i] = a;")
    if plan.low_pass_hz is not None:
        u.emit(f"        a = s->h[{lp}u + i] + alpha * (a - s->h[{lp}u + i]);")
        u.emit(f"        s->h[{lp}u + i] = a;")
    if plan.affine:
        u.emit(f"        a = a * LN_RD_F32(&{scale}[i]) + LN_RD_F32(&{offset}[i]);")
    u.emit("        action[i] = a;")
    u.emit("    }")

    fields = [("h", max(1, plan.state_dim)), *_work_fields(plan)]
    struct = "".join(f"    float {n}[{size}];\n" for n, size in fields)
    helpers = "\n".join(HELPERS[h] for h in ORDER if h in u.helpers)
    source = f"""/* {prefix}.c: generated by `liquidnode export --target c --precision f32`. */
#include "{prefix}.h"

{FLASH_MACROS}
{u.arrays_source()}
{helpers}
void {prefix}_reset({prefix}_state *s) {{
{_state_loop(plan, "s->h[i] = 0.0f;", "(void)s;")}
}}

void {prefix}_state_read(const {prefix}_state *s, float *h) {{
{_state_loop(plan, "h[i] = s->h[i];", "(void)s; (void)h;")}
}}

void {prefix}_state_write({prefix}_state *s, const float *h) {{
{_state_loop(plan, "s->h[i] = h[i];", "(void)s; (void)h;")}
}}

void {prefix}_step({prefix}_state *s, const float *obs, float dt, float *action) {{
    unsigned int i;
    float ts;
{chr(10).join(u.lines)}
}}
"""
    return {f"{prefix}.h": header(plan, prefix, "f32", struct), f"{prefix}.c": source}
