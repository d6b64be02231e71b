"""--init-from: a fresh actor loaded from a shipped policy file reproduces it exactly."""

from __future__ import annotations

import numpy as np
import pytest

from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.policy import Policy
from liquidnode.controller.train.agent import build_cell
from liquidnode.controller.train.config import TrainConfig
from liquidnode.controller.train.envs import env_info
from liquidnode.controller.train.export import ExportSpec, export_policy
from liquidnode.controller.train.normalization import ObsNormalizer
from liquidnode.controller.train.rollout.collector import Agent
from liquidnode.controller.train.warm_start import load_statistics, warm_start
from liquidnode.policies import default_policy_path


@pytest.mark.parametrize(("cell", "units"), [("cfc", 16), ("ncp", 16), ("ltc", 16)])
def test_warm_started_actor_exports_the_same_policy(cell, units):
    path = default_policy_path("InvertedPendulum-v5").replace("-cfc.", f"-{cell}.")
    info = env_info("InvertedPendulum-v5")
    module = build_cell(cell, info.obs_dim, info.act_dim, units, 64, seed=1)
    norm = ObsNormalizer(info.obs_dim, clip=10.0)
    record = warm_start(path, module, norm, "InvertedPendulum-v5")
    assert record["env_id"] == "InvertedPendulum-v5"
    scale = (info.act_high - info.act_low) / 2
    spec = ExportSpec(info, cell, "tanh", 1 / info.control_period_s, scale, 0 * scale)
    again, original = export_policy(module, norm, spec, {}), Policy.load(path)
    rng = np.random.default_rng(0)
    for obs in rng.normal(0, 0.3, (100, 4)):
        np.testing.assert_allclose(again.step(obs, 0.04), original.step(obs, 0.04), atol=1e-6)


def test_warm_start_refuses_another_architecture():
    info = env_info("InvertedPendulum-v5")
    module = build_cell("cfc", info.obs_dim, info.act_dim, 8, 64, seed=1)
    norm = ObsNormalizer(info.obs_dim, clip=10.0)
    with pytest.raises(LiquidNodeError, match="same --cell/--units"):
        warm_start(default_policy_path("InvertedPendulum-v5"), module, norm, "InvertedPendulum-v5")
    with pytest.raises(LiquidNodeError, match="trained on InvertedPendulum-v5"):
        warm_start(default_policy_path("InvertedPendulum-v5"), module, norm, "Reacher-v5")


def test_load_statistics_scales_inputs_as_the_file_did():
    path = default_policy_path("InvertedPendulum-v5")
    policy = Policy.load(path)
    norm = ObsNormalizer(env_info("InvertedPendulum-v5").obs_dim, clip=10.0)
    record = load_statistics(path, norm, "InvertedPendulum-v5")
    assert record["path"] == str(path)
    obs = np.array([0.1, -0.05, 0.3, -0.2])
    expected = np.clip((obs - policy.obs_mean) / policy.obs_std, -10.0, 10.0)
    np.testing.assert_allclose(norm(obs), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("init_from", "init_log_std", "expected"),
    [(None, None, -0.5), ("policy.safetensors", None, -1.5), ("policy.safetensors", -0.7, -0.7)],
)
def test_a_fine_tune_starts_with_less_exploration_noise(init_from, init_log_std, expected):
    cfg = TrainConfig(cell="cfc", units=8, init_from=init_from, init_log_std=init_log_std)
    agent = Agent.build(cfg, env_info("InvertedPendulum-v5"))
    np.testing.assert_allclose(agent.actor.log_std.detach().numpy(), [expected], rtol=1e-6)
