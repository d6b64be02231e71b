"""``liquidnode export``: a policy as C source (float32, q15 or q7 fixed point) or ONNX."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from liquidnode.cli.arguments import Subparsers, non_negative_float, non_negative_int
from liquidnode.policies import DEFAULT_POLICY

if TYPE_CHECKING:
    from liquidnode.controller.policy import Policy


def add_parser(subparsers: Subparsers) -> None:
    """Register the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export",
        help="export a policy as C99 source (microcontrollers) or an ONNX model",
        description=(
            "Write a policy's step (normalisation, cell, action mapping, exactly as "
            "Policy.step) as self-contained C99 (<prefix>.h + <prefix>.c: const weights in "
            "flash, a caller-owned state struct, <prefix>_step(state, obs, dt, action)) or as "
            "an ONNX model with inputs obs, dt, state and outputs action, state_out."
        ),
    )
    p.add_argument(
        "--policy",
        metavar="PATH",
        default=None,
        help=f"policy file (.safetensors) (default: the shipped policies/{DEFAULT_POLICY})",
    )
    p.add_argument("--target", choices=("c", "onnx"), required=True, help="what to write")
    p.add_argument(
        "--precision",
        choices=("f32", "q15", "q7"),
        default="f32",
        help=(
            "f32: float32; q15: int16 weights and activations, int32 accumulators; q7: int8 "
            "weights, int16 activations, 8-bit on a CfC backbone (fixed point: C only, for "
            "MCUs without an FPU; the per-step error bound is in the source)"
        ),
    )
    p.add_argument("--out", metavar="DIR", required=True, help="output directory")
    p.add_argument(
        "--fixed-dt",
        type=float,
        default=None,
        metavar="SECONDS",
        help=(
            "q15/q7, CfC and wired CfC: specialise the step for this control period (the "
            "time gate's two heads folded into one, a quarter fewer multiply-accumulates in "
            "the heads); the generated step returns -1 without stepping for another dt"
        ),
    )
    p.add_argument(
        "--latency-ms",
        type=non_negative_float,
        default=None,
        metavar="MS",
        help=(
            "a policy with a latency input: the actuation latency the exported step is built "
            "for (folded into its first layer; required for such a policy, refused for others)"
        ),
    )
    p.add_argument(
        "--prefix",
        default="policy",
        help="C prefix of every public name and of the file names (default: policy)",
    )
    p.add_argument(
        "--check",
        type=non_negative_int,
        default=0,
        metavar="STEPS",
        help=(
            "then run the export (C built with the host compiler, ONNX in onnxruntime) and "
            "Policy.step side by side for STEPS ticks with variable dt; print max |Δaction| "
            "and |Δstate|"
        ),
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (files, check)")
    p.set_defaults(run=run)


def tell_latency(policy: Policy, latency_ms: float | None, path: str | os.PathLike[str]) -> None:
    """Tell a policy with a latency input ``latency_ms`` (its exports fold it in).

    Raises:
        ExportError: a policy with the input without ``latency_ms``, or one without it with.
    """
    from liquidnode.controller.export.lowering import ExportError

    if policy.latency_input is None:
        if latency_ms is not None:
            raise ExportError(f"--latency-ms: policy {path} has no latency input")
        return
    if latency_ms is None:
        raise ExportError(
            f"policy {path} takes the actuation latency as an input: give the latency the "
            "exported step is built for (--latency-ms; a device that runs the policy itself "
            "acts within its step time)"
        )
    rate = policy.metadata.control_rate_hz or float(policy.metadata.time_scale)
    policy.set_latency(latency_ms / 1000.0 * rate)


def run(args: argparse.Namespace) -> int:
    """Export ``args.policy``; returns 0 (errors raise ExportError/PolicyFileError -> exit 2)."""
    from liquidnode.controller.export import export_policy
    from liquidnode.controller.policy import Policy
    from liquidnode.policies import default_policy_path

    path = args.policy or default_policy_path(None)
    policy = Policy.load(path)
    tell_latency(policy, args.latency_ms, path)
    files = export_policy(policy, args.out, args.target, args.precision, args.prefix, args.fixed_dt)
    result: dict[str, Any] = {
        "policy": str(path),
        "target": args.target,
        "precision": args.precision,
        "files": [str(f) for f in files],
    }
    if args.target == "c" and args.precision in ("q15", "q7"):
        from liquidnode.controller.export import lower
        from liquidnode.controller.export.fixed_point import build

        info = build(lower(policy), args.prefix, args.precision, args.fixed_dt)[1]
        result["bound_per_step"] = {
            "action": [float(v) for v in info.bound_action],
            "state_max": float(max(info.bound_state, default=0.0)),
        }
    if args.check:
        from liquidnode.controller.export.check import compare

        result["check"] = compare(
            policy, args.out, args.target, args.prefix, args.check, fixed_dt=args.fixed_dt
        )
    if args.json:
        print(json.dumps(result))
        return 0
    for f in files:
        print(f"wrote {f}")
    if "bound_per_step" in result:
        b = result["bound_per_step"]
        print(
            f"derived per-step error bound ({args.precision} vs Policy.step from the same "
            "state): "
            f"|Δaction| <= {', '.join(f'{v:.3g}' for v in b['action'])}, "
            f"|Δstate| <= {b['state_max']:.3g}"
        )
    if "check" in result:
        c = result["check"]
        print(
            f"check: {c['steps']} steps vs Policy.step: max |Δaction| {c['max_abs_action']:.3g}, "
            f"max |Δstate| {c['max_abs_state']:.3g}",
            file=sys.stdout,
        )
    return 0
