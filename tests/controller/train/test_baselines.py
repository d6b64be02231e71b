"""Baseline cells in the trainer: stacked-frame export, --frames checks, a short training run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.policy import Policy
from liquidnode.controller.train.agent import Actor, build_cell
from liquidnode.controller.train.baselines import count_parameters
from liquidnode.controller.train.config import TrainConfig
from liquidnode.controller.train.envs import EnvInfo
from liquidnode.controller.train.export import ExportSpec, export_policy
from liquidnode.controller.train.normalization import ObsNormalizer
from liquidnode.controller.train.ppo import train
from tests.controller.train.quick_config import quick_config, tiny_config

INFO = EnvInfo(
    env_id="InvertedPendulum-v5",
    obs_dim=4,
    act_dim=1,
    obs_low=np.full(4, -np.inf),
    obs_high=np.full(4, np.inf),
    act_low=np.array([-3.0]),
    act_high=np.array([3.0]),
    control_period_s=0.04,
)


def test_stacked_frame_mlp_export_equals_torch_across_an_episode_boundary():
    torch.manual_seed(0)
    actor = Actor(build_cell("mlp", 4, 1, 16, 0, seed=0, frames=3), 1, "tanh", 0.0)
    assert actor.state_size == 8
    norm = ObsNormalizer(4, clip=5.0)
    rng = np.random.default_rng(0)
    norm(rng.normal(scale=2.0, size=(200, 4)), update=True)
    spec = ExportSpec(INFO, "mlp", "tanh", 25.0, np.array([3.0]), np.array([0.0]))
    policy = export_policy(actor.cell, norm, spec, {})
    assert policy.metadata.cell["frames"] == 3
    obs = rng.normal(scale=2.0, size=(300, 4))
    h = torch.zeros(1, actor.state_size)
    worst = 0.0
    with torch.no_grad():
        for k in range(300):
            start = 1.0 if k in (0, 150) else 0.0
            if k == 150:
                policy.reset()
            x = torch.as_tensor(norm(obs[k][None]))
            mean, h = actor.step(x, h, torch.ones(1), torch.tensor([start]))
            runtime = policy.step(obs[k], 0.04)
            worst = max(worst, float(np.abs(runtime - 3.0 * mean[0].double().numpy()).max()))
    assert worst < 1e-5


def test_frames_belong_to_the_mlp_only():
    with pytest.raises(LiquidNodeError, match="--frames is for --cell mlp only"):
        TrainConfig(cell="lstm", frames=2).validate()
    with pytest.raises(LiquidNodeError, match="--frames must be >= 1"):
        TrainConfig(cell="mlp", frames=0).validate()


def test_parameter_counts_follow_the_cell_sizes():
    lstm = build_cell("lstm", 4, 1, 10, 0, seed=0)
    gru = build_cell("gru", 4, 1, 10, 0, seed=0)
    mlp = build_cell("mlp", 4, 1, 10, 0, seed=0, frames=2)
    assert count_parameters(lstm) == 4 * 10 * (4 + 10 + 2) + 10 + 1
    assert count_parameters(gru) == 3 * 10 * (4 + 10 + 2) + 10 + 1
    assert count_parameters(mlp) == (8 * 10 + 10) + (10 * 10 + 10) + 10 + 1


def test_a_short_lstm_training_run_writes_a_trained_lstm_policy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # any default run folder lands here
    out = tmp_path / "lstm.safetensors"
    cfg = quick_config(
        cell="lstm",
        units=8,
        steps=512,
        rollout_steps=256,
        minibatches=2,
        epochs=2,
        keep_best=False,
        seed=2,
        out=str(out),
    )
    result = train(cfg, command="pytest")
    assert result.steps == 512
    policy = Policy.load(out)
    assert policy.metadata.cell["type"] == "lstm" and policy.state_dim == 16
    assert policy.metadata.provenance["trainer_cell"] == "lstm"
    # the weights moved away from the seed's initial ones
    torch.manual_seed(cfg.seed)
    initial = build_cell("lstm", 4, 1, 8, 0, seed=cfg.seed)
    trained = policy.cell.weights()
    assert not np.allclose(trained["weight_hh"], initial.rnn.weight_hh.detach().numpy())
    action = policy.step(np.zeros(4), 0.04)
    assert action.shape == (1,) and -3.0 <= action[0] <= 3.0


def test_a_memoryless_mlp_has_an_empty_state_through_the_rollout_chunks():
    from liquidnode.controller.train.rollout.buffer import RolloutBuffer, sequences

    buf = RolloutBuffer.empty(32, 3, 4, 1, 0)
    buf.obs[:] = np.arange(32)[:, None, None]
    seqs = sequences(buf, 16)
    assert seqs["h0"].shape == (6, 0)
    assert seqs["obs"].shape == (6, 16, 4)
    # sequence c * envs + n holds env n's steps c * 16 .. c * 16 + 15
    assert seqs["obs"][4, 0, 0] == 16.0
    actor = Actor(build_cell("mlp", 4, 1, 8, 0, seed=0), 1, "tanh", 0.0)
    means = actor.unroll(
        torch.as_tensor(seqs["obs"]),
        torch.ones(6, 16),
        torch.as_tensor(seqs["starts"]),
        torch.as_tensor(seqs["h0"]),
    )
    assert means.shape == (6, 16, 1)


def test_resume_of_a_stacked_mlp_keeps_its_frames(tmp_path):
    cfg = tiny_config(tmp_path, cell="mlp", units=8, frames=2)
    train(cfg)
    ckpt = str(tmp_path / "run" / "checkpoints" / "latest.pt")
    with pytest.raises(LiquidNodeError, match="frames=2 but this run asks for 3"):
        train(dataclasses.replace(cfg, frames=3, steps=512, resume=ckpt))
    resumed = train(dataclasses.replace(cfg, steps=512, resume=ckpt))
    assert resumed.steps == 512
    assert Policy.load(resumed.policy_path).metadata.cell["frames"] == 2
