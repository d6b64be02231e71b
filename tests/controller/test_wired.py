"""Wirings and the wired CfC: same construction and same outputs as ncps."""

from __future__ import annotations

import numpy as np
import pytest

from liquidnode.controller.cells import wiring
from liquidnode.controller.cells.wired_cfc import WiredCfCCell
from liquidnode.controller.policy import random_policy
from tests.controller.ncps_reference import max_error, perturb, require_ncps

TOL = 1e-5


@pytest.mark.parametrize(
    "units,out,n_in,sparsity,seed", [(16, 3, 5, 0.5, 22222), (40, 6, 17, 0.7, 7)]
)
def test_auto_ncp_equals_ncps_bit_for_bit(units, out, n_in, sparsity, seed):
    require_ncps()
    from ncps.wirings import AutoNCP

    ref = AutoNCP(units, out, sparsity_level=sparsity, seed=seed)
    ref.build(n_in)
    ours = wiring.auto_ncp(units, out, n_in, sparsity, seed)
    np.testing.assert_array_equal(ours.adjacency, ref.adjacency_matrix)
    np.testing.assert_array_equal(ours.sensory_adjacency, ref.sensory_adjacency_matrix)
    assert ours.layers == [list(ref.get_neurons_of_layer(i)) for i in range(ref.num_layers)]
    assert ours.output_dim == ref.output_dim == out


def test_ncp_and_fully_connected_equal_ncps():
    require_ncps()
    from ncps.wirings import NCP, FullyConnected

    ref = NCP(6, 5, 2, 3, 2, 4, 2, seed=9)
    ref.build(4)
    ours = wiring.ncp(6, 5, 2, 3, 2, 4, 2, input_dim=4, seed=9)
    np.testing.assert_array_equal(ours.adjacency, ref.adjacency_matrix)
    np.testing.assert_array_equal(ours.sensory_adjacency, ref.sensory_adjacency_matrix)
    fc = FullyConnected(7, 2, erev_init_seed=5, self_connections=False)
    fc.build(3)
    ours = wiring.fully_connected(7, 3, 2, erev_init_seed=5, self_connections=False)
    np.testing.assert_array_equal(ours.adjacency, fc.adjacency_matrix)
    np.testing.assert_array_equal(ours.sensory_adjacency, fc.sensory_adjacency_matrix)


@pytest.mark.parametrize("mode", ["default", "pure", "no_gate"])
def test_wired_cfc_auto_ncp_matches_ncps_over_1000_variable_dt_steps(mode):
    require_ncps()
    from ncps.torch import CfC
    from ncps.wirings import AutoNCP

    module = CfC(5, AutoNCP(16, 3, seed=4), mode=mode)
    perturb(module, seed=8)
    assert max_error(module, steps=1000) < TOL


def test_wired_cfc_with_projection_and_plain_ncp_match_ncps():
    require_ncps()
    from ncps.torch import CfC
    from ncps.wirings import NCP

    module = CfC(4, NCP(6, 5, 2, 3, 2, 4, 2, seed=9), proj_size=3)
    perturb(module, seed=2)
    assert max_error(module, steps=300) < TOL


def test_masks_really_cut_synapses():
    policy = random_policy(5, 3, cell="wired_cfc", units=16, seed=1)
    cell = policy.cell
    tensors = cell.weights()
    rng = np.random.default_rng(0)
    for idx in range(len(cell.wiring.layers)):
        mask = tensors[f"layer_{idx}.sparsity_mask"]
        assert 0 < mask.sum() < mask.size
        for head in ("ff1", "ff2"):
            w = tensors[f"layer_{idx}.{head}.weight"]
            w[mask == 0] = rng.normal(0.0, 50.0, size=int((mask == 0).sum()))
    scrambled = WiredCfCCell(cell.config, tensors)
    h = np.zeros(cell.state_dim, np.float32)
    h2 = np.zeros(cell.state_dim, np.float32)
    for k in range(20):
        x = np.sin(np.arange(5, dtype=np.float32) + k)
        _, h = cell.step(x, h, 1.0)
        _, h2 = scrambled.step(x, h2, 1.0)
        np.testing.assert_array_equal(h, h2)


def test_state_is_in_layer_order_and_output_is_the_motor_layer():
    policy = random_policy(5, 3, cell="wired_cfc", units=16, seed=1)
    cell = policy.cell
    y, h = cell.step(np.ones(5, np.float32), np.zeros(16, np.float32), 1.0)
    np.testing.assert_array_equal(y, h[-3:])


def test_mask_that_disagrees_with_wiring_is_refused():
    policy = random_policy(5, 3, cell="wired_cfc", units=16, seed=1)
    tensors = policy.cell.weights()
    tensors["layer_1.sparsity_mask"] = np.ones_like(tensors["layer_1.sparsity_mask"])
    with pytest.raises(ValueError, match=r"layer_1\.sparsity_mask"):
        WiredCfCCell(policy.cell.config, tensors)


def test_wired_cfc_with_fully_connected_and_random_wirings_match_ncps():
    require_ncps()
    from ncps.torch import CfC
    from ncps.wirings import FullyConnected, Random

    for wiring_obj in (FullyConnected(8, 2), Random(8, 3, sparsity_level=0.5)):
        module = CfC(3, wiring_obj, mode="no_gate")
        perturb(module, seed=6)
        assert max_error(module, steps=200) < TOL


def test_from_ncps_accepts_bare_cells():
    torch = require_ncps()
    from ncps.torch import CfCCell, WiredCfCCell
    from ncps.wirings import AutoNCP

    from liquidnode.controller.ncps_import import from_ncps

    for cell in (CfCCell(4, 8, mode="pure"), WiredCfCCell(4, AutoNCP(12, 2))):
        policy = from_ncps(cell)
        x = torch.randn(1, 4)
        h = torch.zeros(1, policy.state_dim)
        for _ in range(5):
            with torch.inference_mode():
                y, h = cell(x, h, 0.7)
            got = policy.step(x[0].numpy(), 0.7)
            np.testing.assert_allclose(got, y[0].numpy(), atol=1e-5)
