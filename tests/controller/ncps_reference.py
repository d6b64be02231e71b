"""Shared helpers for the equivalence tests against ncps 1.0.1 (torch), the reference."""

from __future__ import annotations

import os

import numpy as np
import pytest


def require_ncps():
    """Import ``torch`` and ``ncps.torch``; skip (or fail under LIQUIDNODE_REQUIRE_ALL=1)."""
    try:
        import ncps.torch  # noqa: F401
        import torch
    except ImportError as exc:  # pragma: no cover - the dev extra installs both
        if os.environ.get("LIQUIDNODE_REQUIRE_ALL") == "1":
            raise
        pytest.skip(f"ncps/torch not installed (pip install -e .[dev]): {exc}")
    torch.set_num_threads(1)
    return torch


def perturb(module, seed: int = 0, scale: float = 0.1) -> None:
    """Add Gaussian noise to every trainable parameter, so no value keeps its special init.

    Keep ``scale`` moderate: much larger weights make the recurrence chaotic, and then any two
    float32 implementations (even torch with another thread count) drift apart exponentially
    from their first rounding difference.
    """
    torch = require_ncps()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.add_(scale * torch.randn(p.shape, generator=gen))


def inputs(n_in: int, steps: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Random float32 inputs ``(steps, n_in)`` and time spans uniform in [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(steps, n_in)).astype(np.float32)
    ts = rng.uniform(0.5, 1.5, size=steps).astype(np.float32)
    return xs, ts


def ncps_outputs(module, xs: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """ncps' per-step outputs ``(steps, out)`` with per-step timespans, batch of one."""
    torch = require_ncps()
    module.eval()
    with torch.inference_mode():
        y, _ = module(torch.from_numpy(xs)[None], timespans=torch.from_numpy(ts)[None])
    return y[0].numpy()


def runtime_outputs(policy, xs: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """The runtime's per-step outputs, ``dt = ts / time_scale`` so the cell sees ``ts``."""
    policy.reset()
    scale = policy.metadata.time_scale
    return np.stack([policy.step(x, float(t) / scale) for x, t in zip(xs, ts, strict=True)])


def numpy_only(build):
    """Call ``build()`` with the compiled kernel off (``LIQUIDNODE_NO_KERNEL=1``)."""
    old = os.environ.get("LIQUIDNODE_NO_KERNEL")
    os.environ["LIQUIDNODE_NO_KERNEL"] = "1"
    try:
        return build()
    finally:
        if old is None:
            del os.environ["LIQUIDNODE_NO_KERNEL"]
        else:
            os.environ["LIQUIDNODE_NO_KERNEL"] = old


def max_error(module, steps: int = 1000, seed: int = 1) -> float:
    """Max abs difference between ncps and ``from_ncps(module)`` over a variable-dt rollout.

    Both runtime paths are checked: the default one (the compiled kernel where it builds) and
    the pure numpy one.
    """
    from liquidnode.controller.ncps_import import from_ncps

    n_in = module.input_size
    xs, ts = inputs(n_in, steps, seed)
    ref = ncps_outputs(module, xs, ts)
    worst = 0.0
    for policy in (from_ncps(module), numpy_only(lambda: from_ncps(module))):
        got = runtime_outputs(policy, xs, ts)
        assert got.shape == ref.shape
        worst = max(worst, float(np.max(np.abs(got - ref))))
    return worst
