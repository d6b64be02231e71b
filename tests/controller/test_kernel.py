"""The compiled kernel (controller/cells/kernel.py) and the numpy path both equal ncps 1.0.1.

Each model is imported from ncps twice, with the kernel and with ``LIQUIDNODE_NO_KERNEL=1``,
and both are rolled out for 1,000 steps with random inputs and random variable time spans
(uniform in [0.5, 1.5]) against ncps' torch forward pass (float32): max abs difference
<= 1e-5. Small models get perturbed weights (no special init value survives); the benchmark's
CfC-64 keeps ncps' init, as larger perturbed recurrences turn chaotic and then any two float32
implementations drift apart (see ``perturb``).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from liquidnode.controller.cells import kernel
from tests.controller.ncps_reference import (
    inputs,
    ncps_outputs,
    perturb,
    require_ncps,
    runtime_outputs,
)

STEPS = 1000


def _require_kernel() -> None:
    if kernel.load_library() is None:
        if os.environ.get("LIQUIDNODE_REQUIRE_ALL") == "1":
            pytest.fail(f"compiled kernel unavailable: {kernel.kernel_status()}")
        pytest.skip(f"compiled kernel unavailable: {kernel.kernel_status()}")


def _both_paths(module, monkeypatch):
    from liquidnode.controller.ncps_import import from_ncps

    with_kernel = from_ncps(module)
    monkeypatch.setenv("LIQUIDNODE_NO_KERNEL", "1")
    numpy_only = from_ncps(module)
    monkeypatch.delenv("LIQUIDNODE_NO_KERNEL")
    return with_kernel, numpy_only


def _cells(policy):
    cell = getattr(policy.cell, "cell", policy.cell)  # unwrap the proj_size readout
    return getattr(cell, "_cells", [cell])  # a wired CfC holds one CfC cell per layer


def _models():
    require_ncps()
    from ncps.torch import LTC, CfC
    from ncps.wirings import AutoNCP

    out = {}
    for mode in ("default", "pure", "no_gate"):
        out[f"cfc-{mode}"] = (lambda m=mode: CfC(5, 16, proj_size=3, mode=m), True)
    out["cfc64-benchmark"] = (lambda: CfC(17, 64, proj_size=6, backbone_units=128), False)
    out["cfc-tanh-2layers"] = (
        lambda: CfC(4, 8, backbone_units=16, backbone_layers=2, activation="tanh"),
        True,
    )
    out["cfc-relu"] = (lambda: CfC(4, 8, backbone_units=24, activation="relu"), True)
    out["cfc-gelu"] = (lambda: CfC(4, 8, backbone_units=16, activation="gelu"), True)
    out["cfc-silu"] = (lambda: CfC(4, 8, backbone_units=16, activation="silu"), True)
    out["cfc-no-backbone"] = (lambda: CfC(5, 12, backbone_layers=0), True)
    out["wired-cfc-autoncp"] = (lambda: CfC(17, AutoNCP(19, 6)), True)
    out["ltc-autoncp"] = (lambda: LTC(17, AutoNCP(19, 6)), True)
    out["ltc-fc"] = (lambda: LTC(5, 8), True)
    return out


@pytest.mark.parametrize(
    "name",
    [
        "cfc-default",
        "cfc-pure",
        "cfc-no_gate",
        "cfc64-benchmark",
        "cfc-tanh-2layers",
        "cfc-relu",
        "cfc-gelu",
        "cfc-silu",
        "cfc-no-backbone",
        "wired-cfc-autoncp",
        "ltc-autoncp",
        "ltc-fc",
    ],
)
def test_kernel_and_numpy_match_ncps(name, monkeypatch):
    _require_kernel()
    factory, perturbed = _models()[name]
    require_ncps().manual_seed(0)
    module = factory()
    if name.startswith("cfc-") and name[4:] in ("default", "pure", "no_gate"):
        assert module.rnn_cell.mode == name[4:]
    if perturbed:
        perturb(module, seed=3)
    fast, slow = _both_paths(module, monkeypatch)
    assert all(c._kernel is not None for c in _cells(fast)), "kernel not in use"
    assert all(c._kernel is None for c in _cells(slow)), "LIQUIDNODE_NO_KERNEL=1 ignored"
    assert fast._fused is not None and slow._fused is None  # the whole step compiled, or not
    xs, ts = inputs(module.input_size, STEPS, seed=7)
    ref = ncps_outputs(module, xs, ts)
    for policy in (fast, slow):
        got = runtime_outputs(policy, xs, ts)
        assert got.shape == ref.shape
        assert np.max(np.abs(got - ref)) <= 1e-5


def test_kernel_status_and_disable(monkeypatch):
    _require_kernel()
    assert kernel.kernel_status() == "ok"
    monkeypatch.setenv("LIQUIDNODE_NO_KERNEL", "1")
    assert kernel.load_library() is None
    assert "LIQUIDNODE_NO_KERNEL" in kernel.kernel_status()


def test_kernel_builds_into_a_fresh_cache(tmp_path, monkeypatch):
    """A new cache dir gets a freshly compiled library, and a second load reuses it."""
    _require_kernel()
    monkeypatch.setenv("LIQUIDNODE_KERNEL_CACHE", str(tmp_path))
    cc = kernel._compiler()
    first = kernel._build(cc)
    assert first.parent == tmp_path and first.exists()
    stamp = first.stat().st_mtime_ns
    assert kernel._build(cc) == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary left over


def _fresh_loader(monkeypatch, tmp_path):
    """Forget the loaded library so the next use tries again (restored after the test)."""
    monkeypatch.setattr(kernel, "_lib", None)
    monkeypatch.setattr(kernel, "_status", None)
    monkeypatch.setenv("LIQUIDNODE_KERNEL_CACHE", str(tmp_path))


def test_no_compiler_falls_back_to_numpy(monkeypatch, tmp_path):
    from liquidnode.controller.policy import random_policy

    _fresh_loader(monkeypatch, tmp_path)
    monkeypatch.setattr(kernel, "_compiler", lambda: None)
    policy = random_policy(5, 2, units=8, seed=0)
    assert all(c._kernel is None for c in _cells(policy))
    assert "no C compiler" in kernel.kernel_status()
    assert np.all(np.isfinite(policy.step(np.ones(5), 0.1)))


def test_failing_compiler_falls_back_to_numpy(monkeypatch, tmp_path):
    import shutil

    from liquidnode.controller.policy import random_policy

    if shutil.which("false") is None:
        pytest.skip("no 'false' command to stand in for a broken compiler")
    _fresh_loader(monkeypatch, tmp_path)
    monkeypatch.setattr(kernel, "_compiler", lambda: shutil.which("false"))
    policy = random_policy(5, 2, cell="ltc", units=8, seed=0)
    assert all(c._kernel is None for c in _cells(policy))
    assert kernel.kernel_status().startswith("kernel build failed")
    assert list(tmp_path.iterdir()) == []  # no half-written library left behind
