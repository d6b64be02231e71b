"""Policy: observation normalisation, time input, action mapping, state handling."""

from __future__ import annotations

import numpy as np
import pytest

from liquidnode.controller.cells import Projected
from liquidnode.controller.errors import SpaceMismatchError
from liquidnode.controller.policy import Policy, random_policy
from tests.controller.ncps_reference import require_ncps


class _Echo:
    """A cell that returns its input and records ts (tests the policy's own arithmetic)."""

    def __init__(self, n: int) -> None:
        self.input_size = self.output_dim = self.state_dim = n
        self.seen_ts: list[float] = []
        self.seen_x: list[np.ndarray] = []

    def step(self, x, h, ts):
        self.seen_ts.append(ts)
        self.seen_x.append(x.copy())
        return x.copy(), h + 1

    def weights(self):
        return {}


def _echo_policy(**meta):
    base = random_policy(2, 2, cell="cfc", units=2)
    base.metadata.normalization = meta.pop("normalization", {"clip": None})
    base.metadata.action = meta.pop("action", {"squash": "none"})
    base.metadata.time_scale = meta.pop("time_scale", 1.0)
    cell = _Echo(2)
    return Policy(base.metadata, cell, **meta), cell


def test_normalise_clip_squash_scale_offset():
    policy, cell = _echo_policy(
        normalization={"clip": 2.0},
        action={"squash": "tanh"},
        obs_mean=np.array([1.0, -1.0]),
        obs_std=np.array([2.0, 0.5]),
        action_scale=np.array([3.0, 0.5]),
        action_offset=np.array([0.1, -0.2]),
    )
    action = policy.step(np.array([2.0, 3.0]), 0.01)
    x = np.array([0.5, 2.0])  # (2-1)/2, clip((3+1)/0.5=8 -> 2)
    np.testing.assert_allclose(cell.seen_x[0], x, rtol=1e-7)
    np.testing.assert_allclose(action, [0.1, -0.2] + np.array([3.0, 0.5]) * np.tanh(x), rtol=1e-6)
    assert action.dtype == np.float64 and action.shape == (2,)
    assert cell.seen_x[0].dtype == np.float32


def test_defaults_are_the_identity():
    policy, _ = _echo_policy()
    obs = np.array([7.5, -123.0])
    np.testing.assert_allclose(policy.step(obs, 0.02), obs)


def test_cell_time_input_is_dt_times_time_scale():
    policy, cell = _echo_policy(time_scale=25.0)
    policy.step(np.zeros(2), 0.04)
    policy.step(np.zeros(2), 0.05)
    np.testing.assert_allclose(cell.seen_ts, [1.0, 1.25])


def test_state_get_set_reset_and_constant_memory():
    policy = random_policy(3, 2, cell="cfc", units=8, seed=1)
    assert policy.state.dtype == np.float32 and policy.state.shape == (8,)
    obs = np.array([0.1, 0.2, 0.3])
    first = policy.step(obs, 0.02)
    snapshot = policy.state
    second = policy.step(obs, 0.02)
    assert not np.array_equal(first, second)  # the state carries memory
    snapshot_copy = snapshot.copy()
    policy.step(obs, 0.02)
    np.testing.assert_array_equal(snapshot, snapshot_copy)  # getter returned a copy
    policy.state = snapshot
    np.testing.assert_array_equal(policy.step(obs, 0.02), second)
    policy.reset()
    np.testing.assert_array_equal(policy.state, np.zeros(8, np.float32))
    np.testing.assert_array_equal(policy.step(obs, 0.02), first)
    with pytest.raises(SpaceMismatchError, match=r"state shape \(7,\)"):
        policy.state = np.zeros(7)


def test_bad_observation_and_dt():
    policy = random_policy(3, 2, cell="ltc", units=8)
    with pytest.raises(SpaceMismatchError, match=r"observation shape \(4,\)"):
        policy.step(np.zeros(4), 0.02)
    for dt in (0.0, -0.01, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="dt must be"):
            policy.step(np.zeros(3), dt)


@pytest.mark.parametrize("kind", ["cfc", "wired_cfc", "ltc", "ltc_fc"])
def test_random_policy_kinds(kind):
    policy = random_policy(5, 2, cell=kind, units=10, seed=4, env_id="X-v0")
    assert (policy.obs_dim, policy.act_dim) == (5, 2)
    assert not policy.is_trained
    assert policy.metadata.env_id == "X-v0"
    action = policy.step(np.ones(5), 0.01)
    assert np.all(np.isfinite(action))
    again = random_policy(5, 2, cell=kind, units=10, seed=4)
    np.testing.assert_array_equal(again.step(np.ones(5), 0.01), action)
    if kind == "cfc":
        assert isinstance(policy.cell, Projected)


def test_from_ncps_refuses_mixed_memory_and_foreign_modules():
    torch = require_ncps()
    from ncps.torch import CfC

    from liquidnode.controller.ncps_import import from_ncps

    with pytest.raises(ValueError, match="mixed_memory=True"):
        from_ncps(CfC(3, 8, mixed_memory=True))
    with pytest.raises(TypeError, match=r"expects an ncps\.torch"):
        from_ncps(torch.nn.LSTM(3, 8))


def test_from_ncps_with_time_scale_runs_on_seconds(tmp_path):
    """A module trained with ts=1 per step runs at 50 Hz with time_scale=50, after a save/load."""
    torch = require_ncps()
    from ncps.torch import CfC

    from liquidnode.controller.ncps_import import from_ncps

    module = CfC(3, 8, proj_size=2, mode="no_gate")
    policy = from_ncps(module, time_scale=50.0, control_rate_hz=50.0)
    policy.save(tmp_path / "p.safetensors")
    policy = Policy.load(tmp_path / "p.safetensors")
    xs = np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32)
    with torch.inference_mode():
        ref = module(torch.from_numpy(xs)[None])[0][0].numpy()  # default ts = 1.0
    got = np.stack([policy.step(x, 0.02) for x in xs])
    np.testing.assert_allclose(got, ref, atol=1e-5)


@pytest.mark.parametrize("kind", ["cfc", "wired_cfc", "ltc"])
def test_deepcopy_and_pickle_give_independent_policies(kind):
    import copy
    import pickle

    policy = random_policy(
        3, 2, cell=kind, units=8, seed=5, obs_mean=np.ones(3), action_scale=np.full(2, 2.0)
    )
    obs = np.array([0.3, -0.1, 0.7])
    policy.step(obs, 0.02)  # a non-zero state to carry over
    for make in (copy.deepcopy, lambda p: pickle.loads(pickle.dumps(p))):
        clone = make(policy)
        np.testing.assert_array_equal(clone.state, policy.state)
        before = policy.state
        for _ in range(3):
            clone.step(obs, 0.02)
        np.testing.assert_array_equal(policy.state, before)  # the clone has its own state
        clone.state = before
        np.testing.assert_array_equal(clone.step(obs, 0.02), policy.step(obs, 0.02))
