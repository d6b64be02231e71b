"""CfC cell: equivalence with ncps.torch.CfC for every mode, backbone and projection."""

from __future__ import annotations

import numpy as np
import pytest

from liquidnode.controller.cells.cfc import CfCCell
from liquidnode.controller.cells.kernel import kernel_status
from liquidnode.controller.policy import random_policy
from tests.controller.ncps_reference import max_error, numpy_only, perturb, require_ncps

TOL = 1e-5


@pytest.mark.parametrize("mode", ["default", "pure", "no_gate"])
@pytest.mark.parametrize("proj_size", [None, 3])
def test_cfc_matches_ncps_over_1000_variable_dt_steps(mode, proj_size):
    require_ncps()
    from ncps.torch import CfC

    module = CfC(5, 16, proj_size=proj_size, mode=mode)
    perturb(module, seed=3)
    assert max_error(module, steps=1000) < TOL


@pytest.mark.parametrize(
    "activation,layers,units,dropout",
    [
        ("tanh", 1, 32, 0.0),
        ("relu", 2, 24, 0.3),  # dropout is a training-time layer: ignored at inference
        ("gelu", 1, 16, 0.0),
        ("silu", 3, 16, 0.1),
        ("lecun_tanh", 0, 128, 0.0),  # no backbone: heads see [x, h] directly
    ],
)
def test_cfc_backbone_variations_match_ncps(activation, layers, units, dropout):
    require_ncps()
    from ncps.torch import CfC

    module = CfC(
        4,
        8,
        activation=activation,
        backbone_layers=layers,
        backbone_units=units,
        backbone_dropout=dropout,
    )
    perturb(module, seed=5)
    assert max_error(module, steps=200) < TOL


def test_cfc_64_units_with_projection_like_halfcheetah():
    require_ncps()
    from ncps.torch import CfC

    module = CfC(17, 64, proj_size=6, backbone_units=128)
    assert max_error(module, steps=300) < TOL


def _cell(mode="default", numpy=False):
    def build():
        return random_policy(3, 6, cell="cfc", units=6, seed=2, cell_options={"mode": mode}).cell

    return numpy_only(build) if numpy else build()


@pytest.mark.parametrize("numpy", [False, True])
@pytest.mark.parametrize("mode", ["default", "pure", "no_gate"])
def test_state_argument_may_alias_returned_state_buffer(numpy, mode):
    cell = _cell(mode, numpy)
    # the numpy path runs without the kernel; the other one with it wherever it builds
    kernel_on = not numpy and kernel_status() == "ok"
    assert (cell._kernel is not None) == kernel_on
    x = np.array([0.3, -0.2, 1.0], np.float32)
    h_alias = np.zeros(6, np.float32)
    h_copy = np.zeros(6, np.float32)
    for _ in range(5):
        _, h_alias = cell.step(x, h_alias, 0.7)
        _, h_new = cell.step(x, h_copy.copy(), 0.7)
        h_copy = h_new.copy()
        np.testing.assert_array_equal(h_alias, h_copy)


def test_elapsed_time_changes_the_update_and_pure_mode_decays_towards_a():
    cell = _cell("default")
    x = np.ones(3, np.float32)
    h = np.zeros(6, np.float32)
    short = cell.step(x, h, 0.1)[0].copy()
    long = cell.step(x, h, 10.0)[0].copy()
    assert not np.allclose(short, long)
    pure = _cell("pure")
    t = pure.weights()
    # as ts -> inf, exp(-ts * ...) -> 0 and h' -> A
    out = pure.step(x, h, 1e4)[0]
    np.testing.assert_allclose(out, t["A"], atol=1e-6)


def test_cfc_rejects_unknown_mode_and_wrong_shapes():
    cell = _cell()
    config = dict(cell.config, mode="fancy")
    with pytest.raises(ValueError, match="mode"):
        CfCCell(config, cell.weights())
    tensors = cell.weights()
    tensors["ff1.weight"] = tensors["ff1.weight"][:, :-1]
    with pytest.raises(ValueError, match=r"ff1\.weight"):
        CfCCell(cell.config, tensors)
