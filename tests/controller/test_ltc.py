"""LTC cell: equivalence with ncps.torch.LTC (fully connected and AutoNCP, variable dt)."""

from __future__ import annotations

import numpy as np
import pytest

from liquidnode.controller.cells.ltc import LTCCell
from liquidnode.controller.policy import random_policy
from tests.controller.ncps_reference import max_error, perturb, require_ncps

TOL = 1e-5


def test_ltc_fully_connected_matches_ncps_over_1000_variable_dt_steps():
    require_ncps()
    from ncps.torch import LTC

    module = LTC(5, 12)
    perturb(module, seed=1, scale=0.05)
    assert max_error(module, steps=1000) < TOL


def test_ltc_auto_ncp_matches_ncps_over_1000_variable_dt_steps():
    require_ncps()
    from ncps.torch import LTC
    from ncps.wirings import AutoNCP

    module = LTC(5, AutoNCP(16, 3, seed=11))
    perturb(module, seed=2, scale=0.05)
    assert max_error(module, steps=1000) < TOL


@pytest.mark.parametrize(
    "mapping,implicit,unfolds", [("linear", False, 6), ("none", True, 3), ("affine", False, 1)]
)
def test_ltc_options_match_ncps(mapping, implicit, unfolds):
    require_ncps()
    from ncps.torch import LTC

    module = LTC(
        3,
        8,
        input_mapping=mapping,
        output_mapping=mapping,
        ode_unfolds=unfolds,
        implicit_param_constraints=implicit,
    )
    perturb(module, seed=4, scale=0.05)
    assert max_error(module, steps=200) < TOL


def test_ltc_state_relaxes_to_leak_potential_without_synapses():
    policy = random_policy(2, 1, cell="ltc_fc", units=4, seed=0)
    t = policy.cell.weights()
    for name in ("sparsity_mask", "sensory_sparsity_mask", "wiring.adjacency"):
        t[name] = np.zeros_like(t[name])
    t["wiring.sensory_adjacency"] = np.zeros_like(t["wiring.sensory_adjacency"])
    cell = LTCCell(policy.cell.config, t)
    vleak = t["vleak"]
    v = np.full(4, 0.9, np.float32)
    for _ in range(200):
        _, v = cell.step(np.zeros(2, np.float32), v, 1.0)
    np.testing.assert_allclose(v, vleak, atol=1e-5)


def test_ltc_mask_must_equal_adjacency():
    policy = random_policy(2, 1, cell="ltc_fc", units=4, seed=0)
    t = policy.cell.weights()
    t["sparsity_mask"] = 1.0 - t["sparsity_mask"]
    with pytest.raises(ValueError, match="sparsity_mask"):
        LTCCell(policy.cell.config, t)


def test_ltc_with_ncp_and_random_wirings_and_bare_cell():
    torch = require_ncps()
    from ncps.torch import LTC, LTCCell
    from ncps.wirings import NCP, Random

    from liquidnode.controller.ncps_import import from_ncps

    for wiring_obj in (NCP(5, 4, 2, 2, 2, 3, 2, seed=3), Random(7, 2, sparsity_level=0.6)):
        module = LTC(3, wiring_obj)
        perturb(module, seed=9, scale=0.05)
        assert max_error(module, steps=200) < TOL
    cell = LTCCell(NCP(5, 4, 2, 2, 2, 3, 2, seed=4), in_features=3)
    policy = from_ncps(cell)
    x, h = torch.randn(1, 3), torch.zeros(1, 11)
    for _ in range(5):
        with torch.inference_mode():
            y, h = cell(x, h, 0.5)
        np.testing.assert_allclose(policy.step(x[0].numpy(), 0.5), y[0].numpy(), atol=1e-5)
