"""``liquidnode train --privileged-critic``: an asymmetric actor-critic under randomisation.

The randomised env reports what it drew (and the push acting now) as ``info["privileged"]``;
the collector hands each step's features to the critic with the observation they go with (the
ended episode's for a truncated episode's bootstrap, the new episode's after an auto-reset),
and the run trains, checkpoints and resumes with the wider critic. The actor, and so the
exported policy, never sees the features.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the [train] extra")

from liquidnode.controller.errors import LiquidNodeError  # noqa: E402
from liquidnode.controller.policy import Policy  # noqa: E402
from liquidnode.controller.train import checkpoint as ckpt  # noqa: E402
from liquidnode.controller.train.agent import Critic  # noqa: E402
from liquidnode.controller.train.envs import (  # noqa: E402
    env_info,
    make_env,
    make_vector_env,
    privileged_dim,
)
from liquidnode.controller.train.ppo import train  # noqa: E402
from liquidnode.controller.train.rollout.collector import (  # noqa: E402
    Acting,
    Agent,
    VectorCollector,
)
from liquidnode.sim.randomization.perturbed_physics import PRIVILEGED_FEATURES  # noqa: E402

from .quick_config import tiny_config  # noqa: E402

ENV = "InvertedPendulum-v5"  # 25 Hz: a 40 ms control period
K = len(PRIVILEGED_FEATURES)

SPEC = """
[latency]
ticks = [0.0, 1.0]
ms = [0.0, 20.0]

[observation]
noise = [0.0, 0.05]
scale = [0.335, 0.072, 0.643, 1.223]

[dynamics]
mass = [0.5, 1.5]
damping = [0.8, 1.2]

[push]
impulse = 1.0
interval_s = [0.2, 0.3]
duration_s = 0.1
bodies = ["pole"]
"""


def test_the_features_place_each_draw_in_its_range_and_see_the_push_acting_now(tmp_path: Path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    env = make_env(ENV, randomize=str(spec), randomize_seed=4)
    physics = env.get_wrapper_attr("physics")
    try:
        for seed in (1, 2, 3):
            _, info = env.reset(seed=seed)
            d = env.get_wrapper_attr("draw")
            expect = [
                2 * (d.latency_s / 0.04) / 1.5 - 1,  # 0 .. 1 tick + 20 ms = 0 .. 1.5 ticks
                2 * (d.mass - 0.5) - 1,
                0.0,  # friction fixed by the spec
                2 * (d.damping - 0.8) / 0.4 - 1,
                0.0,  # motor gain fixed
                2 * d.noise / 0.05 - 1,
                0.0,  # the first push starts 0.2 s or more into the episode
                0.0,
            ]
            np.testing.assert_allclose(info["privileged"], expect, atol=1e-6)
            assert info["privileged"].shape == (K,) and info["privileged"].dtype == np.float32
            pushed, quiet = 0, 0
            for _ in range(25):  # 1 s: pushes of 0.1 s every 0.2-0.3 s
                _, _, terminated, _, info = env.step(np.zeros(1))
                f = info["privileged"]
                np.testing.assert_allclose(f[:6], expect[:6], atol=1e-6)  # per episode
                acting = physics._push_start <= physics.clock < physics._push_end
                if acting:  # a fixed 1 N s impulse is always the largest force: unit length
                    assert np.hypot(f[6], f[7]) == pytest.approx(1.0, abs=1e-6)
                    pushed += 1
                else:
                    assert f[6] == f[7] == 0.0
                    quiet += 1
                if terminated:
                    break
            assert pushed >= 2 and quiet >= 2
    finally:
        env.close()
    assert privileged_dim(ENV, str(spec)) == K


class RecordingCritic(Critic):
    """A critic that remembers the privileged features of every call."""

    def __init__(self, obs_dim: int, units: int) -> None:
        super().__init__(obs_dim, units)
        self.calls: list[np.ndarray] = []

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        assert extra is not None
        self.calls.append(extra.numpy().copy())
        return super().forward(x, extra)


def test_the_critic_gets_each_steps_features_and_the_ended_episodes_for_a_bootstrap():
    info = env_info(ENV)
    envs = make_vector_env(ENV, 3, 0.0, 5, randomize=ENV, asynchronous=False, episode_ticks=6)
    collector = VectorCollector(envs, Acting.of(info, None, K))
    torch.manual_seed(0)
    agent = Agent.build(tiny_config(Path("."), privileged_critic=True, randomize=ENV), info, K)
    assert agent.critic.net[0].in_features == info.obs_dim + K
    assert agent.actor.cell.rnn_cell.input_size == info.obs_dim  # the actor is not told
    critic = RecordingCritic(info.obs_dim + K, 64)
    agent = Agent(agent.actor, critic, agent.obs_norm)
    try:
        collector.reset(seed=3)
        rollout = collector.collect(agent, 20)
        now = [envs.envs[i].get_wrapper_attr("physics").privileged() for i in range(3)]
        masses = [envs.envs[i].get_wrapper_attr("draw").mass for i in range(3)]
    finally:
        collector.close()
    buf = rollout.buffer
    assert buf.privileged.shape == (20, 3, K)
    mass = buf.privileged[:, :, 1]
    for i in range(3):
        episodes = np.split(mass[:, i], np.flatnonzero(buf.starts[:, i])[1:])
        assert len(episodes) >= 3  # 20 ticks of episodes cut at 6 (or ended by a fall)
        assert all(np.all(e == e[0]) for e in episodes)  # constant within an episode
        assert len({float(e[0]) for e in episodes}) == len(episodes)  # a new draw each
    np.testing.assert_array_equal(rollout.last_privileged, now)
    np.testing.assert_allclose(rollout.last_privileged[:, 1], 2 * (np.array(masses) - 0.5) - 1,
                               atol=1e-6)  # fmt: skip
    # the calls in step order: each step's values, then (where an episode was cut) a bootstrap
    calls = iter(critic.calls)
    for t in range(20):
        np.testing.assert_array_equal(next(calls), buf.privileged[t])
        cut = np.flatnonzero(rollout.truncated[t])
        if cut.size:
            ended = next(calls)
            np.testing.assert_array_equal(ended[:, 1], buf.privileged[t, cut, 1])
            if t < 19:  # not the new episode's
                assert np.all(ended[:, 1] != buf.privileged[t + 1, cut, 1])
    assert next(calls, None) is None
    assert rollout.truncated.any()


def test_critic_appends_the_features_to_its_input():
    torch.manual_seed(0)
    critic = Critic(4 + K, 16)
    x, extra = torch.randn(5, 4), torch.randn(5, K)
    torch.testing.assert_close(critic(x, extra), critic.net(torch.cat([x, extra], -1))[:, 0])
    with pytest.raises(RuntimeError):
        critic(x)  # the features are part of its input: leaving them out is an error


def test_a_privileged_run_trains_exports_an_untold_actor_and_resumes_only_privileged(
    tmp_path: Path,
):
    with pytest.raises(LiquidNodeError, match="--privileged-critic needs --randomize"):
        train(tiny_config(tmp_path, privileged_critic=True))
    result = train(tiny_config(tmp_path, privileged_critic=True, randomize=ENV))
    policy = Policy.load(result.policy_path)
    assert policy.metadata.cell["input_size"] == 4 and policy.metadata.latency_input is None
    assert policy.metadata.provenance["config"]["privileged_critic"] is True
    checkpoint = tmp_path / "run" / "checkpoints" / "latest.pt"
    state = torch.load(checkpoint, weights_only=True)
    assert state["critic"]["net.0.weight"].shape == (64, 4 + K)
    with pytest.raises(LiquidNodeError, match="privileged_critic=True but this run asks for False"):
        ckpt.load(str(checkpoint), env_info(ENV), tiny_config(tmp_path, randomize=ENV, steps=512))
    more = train(tiny_config(tmp_path, privileged_critic=True, randomize=ENV, steps=512,
                             resume=str(checkpoint)))  # fmt: skip
    assert more.steps == 512
