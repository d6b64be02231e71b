"""Training with a randomisation spec and the action-smoothness loss (real MuJoCo, real torch)."""

from __future__ import annotations

import numpy as np
import pytest

from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.policy import Policy
from liquidnode.controller.train.envs import make_vector_env, randomization_record
from liquidnode.controller.train.ppo import train
from tests.controller.train.quick_config import quick_config


def test_randomised_training_envs_report_the_jittered_period():
    envs = make_vector_env("InvertedPendulum-v5", 1, 0.0, 5, randomize="InvertedPendulum-v5")
    try:
        envs.reset(seed=5)
        periods = [float(envs.step(np.zeros((1, 1)))[4]["dt"][0]) for _ in range(10)]
    finally:
        envs.close()
    assert len(set(periods)) > 5 and all(0.024 - 1e-9 <= p <= 0.056 + 1e-9 for p in periods)


def test_randomization_record_resolves_the_preset():
    record = randomization_record("InvertedPendulum-v5", "InvertedPendulum-v5")
    assert record["latency"]["ticks"] == [0.0, 1.0]
    assert record["dynamics"]["mass"] == [0.5, 1.5]
    with pytest.raises(LiquidNodeError, match="neither a file nor a shipped preset"):
        randomization_record("InvertedPendulum-v5", "Nope-v5")


def _train(tmp_path, name: str, smoothness: float) -> Policy:
    out = tmp_path / f"{name}.safetensors"
    cfg = quick_config(
        units=8,
        backbone_units=32,
        steps=2048,
        rollout_steps=512,
        minibatches=4,
        seed=3,
        out=str(out),
        run_dir=str(tmp_path / name),
        randomize="InvertedPendulum-v5",
        smoothness=smoothness,
    )
    train(cfg, command="pytest")
    return Policy.load(out)


def _mean_abs_delta(policy: Policy) -> float:
    rng = np.random.default_rng(0)
    policy.reset()
    actions = [policy.step(rng.normal(0, 0.3, 4), 0.04) for _ in range(200)]
    return float(np.mean(np.abs(np.diff(np.array(actions), axis=0))))


@pytest.mark.slow
def test_smoothness_loss_smooths_the_policy_and_is_recorded(tmp_path):
    rough = _train(tmp_path, "rough", 0.0)
    smooth = _train(tmp_path, "smooth", 20.0)
    prov = smooth.metadata.provenance
    assert prov["smoothness_weight"] == 20.0 and prov["config"]["smoothness"] == 20.0
    assert prov["randomization"]["name"] == "InvertedPendulum-v5"
    assert prov["randomization"]["timing"]["dt_jitter"] == 0.4
    assert rough.metadata.provenance["smoothness_weight"] == 0.0
    assert _mean_abs_delta(smooth) < 0.5 * _mean_abs_delta(rough), (
        _mean_abs_delta(smooth),
        _mean_abs_delta(rough),
    )
