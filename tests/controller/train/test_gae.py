"""GAE against hand-computed values."""

import numpy as np
import pytest

from liquidnode.controller.train.gae import compute_gae


def test_gae_matches_hand_computed_case_with_episode_end():
    # One env, 3 steps; the episode ends after step 1 (no bootstrap across it).
    gamma, lam = 0.9, 0.5
    rewards = np.array([[1.0], [2.0], [3.0]])
    values = np.array([[0.5], [1.0], [2.0]])
    dones = np.array([[0.0], [1.0], [0.0]])
    last_value = np.array([4.0])
    # deltas: t2 = 3 + 0.9*4 - 2 = 4.6 ; t1 = 2 + 0 - 1 = 1.0 ; t0 = 1 + 0.9*1.0 - 0.5 = 1.4
    # A2 = 4.6 ; A1 = 1.0 (done cuts the trace) ; A0 = 1.4 + 0.9*0.5*1.0 = 1.85
    adv, ret = compute_gae(rewards, values, dones, last_value, gamma, lam)
    np.testing.assert_allclose(adv[:, 0], [1.85, 1.0, 4.6], rtol=1e-6)
    np.testing.assert_allclose(ret[:, 0], [2.35, 2.0, 6.6], rtol=1e-6)
    assert adv.dtype == np.float32


def test_gae_lambda_one_is_discounted_return_minus_value():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(5, 2))
    values = rng.normal(size=(5, 2))
    dones = np.zeros((5, 2))
    last = rng.normal(size=2)
    gamma = 0.97
    adv, ret = compute_gae(rewards, values, dones, last, gamma, 1.0)
    expected = np.zeros_like(rewards)
    running = last
    for t in reversed(range(5)):
        running = rewards[t] + gamma * running
        expected[t] = running
    np.testing.assert_allclose(ret, expected, rtol=1e-5)
    np.testing.assert_allclose(adv, expected - values, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lam", [0.0])
def test_gae_lambda_zero_is_one_step_td(lam):
    rewards = np.array([[1.0, -1.0], [0.5, 2.0]])
    values = np.array([[0.2, 0.1], [0.3, -0.4]])
    dones = np.array([[0.0, 1.0], [0.0, 0.0]])
    last = np.array([1.0, 2.0])
    adv, _ = compute_gae(rewards, values, dones, last, 0.5, lam)
    td = np.array(
        [[1.0 + 0.5 * 0.3 - 0.2, -1.0 - 0.1], [0.5 + 0.5 * 1.0 - 0.3, 2.0 + 0.5 * 2.0 + 0.4]]
    )
    np.testing.assert_allclose(adv, td, rtol=1e-6)
