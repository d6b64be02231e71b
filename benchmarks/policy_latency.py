"""Comparison 1: policy step latency, the runtime vs. ncps 1.0.1 torch on the same weights.

Models (17 observations, 6 actions, built by ncps with ``torch.manual_seed(0)``, imported into
the runtime with :func:`controller.from_ncps`):

- ``CfC-64``: ``CfC(17, 64, proj_size=6, backbone_units=128)`` (default mode, lecun_tanh).
- ``wired CfC``: ``CfC(17, AutoNCP(19, 6))``.
- ``LTC``: ``LTC(17, AutoNCP(19, 6))`` (6 ODE unfolds).

Candidates per model, timed side by side (see :func:`benchmarks.harness.interleaved`):
``Policy.step(obs, dt)`` with the compiled kernel (the runtime's default), the same with the
numpy fallback (``LIQUIDNODE_NO_KERNEL=1`` at import), ncps' ``module(x, hx, timespans)`` for
one step (``torch.set_num_threads(1)``, inside ``torch.inference_mode()``), and for CfC-64 the
plain C floor (:mod:`benchmarks.cfloor`, ``cc -O2``, one ctypes call per tick). Outputs of both
runtime paths are compared with ncps over a variable-dt rollout (max abs difference).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from liquidnode.benchmarks.harness import Check, Section, fmt_ratio, fmt_us, interleaved

if TYPE_CHECKING:
    from liquidnode.controller.policy import Policy

KEY = "policy_latency"
TITLE = "Policy step latency: runtime vs. ncps 1.0.1 torch (same weights)"
TOL = 1e-5


@contextlib.contextmanager
def _no_kernel() -> Iterator[None]:
    old = os.environ.get("LIQUIDNODE_NO_KERNEL")
    os.environ["LIQUIDNODE_NO_KERNEL"] = "1"
    try:
        yield
    finally:
        if old is None:
            del os.environ["LIQUIDNODE_NO_KERNEL"]
        else:
            os.environ["LIQUIDNODE_NO_KERNEL"] = old


def build_models() -> dict[str, Any]:
    """The three ncps modules, seeded, in eval mode."""
    import torch
    from ncps.torch import LTC, CfC
    from ncps.wirings import AutoNCP

    out = {}
    for name, make in (
        ("CfC-64 (backbone 128)", lambda: CfC(17, 64, proj_size=6, backbone_units=128)),
        ("wired CfC AutoNCP(19, 6)", lambda: CfC(17, AutoNCP(19, 6))),
        ("LTC AutoNCP(19, 6)", lambda: LTC(17, AutoNCP(19, 6))),
    ):
        torch.manual_seed(0)
        out[name] = make().eval()
    return out


def _max_error(module: Any, policies: list[Policy], steps: int) -> list[float]:
    """Max abs difference of each policy's actions vs. ncps over a variable-dt rollout."""
    import torch

    rng = np.random.default_rng(1)
    xs = rng.normal(size=(steps, 17)).astype(np.float32)
    ts = rng.uniform(0.5, 1.5, size=steps).astype(np.float32)
    with torch.inference_mode():
        ref = module(torch.from_numpy(xs)[None], timespans=torch.from_numpy(ts)[None])[0][0]
    ref = ref.numpy()
    errors = []
    for policy in policies:
        policy.reset()
        got = np.stack([policy.step(x, float(t)) for x, t in zip(xs, ts, strict=True)])
        errors.append(float(np.max(np.abs(got - ref))))
    return errors


def _numpy_step(step: Callable[[np.ndarray, float], Any], obs: np.ndarray) -> Callable[[], Any]:
    """``step(obs, 0.5)`` as a callable without arguments (what :func:`interleaved` times)."""
    return lambda: step(obs, 0.5)


def _torch_step(module: Any, obs: np.ndarray) -> Callable[[], None]:
    import torch

    x = torch.from_numpy(obs.astype(np.float32))[None, None]
    t = torch.tensor([[0.5]])
    state: dict[str, Any] = {"h": None}

    def step() -> None:
        _, state["h"] = module(x, hx=state["h"], timespans=t)

    return step


def run(quick: bool = False, tiny: bool = False) -> Section:
    """Run the comparison; ``quick`` shortens it, ``tiny`` is for the smoke test."""
    try:
        import torch
        from ncps.torch import CfC  # noqa: F401

        from liquidnode.controller.cells import kernel
        from liquidnode.controller.ncps_import import from_ncps
    except ImportError as exc:
        return Section(KEY, TITLE, unavailable=f"needs torch, ncps and the runtime: {exc}")
    from liquidnode.benchmarks.cfloor import FloorUnavailableError, build_floor

    torch.set_num_threads(1)
    rounds, calls, steps = (5, 10, 50) if tiny else (101, 20, 300) if quick else (301, 40, 1000)
    status = kernel.kernel_status()
    sec = Section(
        KEY,
        TITLE,
        columns=[
            "model",
            "runtime µs",
            "numpy fallback µs",
            "ncps torch µs",
            "C floor µs",
            "torch / runtime",
            "torch / numpy",
            "runtime / C floor",
            "max |Δ| vs ncps",
        ],
    )
    obs = np.random.default_rng(0).normal(size=17)
    for name, module in build_models().items():
        fast = from_ncps(module)
        with _no_kernel():
            slow = from_ncps(module)
        candidates: dict[str, Callable[[], Any]] = {
            "runtime": _numpy_step(fast.step, obs),
            "numpy": _numpy_step(slow.step, obs),
            "torch": _torch_step(module, obs),
        }
        floor = None
        floor_in_c = None
        if name.startswith("CfC-64"):
            sd = {k: v.detach().numpy() for k, v in module.state_dict().items()}
            try:
                floor = build_floor(sd, 17, 64, 128, 6)
                candidates["floor"] = _numpy_step(floor.step, obs)
            except FloorUnavailableError as exc:
                sec.notes.append(f"C floor unavailable: {exc}")
        with torch.inference_mode():
            errors = _max_error(module, [fast, slow], steps)
            times = interleaved(candidates, rounds=rounds, calls=calls)
        if floor is not None:
            floor_in_c = floor.run_in_c(2000 if tiny else 20000)
        err = max(errors)
        t_fast, t_slow, t_torch = times["runtime"], times["numpy"], times["torch"]
        t_floor = times.get("floor")
        sec.rows.append(
            [
                name,
                fmt_us(t_fast),
                fmt_us(t_slow),
                fmt_us(t_torch),
                "-" if t_floor is None else fmt_us(t_floor),
                fmt_ratio(t_torch / t_fast),
                fmt_ratio(t_torch / t_slow),
                "-" if t_floor is None else fmt_ratio(t_fast / t_floor),
                f"{err:.1e}",
            ]
        )
        sec.data[name] = {
            "runtime_us": t_fast * 1e6,
            "numpy_us": t_slow * 1e6,
            "torch_us": t_torch * 1e6,
            "floor_us": None if t_floor is None else t_floor * 1e6,
            "floor_in_c_us": None if floor_in_c is None else floor_in_c * 1e6,
            "max_abs_error": {"runtime": errors[0], "numpy": errors[1]},
        }
        sec.checks.append(
            Check(
                f"{name}: >= 10x faster than ncps torch, outputs within 1e-5",
                f"{fmt_ratio(t_torch / t_fast)}, max |Δ| {err:.1e}",
                t_torch / t_fast >= 10.0 and err <= TOL,
            )
        )
        if t_floor is not None:
            sec.checks.append(
                Check(
                    f"{name}: within 2x of the C floor",
                    f"{fmt_ratio(t_fast / t_floor)} of the floor",
                    t_fast / t_floor <= 2.0,
                )
            )
            sec.notes.append(
                f"C floor looped inside C (no Python per tick): {fmt_us(floor_in_c or 0)} µs/step. "
                "The floor is the obvious C (one dot product per output, cc -O2), whose sums "
                "the compiler may not vectorise; the runtime's kernel stores weights transposed "
                "so its inner loops run over outputs and vectorise without reordering any sum, "
                "hence below 1x."
            )
    sec.data["kernel_status"] = status
    sec.notes.insert(
        0,
        f"runtime = Policy.step with the compiled kernel (status: {status}); numpy fallback = "
        "LIQUIDNODE_NO_KERNEL=1; torch = ncps module forward of one step, "
        "torch.set_num_threads(1), inference_mode; medians of "
        f"{rounds} interleaved rounds of {calls} calls; max |Δ| over a {steps}-step rollout "
        "with dt uniform in [0.5, 1.5] (worst of kernel and numpy paths).",
    )
    return sec
