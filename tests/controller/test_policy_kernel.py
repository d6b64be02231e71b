"""The compiled ``Policy.step`` (controller/policy_kernel.py) equals the numpy one.

Each policy is built twice from the same weights, with the kernel and with
``LIQUIDNODE_NO_KERNEL=1``, with every stage of the step switched on (normalisation, clip,
tanh squash, scale and offset) and rolled out for 1,000 steps with variable dt: the numpy
cell's exp/tanh and BLAS sums differ from the kernel's in the last float32 bits, so they agree
within 1e-5. Around the same compiled cell step, the fused stages give the same state to the
bit and the same action to a float64 ulp (libm's ``tanh`` vs numpy's).
"""

from __future__ import annotations

import numpy as np
import pytest

from liquidnode.controller.cells import kernel
from liquidnode.controller.policy import Policy, random_policy
from tests.controller.ncps_reference import numpy_only

STEPS = 1000


def _require_kernel() -> None:
    if kernel.load_library() is None:
        pytest.skip(f"compiled kernel unavailable: {kernel.kernel_status()}")


def _build(cell: str, units: int, options: dict, obs_dim: int = 5, act_dim: int = 3) -> Policy:
    rng = np.random.default_rng(4)
    return random_policy(
        obs_dim,
        act_dim,
        cell=cell,
        units=units,
        seed=2,
        cell_options=options,
        obs_mean=rng.normal(size=obs_dim),
        obs_std=rng.uniform(0.2, 3.0, size=obs_dim),
        action_scale=rng.uniform(0.5, 4.0, size=act_dim),
        action_offset=rng.normal(size=act_dim),
        normalization={"clip": 1.5},
        action={"squash": "tanh"},
        time_scale=50.0,
    )


CASES = {
    "cfc-default-proj": ("cfc", 16, {"mode": "default"}),
    "cfc-pure-proj": ("cfc", 16, {"mode": "pure"}),
    "cfc-no_gate-proj": ("cfc", 16, {"mode": "no_gate"}),
    "cfc-backbone-128": ("cfc", 64, {"backbone_units": 128}),
    "wired-cfc-autoncp": ("wired_cfc", 12, {}),
    "wired-cfc-no_gate": ("wired_cfc", 10, {"mode": "no_gate"}),
    "ltc-autoncp": ("ltc", 12, {}),
    "ltc-fc": ("ltc_fc", 8, {}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_compiled_step_equals_numpy_step(name):
    _require_kernel()
    cell, units, options = CASES[name]
    fast = _build(cell, units, options)
    slow = numpy_only(lambda: _build(cell, units, options))
    assert fast._fused is not None and slow._fused is None
    rng = np.random.default_rng(9)
    obs = rng.normal(scale=3.0, size=(STEPS, fast.obs_dim))  # some clip, some do not
    dts = rng.uniform(0.5, 1.5, size=STEPS) / 50.0
    fast.reset()
    slow.reset()
    worst = 0.0
    for o, dt in zip(obs, dts, strict=True):
        a, b = fast.step(o, float(dt)), slow.step(o, float(dt))
        assert a.dtype == np.float64 and a.shape == (fast.act_dim,)
        worst = max(worst, float(np.max(np.abs(a - b))))
    assert worst <= 1e-5, worst
    np.testing.assert_allclose(fast.state, slow.state, atol=1e-5)


def test_compiled_stages_are_bit_exact_around_the_compiled_cell():
    """No ``proj_size``: the fused call equals the numpy stages of ``Policy.step`` around the
    same compiled cell step: the float32 state to the bit, the float64 action to an ulp."""
    _require_kernel()
    policy = _build("cfc", 3, {"mode": "default"}, act_dim=3)
    assert policy.metadata.cell.get("proj_size") is None and policy._fused is not None
    cell, h = policy.cell, np.zeros(3, np.float32)
    rng = np.random.default_rng(1)
    for _ in range(200):
        o = rng.normal(scale=3.0, size=5)
        x = ((o - policy._mean64) * policy._inv_std64).astype(np.float32)
        x = np.maximum(np.minimum(x, 1.5), -1.5)
        y, h = cell.step(x, h, 0.02 * 50.0)
        h = h.copy()
        expected = np.tanh(y, dtype=np.float64) * policy._scale64 + policy._offset64
        # float64 tanh: libm's vs numpy's own, within an ulp of each other
        np.testing.assert_allclose(policy.step(o, 0.02), expected, rtol=0, atol=1e-15)
        np.testing.assert_array_equal(policy.state, h)


def test_state_lives_in_the_compiled_step_and_the_cell_stays_independent():
    _require_kernel()
    policy = _build("cfc", 16, {})
    assert policy._fused is not None
    obs = np.linspace(-1, 1, 5)
    first = policy.step(obs, 0.02)
    snapshot = policy.state
    second = policy.step(obs, 0.02)
    assert not np.array_equal(first, second)
    # stepping the cell directly uses buffers of its own, not the policy's state
    policy.cell.step(np.ones(5, np.float32), np.ones(16, np.float32), 1.0)
    policy.state = snapshot
    np.testing.assert_array_equal(policy.step(obs, 0.02), second)
    policy.reset()
    np.testing.assert_array_equal(policy.state, np.zeros(16, np.float32))
    np.testing.assert_array_equal(policy.step(obs, 0.02), first)
    returned = policy.step(obs, 0.02)
    returned[:] = 99.0  # the caller owns the returned array
    assert not np.any(policy.step(obs, 0.02) == 99.0)
