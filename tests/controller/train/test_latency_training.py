"""``liquidnode train --latency-input``: PPO trains a policy told its actuation latency.

The collector appends each environment's own episode latency (the randomisation's draw) to
the cell's and the critic's input, the file written says how that input is normalised, the
runtime policy told the same latency acts exactly as the trained actor, and a file that was not
told its latency warm-starts a told actor as exactly itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the [train] extra")

from liquidnode.controller.errors import LiquidNodeError  # noqa: E402
from liquidnode.controller.latency_input import LatencyInput  # noqa: E402
from liquidnode.controller.policy import Policy  # noqa: E402
from liquidnode.controller.train import checkpoint as ckpt  # noqa: E402
from liquidnode.controller.train.agent import build_cell  # noqa: E402
from liquidnode.controller.train.envs import (  # noqa: E402
    env_info,
    make_vector_env,
    randomization_record,
    told_latency,
)
from liquidnode.controller.train.export import ExportSpec, export_policy  # noqa: E402
from liquidnode.controller.train.normalization import ObsNormalizer  # noqa: E402
from liquidnode.controller.train.ppo import train  # noqa: E402
from liquidnode.controller.train.rollout.collector import (  # noqa: E402
    Acting,
    Agent,
    VectorCollector,
)
from liquidnode.controller.train.warm_start import warm_start  # noqa: E402
from liquidnode.policies import default_policy_path  # noqa: E402

from .quick_config import tiny_config  # noqa: E402

ENV = "InvertedPendulum-v5"  # its preset draws a latency of U(0, 1) ticks per episode
PERIOD = 0.04


def _told() -> LatencyInput:
    return told_latency(ENV, randomization_record(ENV, ENV), PERIOD)


def test_the_latency_input_is_the_presets_range_as_a_uniform_draw():
    told = _told()
    assert (told.low, told.high, told.mean) == (0.0, 1.0, 0.5)
    assert told.std == pytest.approx(1 / 12**0.5)
    with pytest.raises(LiquidNodeError, match="--latency-input needs --randomize"):
        told_latency(ENV, None, PERIOD)
    in_ms = told_latency(ENV, {"latency": {"ticks": 0.25, "ms": [0.0, 20.0]}}, PERIOD)
    assert (in_ms.low, in_ms.high) == (0.25, 0.75)  # 20 ms of a 40 ms period on top
    fixed = randomization_record("InvertedDoublePendulum-v5", "InvertedDoublePendulum-v5-onetick")
    assert fixed["latency"]["ticks"] == 1.0  # one whole tick, every episode: nothing to tell
    with pytest.raises(LiquidNodeError, match="draws no range of actuation latencies"):
        told_latency("InvertedDoublePendulum-v5", fixed, 0.05)


def test_each_environment_is_told_its_own_episodes_latency_across_auto_resets():
    info = env_info(ENV)
    told = _told()
    envs = make_vector_env(ENV, 3, 0.0, 5, randomize=ENV, asynchronous=False, episode_ticks=6)
    collector = VectorCollector(envs, Acting.of(info, told))
    torch.manual_seed(0)
    agent = Agent.build(tiny_config(Path("."), latency_input=True, randomize=ENV), info)
    assert agent.actor.cell.rnn_cell.input_size == info.obs_dim + 1
    try:
        collector.reset(seed=3)
        rollout = collector.collect(agent, 20)
        draws = [envs.envs[i].get_wrapper_attr("draw").latency_s for i in range(3)]
    finally:
        collector.close()
    buf = rollout.buffer
    assert buf.obs.shape == (20, 3, info.obs_dim + 1)
    ell = buf.obs[:, :, -1]
    for i in range(3):
        episodes = np.split(ell[:, i], np.flatnonzero(buf.starts[:, i])[1:])
        assert len(episodes) >= 3  # 20 ticks of episodes cut at 6 (or ended by a fall)
        assert all(np.all(e == e[0]) for e in episodes)  # constant within an episode
        assert len({float(e[0]) for e in episodes}) == len(episodes)  # a new draw each episode
    # after the last step each env's latency is its current draw (a new episode's after a reset)
    np.testing.assert_array_equal(rollout.last_latency_s, draws)
    for i in np.flatnonzero(buf.dones[-1] == 0):  # the last input's episode goes on: its draw
        assert ell[-1, i] == np.float32(told.normalise(draws[i] / PERIOD))
    assert np.all((ell >= (0 - 0.5) * 12**0.5 - 1e-6) & (ell <= (1 - 0.5) * 12**0.5 + 1e-6))


def test_the_exported_policy_told_a_latency_acts_as_the_actor_given_that_input():
    info = env_info(ENV)
    told = _told()
    acting = Acting.of(info, told)
    torch.manual_seed(1)
    agent = Agent.build(tiny_config(Path("."), units=8, latency_input=True, randomize=ENV), info)
    rng = np.random.default_rng(1)
    agent.obs_norm(rng.normal(0, [0.3, 0.1, 0.6, 1.2], size=(300, 4)), update=True)
    spec = ExportSpec(info, "cfc", "tanh", acting.time_scale, acting.act_scale,
                      acting.act_offset, latency_input=told)  # fmt: skip
    policy = export_policy(agent.actor.cell, agent.obs_norm, spec, {})
    assert policy.metadata.latency_input == told.as_metadata()
    assert policy.obs_dim == info.obs_dim
    actions = {}
    for latency_ticks in (0.0, 0.3, 1.0, 2.5):  # 2.5: beyond the range, told the edge
        policy.reset()
        policy.set_latency(latency_ticks)
        h = torch.zeros(1, agent.actor.state_size)
        worst = 0.0
        for k, obs in enumerate(rng.normal(0, 0.3, (60, 4))):
            x = acting.cell_input(agent.obs_norm(obs[None]), np.array([latency_ticks * PERIOD]))
            with torch.no_grad():
                mean, h = agent.actor.step(torch.as_tensor(x), h, torch.ones(1),
                                           torch.tensor([float(k == 0)]))  # fmt: skip
            expect = acting.act_offset + acting.act_scale * mean[0].double().numpy()
            worst = max(worst, float(np.abs(policy.step(obs, PERIOD) - expect).max()))
        assert worst < 1e-5
        policy.reset()
        policy.set_latency(latency_ticks)
        actions[latency_ticks] = policy.step(np.full(4, 0.1), PERIOD)
    assert not np.allclose(actions[0.0], actions[1.0])  # the input reaches the action
    np.testing.assert_array_equal(actions[1.0], actions[2.5])


def test_a_file_not_told_its_latency_warm_starts_a_told_actor_as_itself():
    path = default_policy_path(ENV)
    info = env_info(ENV)
    original = Policy.load(path)
    cfg = original.metadata.cell
    module = build_cell("cfc", info.obs_dim + 1, info.act_dim, cfg["units"],
                        cfg["backbone_units"], seed=3)  # fmt: skip
    norm = ObsNormalizer(info.obs_dim, clip=10.0)
    warm_start(path, module, norm, ENV, latency_input=True)
    acting = Acting.of(info, _told())
    spec = ExportSpec(info, "cfc", "tanh", acting.time_scale, acting.act_scale,
                      acting.act_offset, latency_input=acting.latency_input)  # fmt: skip
    told = export_policy(module, norm, spec, {})
    rng = np.random.default_rng(2)
    observations = rng.normal(0, 0.2, (80, 4))
    for latency_ticks in (0.0, 1.0):
        told.reset()
        told.set_latency(latency_ticks)
        original.reset()
        for obs in observations:
            np.testing.assert_allclose(told.step(obs, PERIOD), original.step(obs, PERIOD),
                                       atol=1e-6)  # fmt: skip


def test_warm_starts_that_cannot_hold_the_input_are_refused():
    info = env_info(ENV)
    norm = ObsNormalizer(info.obs_dim, clip=10.0)
    ncp = default_policy_path(ENV).replace("-cfc.", "-ncp.")
    module = build_cell("ncp", info.obs_dim + 1, info.act_dim, 16, 64, seed=1)
    with pytest.raises(LiquidNodeError, match="latency input to a wired_cfc cell"):
        warm_start(ncp, module, norm, ENV, latency_input=True)
    # the shipped double-pendulum policy is told its latency: a run must be told it too
    idp = default_policy_path("InvertedDoublePendulum-v5")
    idp_info = env_info("InvertedDoublePendulum-v5")
    module = build_cell("cfc", idp_info.obs_dim, idp_info.act_dim, 64, 64, seed=1)
    with pytest.raises(LiquidNodeError, match=r"told its actuation latency.*--latency-input"):
        warm_start(idp, module, ObsNormalizer(idp_info.obs_dim), "InvertedDoublePendulum-v5")


def test_a_told_run_writes_a_told_file_and_resumes_only_told(tmp_path: Path):
    with pytest.raises(LiquidNodeError, match="--latency-input needs --randomize"):
        train(tiny_config(tmp_path, latency_input=True))
    result = train(tiny_config(tmp_path, latency_input=True, randomize=ENV))
    policy = Policy.load(result.policy_path)
    assert policy.metadata.latency_input == _told().as_metadata()
    assert policy.metadata.cell["input_size"] == 5 and policy.obs_dim == 4
    assert policy.metadata.provenance["config"]["latency_input"] is True
    checkpoint = str(tmp_path / "run" / "checkpoints" / "latest.pt")
    with pytest.raises(LiquidNodeError, match="latency_input=True but this run asks for False"):
        ckpt.load(checkpoint, env_info(ENV), tiny_config(tmp_path, randomize=ENV, steps=512))
