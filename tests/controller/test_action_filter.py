"""The action low-pass (controller/action_filter.py) as the runtime policy applies it."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from liquidnode.controller.action_filter import LowPass, check_cutoff, low_pass_alpha
from liquidnode.controller.policy import Policy, random_policy

SCALE = np.array([2.0, 0.5])
OFFSET = np.array([0.1, -0.3])


def _policy(low_pass_hz: float | None) -> Policy:
    """The same random CfC policy, with or without an action low-pass."""
    action = {"squash": "tanh", **({} if low_pass_hz is None else {"low_pass_hz": low_pass_hz})}
    return random_policy(
        5,
        2,
        units=8,
        seed=4,
        action_scale=SCALE,
        action_offset=OFFSET,
        action=action,
        time_scale=20.0,
        control_rate_hz=20.0,
    )


def _inputs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)) * 2.0, 0.05 * (1.0 + rng.uniform(-0.4, 0.4, n))


def test_alpha_is_a_first_order_lag_sampled_at_dt():
    assert low_pass_alpha(5.0, 0.05) == pytest.approx(1.0 - math.exp(-math.pi / 2), rel=1e-15)
    assert low_pass_alpha(5.0, 0.05) == pytest.approx(0.7921, abs=1e-4)  # the docstring's
    assert low_pass_alpha(3.0, 0.05) == pytest.approx(0.6103, abs=1e-4)
    assert low_pass_alpha(1.0, 1e-9) == pytest.approx(2 * math.pi * 1e-9, rel=1e-8)
    assert low_pass_alpha(1e6, 1.0) == 1.0
    # two half ticks filter a constant input as one whole tick does
    one, two = LowPass(2.0, np.zeros(1)), LowPass(2.0, np.zeros(1))
    one.step(np.ones(1), 0.05)
    two.step(np.ones(1), 0.025)
    two.step(np.ones(1), 0.025)
    assert two.command[0] == pytest.approx(one.command[0], rel=1e-14)


@pytest.mark.parametrize("bad", [0, -1.0, math.inf, math.nan, True, "5", None])
def test_bad_cut_off_is_refused(bad):
    with pytest.raises(ValueError, match="cut-off"):
        check_cutoff(bad)


def test_policy_filters_its_squashed_action_with_the_period_it_is_given():
    filtered, plain = _policy(3.0), _policy(None)
    assert filtered.state_dim == plain.state_dim + 2
    obs, dt = _inputs(300)
    z = np.zeros(2)
    for k in range(len(dt)):
        u = (plain.step(obs[k], dt[k]) - OFFSET) / SCALE  # the squashed action, [-1, 1]
        z = z + (1.0 - math.exp(-2.0 * math.pi * 3.0 * dt[k])) * (u - z)
        # (the plain policy runs the compiled step, float32 sums in another order: ~1e-7)
        np.testing.assert_allclose(filtered.step(obs[k], dt[k]), OFFSET + SCALE * z, atol=1e-5)
        np.testing.assert_allclose(filtered.state[-2:], z, atol=1e-7)  # float32 in the state
        np.testing.assert_allclose(filtered.state[:-2], plain.state, atol=1e-5)
    # the filter smooths: the per-tick change of the command is smaller than the cell's
    a_f = np.array([filtered.step(o, 0.05) for o in obs])
    a_p = np.array([plain.step(o, 0.05) for o in obs])
    assert np.abs(np.diff(a_f, axis=0)).mean() < 0.8 * np.abs(np.diff(a_p, axis=0)).mean()


def test_reset_starts_the_filter_from_the_action_space_centre():
    filtered, plain = _policy(4.0), _policy(None)
    obs, dt = _inputs(20, seed=1)
    for k in range(len(dt)):
        filtered.step(obs[k], dt[k])
    filtered.reset()
    plain.reset()
    assert not filtered.state.any()
    u = (plain.step(obs[0], 0.05) - OFFSET) / SCALE
    expected = OFFSET + SCALE * low_pass_alpha(4.0, 0.05) * u
    np.testing.assert_allclose(filtered.step(obs[0], 0.05), expected, atol=1e-7)


def test_a_copy_a_reloaded_file_and_a_set_state_step_alike(tmp_path):
    policy = _policy(2.0)
    obs, dt = _inputs(50, seed=2)
    for k in range(25):
        policy.step(obs[k], dt[k])
    twin = copy.deepcopy(policy)  # keeps the filter's float64 command
    path = tmp_path / "p.safetensors"
    policy.save(path)
    loaded = Policy.load(path)
    assert loaded.metadata.action == {"squash": "tanh", "low_pass_hz": 2.0}
    loaded.state = policy.state  # the float32 state: equal to rounding
    for k in range(25, 50):
        a = policy.step(obs[k], dt[k])
        np.testing.assert_array_equal(twin.step(obs[k], dt[k]), a)
        np.testing.assert_allclose(loaded.step(obs[k], dt[k]), a, atol=1e-6)
