"""Export a policy for a microcontroller (C) or an inference runtime (ONNX).

:func:`export_policy` writes the files; the CLI's ``liquidnode export`` wraps it. Targets:

- ``c``, precision ``f32``: ``<prefix>.h`` + ``<prefix>.c``, C99, the arithmetic of the
  runtime's compiled step (:mod:`.c_codegen`).
- ``c``, precision ``q15``: the same interface, int16 weights and activations with int32
  accumulators (:mod:`.fixed_point`, :mod:`.q15_ltc`, :mod:`.q15_baselines`); CfC (every
  mode), wired CfC, LTC, LSTM, GRU, MLP; the per-step error bound against float is derived
  from the weights and written into the source. ``q7``: the same with int8 weights (and a
  CfC backbone on bytes). ``fixed_dt``: a fixed-point step specialised for one control
  period (the CfC time gate folded for it).
- ``onnx``: ``<prefix>.onnx`` with the state as an explicit input and output
  (:mod:`.onnx_export`, needs the ``onnx`` package, which the runtime never imports).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from liquidnode.controller.export.c_source import check_prefix
from liquidnode.controller.export.lowering import ExportError, PolicyPlan, lower

if TYPE_CHECKING:
    from liquidnode.controller.policy import Policy

TARGETS = ("c", "onnx")
PRECISIONS = ("f32", "q15", "q7")


def export_policy(
    policy: Policy,
    out_dir: str | os.PathLike[str],
    target: str = "c",
    precision: str = "f32",
    prefix: str = "policy",
    fixed_dt: float | None = None,
) -> list[Path]:
    """Write the export of ``policy`` into ``out_dir`` (created if missing).

    Args:
        policy: the policy to export (not modified).
        out_dir: output directory.
        target: ``"c"`` (``<prefix>.h``, ``<prefix>.c``) or ``"onnx"`` (``<prefix>.onnx``).
        precision: ``"f32"``, ``"q15"`` or ``"q7"`` (C only; ONNX is float32).
        prefix: C identifier that prefixes every public C name and the file names.
        fixed_dt: fixed point only: a step specialised for this control period in seconds
            (CfC and wired CfC: the time gate folded for it; the step refuses another dt);
            see :func:`.fixed_point.build`.

    Returns:
        The paths written.

    Raises:
        ExportError: an unknown target/precision, a bad prefix, a cell the target cannot
            express, or an unwritable directory.
    """
    if target not in TARGETS:
        raise ExportError(f"unknown target {target!r}, expected one of {TARGETS}")
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}, expected one of {PRECISIONS}")
    if target == "onnx" and precision != "f32":
        raise ExportError(f"the onnx target is float32 only, got --precision {precision}")
    check_prefix(prefix)
    if fixed_dt is not None and (target != "c" or precision == "f32"):
        raise ExportError(
            f"a fixed dt is a fixed-point C option (--precision q15 or q7), not for "
            f"--target {target} --precision {precision}"
        )
    plan = lower(policy)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if target == "onnx":
            from liquidnode.controller.export import onnx_export

            path = out / f"{prefix}.onnx"
            onnx_export.write(plan, str(path))
            return [path]
        if precision == "f32":
            from liquidnode.controller.export.c_codegen import generate

            files = generate(plan, prefix)
        else:
            from liquidnode.controller.export import fixed_point

            files = fixed_point.generate(plan, prefix, precision, fixed_dt)
        written = []
        for name, text in files.items():
            (out / name).write_text(text)
            written.append(out / name)
        return written
    except OSError as exc:
        raise ExportError(f"cannot write the export into {out}: {exc}") from None


__all__ = ["PRECISIONS", "TARGETS", "ExportError", "PolicyPlan", "export_policy", "lower"]
