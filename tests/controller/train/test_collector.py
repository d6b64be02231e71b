"""The collection seam without Ray: a slice of a run's environments is built and seeded as
the same environments of the whole run, slices join back in environment order, and the
learner's reward post-processing matches step-by-step scaling."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the [train] extra")

from liquidnode.controller.train.config import TrainConfig  # noqa: E402
from liquidnode.controller.train.envs import env_info, make_vector_env  # noqa: E402
from liquidnode.controller.train.normalization import RewardScaler  # noqa: E402
from liquidnode.controller.train.rollout.buffer import RolloutBuffer  # noqa: E402
from liquidnode.controller.train.rollout.collector import (  # noqa: E402
    Acting,
    Agent,
    Rollout,
    VectorCollector,
    scaled_rewards,
)

ENV = "InvertedPendulum-v5"


def _collector(num: int, first: int, seed: int = 4) -> VectorCollector:
    envs = make_vector_env(ENV, num, 0.1, seed, randomize=ENV, asynchronous=False, first=first)
    return VectorCollector(envs, Acting.of(env_info(ENV)), update_stats=False, first_env=first)


def test_slices_see_the_whole_runs_environments_and_join_in_order():
    cfg = TrainConfig(env=ENV, units=4)
    torch.manual_seed(0)
    agent = Agent.build(cfg, env_info(ENV))
    whole, low, high = _collector(4, 0), _collector(2, 0), _collector(2, 2)
    try:
        for c in (whole, low, high):
            c.reset(seed=11)
        parts = [low.collect(agent, 8), high.collect(agent, 8)]
        joined = Rollout.concatenate(parts)
        full = whole.collect(agent, 8)
    finally:
        for c in (whole, low, high):
            c.close()
    assert full.raw_obs is not None and joined.raw_obs is not None
    # Same envs, same reset seeds, same randomisation: identical first observations.
    np.testing.assert_array_equal(joined.raw_obs[0], full.raw_obs[0])
    assert not np.array_equal(full.raw_obs[0, 0], full.raw_obs[0, 2])  # envs really differ
    assert joined.buffer.obs.shape == (8, 4, 4)
    np.testing.assert_array_equal(joined.buffer.actions[:, 2:], parts[1].buffer.actions)
    np.testing.assert_array_equal(joined.last_obs[:2], parts[0].last_obs)
    assert [t for t, _ in joined.episodes] == sorted(t for t, _ in joined.episodes)


def test_one_read_only_part_joins_into_arrays_the_trainer_can_write():
    """One Ray worker's rollout comes from the object store read-only (train --workers 1)."""
    cfg = TrainConfig(env=ENV, units=4)
    torch.manual_seed(0)
    agent = Agent.build(cfg, env_info(ENV))
    collector = _collector(2, 0)
    try:
        collector.reset(seed=3)
        part = collector.collect(agent, 4)
    finally:
        collector.close()
    for arr in (part.rewards, part.truncated, part.bootstrap, part.last_obs):
        arr.flags.writeable = False
    for arr in part.buffer.as_dict().values():
        arr.flags.writeable = False
    joined = Rollout.concatenate([part])
    joined.rewards[:] = 0.0
    for arr in joined.buffer.as_dict().values():
        assert arr.flags.writeable
    np.testing.assert_array_equal(joined.buffer.actions, part.buffer.actions)


def test_scaled_rewards_are_the_step_by_step_scaling_plus_the_bootstrap():
    rng = np.random.default_rng(0)
    steps, n = 6, 3
    rewards = rng.normal(size=(steps, n))
    dones = np.zeros((steps, n), dtype=np.float32)
    dones[2, 1] = dones[4, 0] = 1.0
    truncated = np.zeros((steps, n), dtype=bool)
    truncated[4, 0] = True
    bootstrap = np.zeros((steps, n), dtype=np.float32)
    bootstrap[4, 0] = 2.5
    buffer = RolloutBuffer.empty(steps, n, 4, 1, 1)
    buffer.dones[:] = dones
    rollout = Rollout(
        buffer, rewards, truncated, bootstrap, np.zeros((n, 4)), np.zeros(n), np.zeros((n, 0))
    )
    got = scaled_rewards(rollout, RewardScaler(n, 0.9), 0.9)
    ref, expect = RewardScaler(n, 0.9), np.zeros((steps, n), dtype=np.float32)
    for t in range(steps):
        expect[t] = ref(rewards[t], dones[t].astype(bool))
    expect[4, 0] += np.float32(0.9 * 2.5)
    np.testing.assert_allclose(got, expect, rtol=1e-6)
    np.testing.assert_array_equal(scaled_rewards(rollout, None, 0.0), rewards.astype(np.float32))


def test_episode_ticks_cuts_training_episodes_as_time_limit_truncations():
    # Actions ~0 (zero actor weights, std 0.7 % of the range): the pendulum stands 15 ticks.
    cfg = TrainConfig(env=ENV, units=4, episode_ticks=5, init_log_std=-5.0)
    torch.manual_seed(0)
    agent = Agent.build(cfg, env_info(ENV))
    with torch.no_grad():
        for name, param in agent.actor.named_parameters():
            if name != "log_std":
                param.zero_()
    cut = make_vector_env(ENV, 1, 0.0, 3, asynchronous=False, episode_ticks=cfg.episode_ticks)
    full = make_vector_env(ENV, 1, 0.0, 3, asynchronous=False)
    rollouts = []
    for envs in (cut, full):
        collector = VectorCollector(envs, Acting.of(env_info(ENV)), update_stats=False)
        try:
            collector.reset(seed=5)
            rollouts.append(collector.collect(agent, 15))
        finally:
            collector.close()
    short, long = rollouts
    # Ticks 5, 10 and 15 end an episode by the time limit; each bootstraps from the critic.
    assert np.flatnonzero(short.truncated[:, 0]).tolist() == [4, 9, 14]
    assert np.all(short.bootstrap[[4, 9, 14], 0] != 0.0)
    assert short.episodes == [(4, 5.0), (9, 5.0), (14, 5.0)]  # 1 per tick standing
    # The env's own limit (1000 ticks) cuts nothing in 15 ticks, and the pendulum stands.
    assert not long.truncated.any() and long.episodes == []


def test_obs_cost_shapes_the_training_reward_only():
    """--obs-cost 0=2,1>0.01=0.5,1<-0.01=3: each training reward is the env's minus
    2 x0**2 + 0.5 max(0, x1 - 0.01) + 3 max(0, -0.01 - x1) of the observation after the step,
    the same trajectory otherwise; the config parser reads squares and one-sided hinges."""
    from liquidnode.controller.train.config import parse_obs_cost

    assert parse_obs_cost("0=2, 1=0.5") == ((0, 2.0, "sq", 0.0), (1, 0.5, "sq", 0.0))
    assert parse_obs_cost("8>5.0=1, 2<-0.5=0.25") == ((8, 1.0, ">", 5.0), (2, 0.25, "<", -0.5))
    spec = "0=2,1>0.01=0.5,1<-0.01=3"
    plain = make_vector_env(ENV, 1, 0.0, 3, asynchronous=False)
    shaped = make_vector_env(ENV, 1, 0.0, 3, asynchronous=False, obs_cost=spec)
    hinges = set()
    try:
        obs_a, _ = plain.reset(seed=9)
        obs_b, _ = shaped.reset(seed=9)
        np.testing.assert_array_equal(obs_a, obs_b)
        for t in range(20):
            action = np.array([[0.4 * np.sin(t)]], dtype=np.float32)
            obs_a, r_a, *_ = plain.step(action)
            obs_b, r_b, term, trunc, info = shaped.step(action)
            np.testing.assert_array_equal(obs_a, obs_b)
            seen = info["final_obs"][0] if term[0] or trunc[0] else obs_b[0]  # before autoreset
            above, below = max(0.0, seen[1] - 0.01), max(0.0, -0.01 - seen[1])
            hinges |= {"above"} if above > 0 else {"below"} if below > 0 else set()
            cost = 2.0 * seen[0] ** 2 + 0.5 * above + 3.0 * below
            assert r_b[0] == pytest.approx(r_a[0] - cost, abs=1e-12)
            where = info["final_info"] if term[0] or trunc[0] else info
            assert where["obs_cost"][0] == pytest.approx(cost)
        assert cost > 1e-4  # the cart has moved: the cost is not trivially zero
        assert hinges == {"above", "below"}  # the pole swung past both limits: both hinges bit
    finally:
        plain.close()
        shaped.close()
