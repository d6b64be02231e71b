"""Writing a C99 translation unit: constant arrays in flash, helper functions, the header.

Shared by the float32 generator (:mod:`.c_codegen`) and the fixed-point one
(:mod:`.fixed_point`). The generated files are self-contained C99: no ``malloc``, no VLAs, no
libm (``exp``/``tanh``/``sigmoid`` are the generator's own, see the helpers), ``<stdint.h>``
only. On the AVR every ``const`` array lives in flash (``PROGMEM``) and is read through the
``LN_RD_*`` macros (``pgm_read_float`` / ``pgm_read_word`` / ``pgm_read_dword``); elsewhere
the macros are plain loads and the arrays go wherever the toolchain puts ``const`` data
(flash on a Cortex-M).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liquidnode.controller.export.lowering import ExportError, PolicyPlan

_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")

FLASH_MACROS = """\
#if defined(__AVR__)
#include <avr/pgmspace.h>
#define LN_FLASH PROGMEM
#define LN_RD_F32(p) pgm_read_float(p)
#define LN_RD_I8(p) ((int8_t)pgm_read_byte(p))
#define LN_RD_I16(p) ((int16_t)pgm_read_word(p))
#define LN_RD_I32(p) ((int32_t)pgm_read_dword(p))
#else
#define LN_FLASH
#define LN_RD_F32(p) (*(p))
#define LN_RD_I8(p) (*(p))
#define LN_RD_I16(p) (*(p))
#define LN_RD_I32(p) (*(p))
#endif
"""


def check_prefix(prefix: str) -> str:
    """``prefix`` if it is a C identifier of at most 41 characters; else ExportError."""
    if not _PREFIX.match(prefix):
        raise ExportError(
            f"prefix {prefix!r} is not a C identifier (letters, digits, _; not starting with a "
            "digit; at most 41 characters)"
        )
    return prefix


def c_float(value: float) -> str:
    """A float32 value as a C literal that reads back to the same float32."""
    v = float(np.float32(value))
    text = f"{v:.9g}"
    if "." not in text and "e" not in text and "inf" not in text and "nan" not in text:
        text += ".0"
    return text + "f"


@dataclass
class CUnit:
    """A translation unit being written: flash arrays, used helpers, body lines.

    Attributes:
        prefix: the C prefix of every public name.
        arrays: ``(name, ctype, values)`` in order of declaration.
        helpers: names of the helper functions the body uses (each emitted once, in order).
        lines: the statements of the step function body.
    """

    prefix: str
    arrays: list[tuple[str, str, np.ndarray]] = field(default_factory=list)
    helpers: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def array(self, name: str, ctype: str, values: np.ndarray) -> str:
        """Declare a constant flash array; returns its C name (``<prefix>_<name>``)."""
        cname = f"{self.prefix}_{name}"
        flat = np.asarray(values).reshape(-1)
        if flat.size == 0:
            raise ExportError(f"array {name} is empty")
        self.arrays.append((cname, ctype, flat))
        return cname

    def use(self, *names: str) -> None:
        """Mark helper functions as used (emitted before the public functions)."""
        for name in names:
            if name not in self.helpers:
                self.helpers.append(name)

    def emit(self, line: str = "") -> None:
        """Append one line of the step body (already indented by the caller)."""
        self.lines.append(line)

    def flash_bytes(self) -> int:
        """Bytes of constant data."""
        sizes = {"float": 4, "int16_t": 2, "int32_t": 4, "uint8_t": 1, "int8_t": 1}
        return sum(sizes[t] * v.size for _, t, v in self.arrays)

    def arrays_source(self) -> str:
        """The array definitions, eight values a line."""
        out = []
        for cname, ctype, flat in self.arrays:
            if ctype == "float":
                vals = [c_float(v) for v in flat.tolist()]
            else:
                vals = [str(int(v)) for v in flat.tolist()]
                if ctype == "int32_t":  # INT32_MIN cannot be a literal; the range is symmetric
                    vals = [f"{v}L" for v in vals]
            body = ",\n".join("    " + ", ".join(vals[i : i + 8]) for i in range(0, len(vals), 8))
            out.append(f"static const {ctype} {cname}[{flat.size}] LN_FLASH = {{\n{body}\n}};")
        return "\n".join(out) + "\n"


def describe(plan: PolicyPlan, precision: str) -> str:
    """The comment block at the top of both generated files: vectors, rate, provenance."""
    info = plan.info
    lines = [
        f"Policy exported by liquidnode (cell {info.get('cell')}, precision {precision}).",
        "",
        f"env_id: {info.get('env_id')}; control rate: {info.get('control_rate_hz')} Hz; "
        f"time_scale: {plan.time_scale:g} (the cell's time input is dt [s] * time_scale).",
        "",
    ]
    for title, key, dim in (
        ("obs", "observation_space", plan.obs_dim),
        ("action", "action_space", plan.act_dim),
    ):
        space = info.get(key) or {}
        names = space.get("names") or [None] * dim
        low = space.get("low") or [None] * dim
        high = space.get("high") or [None] * dim
        lines.append(f"{title}[i]  name  low  high  (env units)")
        for i in range(dim):
            lines.append(f"  {i}  {names[i] or '-'}  {_num(low[i])}  {_num(high[i])}")
    lines += [
        "",
        f"state: {plan.state_dim} values, the layout of Policy.state "
        f"({_state_layout(plan)}); zeros after reset.",
        "provenance: " + json.dumps(info.get("provenance") or {}, sort_keys=True)[:400],
    ]
    return "/*\n" + "\n".join((" * " + ln).rstrip() for ln in lines) + "\n */\n"


def _num(v: Any) -> str:
    return "-" if v is None else f"{float(v):g}"


def _state_layout(plan: PolicyPlan) -> str:
    kind = plan.cell_kind
    cell = {
        "cfc": "CfC hidden state h",
        "wired_cfc": "wired CfC layers' states in layer order, e.g. inter | command | motor",
        "ltc": "LTC membrane potentials v in neuron-id order",
        "lstm": "LSTM [h | c]",
        "gru": "GRU hidden state h",
        "mlp": "MLP previous inputs, newest first",
    }.get(kind, kind)
    if plan.feedback:
        return f"{cell}, then the previous squashed action (action feedback, {plan.act_dim})"
    return cell


def header(
    plan: PolicyPlan,
    prefix: str,
    precision: str,
    state_fields: str,
    fixed: tuple[float, int] | None = None,
) -> str:
    """The ``<prefix>.h`` text: sizes, the state struct, the public functions.

    ``fixed``: ``(dt seconds, ts Q12)`` of a step specialised for one control period (the
    fixed-point export's ``fixed_dt``): the header defines them and the step returns int."""
    up = prefix.upper()
    guard = f"{up}_H"
    ret, fixed_defs = "void", ""
    step_doc = f"""/* One tick, as liquidnode's Policy.step: obs in env units ({up}_OBS_DIM values),
 * dt the elapsed time since the previous tick in seconds (> 0), action in env units
 * ({up}_ACT_DIM values, before any clamping). */"""
    if fixed is not None:
        ret = "int"
        fixed_defs = f"""
/* This step is specialised for one control period: the time gate is folded for it. */
#define {up}_FIXED_DT_S {c_float(fixed[0])}
#define {up}_FIXED_DT_US {round(fixed[0] * 1e6)}
#define {up}_FIXED_TS_Q12 {fixed[1]}
"""
        step_doc = f"""/* One tick, as liquidnode's Policy.step: obs in env units ({up}_OBS_DIM
 * values), dt the elapsed time since the previous tick in seconds, which must be {up}_FIXED_DT_S
 * (to within ts = dt * time_scale in Q12: the same {up}_FIXED_TS_Q12), action in env units
 * ({up}_ACT_DIM values, before any clamping). Returns 0 after the step; -1 for another dt,
 * without stepping (state and action untouched). */"""
    return f"""{describe(plan, precision)}#ifndef {guard}
#define {guard}

#include <stdint.h>

#ifdef __cplusplus
extern "C" {{
#endif

#define {up}_OBS_DIM {plan.obs_dim}
#define {up}_ACT_DIM {plan.act_dim}
#define {up}_STATE_DIM {plan.state_dim}
{fixed_defs}
/* Caller-owned: the hidden state and the step's scratch (no other memory is used). */
typedef struct {{
{state_fields}}} {prefix}_state;

/* Hidden state := zeros (start of an episode). */
void {prefix}_reset({prefix}_state *s);

{step_doc}
{ret} {prefix}_step({prefix}_state *s, const float *obs, float dt, float *action);

/* The hidden state as float ({up}_STATE_DIM values, Policy.state's layout); write sets it. */
void {prefix}_state_read(const {prefix}_state *s, float *h);
void {prefix}_state_write({prefix}_state *s, const float *h);

#ifdef __cplusplus
}}
#endif

#endif /* {guard} */
"""
