"""A short real training run: the deterministic return of the exported policy improves."""

import pytest

from liquidnode.controller.policy import Policy
from liquidnode.controller.train.ppo import train
from tests.controller.train.quick_config import quick_config


@pytest.mark.slow
def test_short_training_improves_inverted_pendulum_return(tmp_path):
    out = tmp_path / "pendulum.safetensors"
    cfg = quick_config(
        cell="cfc",
        units=8,
        backbone_units=32,
        steps=12_288,
        envs=2,
        rollout_steps=256,
        minibatches=4,
        eval_interval=8,
        eval_episodes=3,
        final_eval_episodes=3,
        keep_best=False,
        seed=3,
        out=str(out),
        run_dir=str(tmp_path / "run"),
    )
    result = train(cfg, command="pytest")
    initial = result.history[0]
    assert initial[0] == 0
    final = result.evaluation["mean_return"]
    # a near-zero initial policy drops the pole within ~20 ticks (return ~20);
    # a few thousand steps of PPO keep it up several times longer
    assert final > 3 * initial[1] and final > initial[1] + 30, (initial, result.history, final)

    policy = Policy.load(out)
    assert policy.is_trained
    prov = policy.metadata.provenance
    assert prov["steps"] == result.steps == 12_288
    assert prov["seed"] == 3 and prov["command"] == "pytest" and prov["env_id"] == cfg.env
    assert prov["evaluation"]["mean_return"] == pytest.approx(final)
    assert prov["wall_time_s"] > 0
    assert (tmp_path / "run" / "checkpoints" / "latest.pt").is_file()
