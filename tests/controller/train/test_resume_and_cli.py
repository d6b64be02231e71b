"""Checkpoints / resume, the CLI flags, and one-line errors for bad input."""

import argparse

import numpy as np
import pytest

from liquidnode.cli import _Parser, train_cmd
from liquidnode.controller.errors import LiquidNodeError, SpaceMismatchError
from liquidnode.controller.train.config import config_fields, field_docs
from liquidnode.controller.train.ppo import train
from tests.controller.train.quick_config import tiny_config


def test_resume_continues_from_the_checkpoint_step(tmp_path):
    first = train(tiny_config(tmp_path))
    assert first.steps == 256
    assert first.policy_path == tmp_path / "run" / "policy.safetensors"
    ckpt = tmp_path / "run" / "checkpoints" / "latest.pt"
    # without --run-dir a resumed run continues in its checkpoint's run folder
    second = train(tiny_config(tmp_path, run_dir=None, steps=512, resume=str(ckpt)))
    assert second.steps == 512
    assert second.wall_time_s >= first.wall_time_s
    assert second.policy_path == first.policy_path


def test_resume_at_the_checkpoints_own_step_writes_its_policy_untrained(tmp_path):
    from safetensors.numpy import load_file

    first = train(tiny_config(tmp_path))  # no periodic evaluation: exports the last weights
    ckpt = tmp_path / "run" / "checkpoints" / "latest.pt"
    saved = ckpt.read_bytes()
    out = tmp_path / "snapshot.safetensors"
    snap = train(tiny_config(tmp_path, run_dir=None, resume=str(ckpt), out=str(out)))
    assert snap.steps == first.steps == 256 and snap.policy_path == out
    assert ckpt.read_bytes() == saved  # nothing trained, nothing re-saved
    trained, exported = load_file(first.policy_path), load_file(out)
    assert trained.keys() == exported.keys()
    for name, values in trained.items():
        np.testing.assert_array_equal(exported[name], values, err_msg=name)
    # a step further trains, so the weights move
    moved = load_file(
        train(tiny_config(tmp_path, run_dir=None, steps=384, resume=str(ckpt))).policy_path
    )
    assert any(not np.array_equal(moved[k], v) for k, v in trained.items())


def test_reset_log_std_reopens_exploration_on_resume_only(tmp_path):
    import torch

    train(tiny_config(tmp_path))
    ckpt = tmp_path / "run" / "checkpoints" / "latest.pt"
    before = torch.load(ckpt, weights_only=True)["actor"]["log_std"]
    assert torch.allclose(before, torch.full_like(before, -0.5), atol=0.05)
    # a tiny learning rate: what the checkpoint holds after the resumed run is what it started at
    train(tiny_config(tmp_path, run_dir=None, steps=512, lr=1e-9, resume=str(ckpt)))
    kept = torch.load(ckpt, weights_only=True)["actor"]["log_std"]
    assert torch.allclose(kept, before, atol=1e-6)
    train(
        tiny_config(
            tmp_path, run_dir=None, steps=768, lr=1e-9, resume=str(ckpt), reset_log_std=-2.0
        )
    )
    reset = torch.load(ckpt, weights_only=True)["actor"]["log_std"]
    assert torch.allclose(reset, torch.full_like(reset, -2.0), atol=1e-6)
    with pytest.raises(LiquidNodeError, match="--reset-log-std needs --resume"):
        train(tiny_config(tmp_path, reset_log_std=-2.0))


def test_resume_refuses_a_checkpoint_of_another_env_or_size(tmp_path):
    train(tiny_config(tmp_path))
    ckpt = str(tmp_path / "run" / "checkpoints" / "latest.pt")
    with pytest.raises(SpaceMismatchError, match="trained on InvertedPendulum-v5, not Reacher-v5"):
        train(tiny_config(tmp_path, env="Reacher-v5", resume=ckpt))
    with pytest.raises(LiquidNodeError, match="units=4 but this run asks for 8"):
        train(tiny_config(tmp_path, units=8, resume=ckpt))
    with pytest.raises(LiquidNodeError, match="already at 256 steps, past --steps 128; pass --st"):
        train(tiny_config(tmp_path, steps=128, resume=ckpt))
    with pytest.raises(LiquidNodeError, match="does not exist"):
        train(tiny_config(tmp_path, resume=str(tmp_path / "missing.pt")))


def test_bad_config_values_name_the_flag(tmp_path):
    with pytest.raises(LiquidNodeError, match="--rollout-steps 100 is not a multiple of --seq-len"):
        train(tiny_config(tmp_path, rollout_steps=100))
    with pytest.raises(LiquidNodeError, match="--dt-jitter must be in"):
        train(tiny_config(tmp_path, dt_jitter=1.5))
    with pytest.raises(LiquidNodeError, match="--episode-ticks must be >= 1, got 0"):
        train(tiny_config(tmp_path, episode_ticks=0))
    # caught before training: a final evaluation of no episodes has no mean to record
    with pytest.raises(LiquidNodeError, match="--final-eval-episodes must be >= 1, got 0"):
        train(tiny_config(tmp_path, final_eval_episodes=0))
    with pytest.raises(LiquidNodeError, match="--eval-episodes must be >= 1, got 0"):
        train(tiny_config(tmp_path, eval_episodes=0))
    with pytest.raises(LiquidNodeError, match="--obs-cost '0=x': expected INDEX=WEIGHT"):
        train(tiny_config(tmp_path, obs_cost="0=x"))
    with pytest.raises(LiquidNodeError, match="got '-1=2'"):
        train(tiny_config(tmp_path, obs_cost="0=1,-1=2"))
    with pytest.raises(LiquidNodeError, match="got '1>inf=1'"):
        train(tiny_config(tmp_path, obs_cost="1>inf=1"))
    with pytest.raises(LiquidNodeError, match="got '1<x=1'"):
        train(tiny_config(tmp_path, obs_cost="0=1,1<x=1"))
    with pytest.raises(LiquidNodeError, match="index 4 is beyond the 4 observation channels"):
        train(tiny_config(tmp_path, obs_cost="4=1.0"))
    with pytest.raises(LiquidNodeError, match="index 5 is beyond the 4 observation channels"):
        train(tiny_config(tmp_path, obs_cost="0=1,5>0.5=1"))


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="liquidnode")
    train_cmd.add_parser(p.add_subparsers(dest="command", parser_class=_Parser))
    return p


def test_every_config_field_is_a_documented_flag():
    docs = field_docs()
    help_text = " ".join(
        _parser()._subparsers._group_actions[0].choices["train"].format_help().split()
    )
    for f in config_fields():
        assert docs.get(f.name), f"TrainConfig.{f.name} has no docstring"
        assert "--" + f.name.replace("_", "-") in help_text
    args = _parser().parse_args(
        [
            "train",
            "--env",
            "Reacher-v5",
            "--cell",
            "ltc",
            "--units",
            "8",
            "--dt-jitter",
            "0.2",
            "--no-normalize-reward",
            "--target-return",
            "-5",
        ]
    )
    assert (args.env, args.cell, args.units, args.dt_jitter) == ("Reacher-v5", "ltc", 8, 0.2)
    assert args.normalize_reward is False and args.target_return == -5.0
    assert args.resume is None


def test_unknown_cell_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["train", "--cell", "rnn"])
    assert exc.value.code == 2
    assert "invalid choice: 'rnn'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("env", "message"),
    [("NoSuchEnv-v0", "unknown Gymnasium environment"), ("CartPole-v1", "needs a Box action")],
)
def test_bad_env_is_a_liquidnode_error_before_any_training(env, message, tmp_path):
    args = _parser().parse_args(["train", "--env", env, "--out", str(tmp_path / "x.safetensors")])
    with pytest.raises(LiquidNodeError, match=message):
        args.run(args)
    assert not (tmp_path / "x.safetensors").exists()


def test_training_with_dt_jitter_in_parallel_envs_writes_a_policy(tmp_path):
    from liquidnode.controller.policy import Policy

    result = train(tiny_config(tmp_path, envs=2, dt_jitter=0.3, rollout_steps=64, steps=256))
    policy = Policy.load(result.policy_path)
    assert policy.metadata.provenance["config"]["dt_jitter"] == 0.3
    assert policy.metadata.time_scale == 25.0  # 1 / nominal period of InvertedPendulum-v5


def test_cli_prints_one_error_line_and_exits_2(capsys, tmp_path):
    from liquidnode.cli import main

    code = main(["train", "--env", "NoSuchEnv-v0", "--out", str(tmp_path / "x.safetensors")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("liquidnode train: error: unknown Gymnasium")


def test_a_fine_tune_that_finds_nothing_better_writes_the_file_it_started_from(tmp_path):
    """--keep-best counts the starting point's evaluation: a learning rate that wrecks the
    policy in one update leaves the (1000-scoring) shipped file as the best."""
    from liquidnode.controller.policy_file import read_policy_file
    from liquidnode.policies import default_policy_path

    source = default_policy_path("InvertedPendulum-v5")
    fine = {"init_from": source, "units": 16, "backbone_units": 64, "eval_interval": 1}
    result = train(tiny_config(tmp_path, lr=1.0, anneal_lr=False, **fine))
    assert result.history[0][1] == 1000.0 and max(r for _, r in result.history[1:]) < 1000.0
    assert result.evaluation["mean_return"] == 1000.0
    _, start = read_policy_file(source)
    _, tensors = read_policy_file(result.policy_path)
    for name, value in start.items():
        if name.startswith("cell."):
            np.testing.assert_array_equal(tensors[name], value, err_msg=name)


def test_critic_warmup_trains_the_critic_and_leaves_the_actor_as_the_file(tmp_path):
    """--critic-warmup 2 over a 2-update fine-tune at a wrecking learning rate: the actor
    (cell weights and log std) is still the file's, the critic has moved."""
    import torch

    from liquidnode.controller.policy_file import read_policy_file
    from liquidnode.policies import default_policy_path

    source = default_policy_path("InvertedPendulum-v5")
    fine = {"init_from": source, "units": 16, "backbone_units": 64, "critic_warmup": 2}
    critics = []
    for lr in (1.0, 1e-9):
        run = tmp_path / f"lr{lr}"
        result = train(tiny_config(tmp_path, run_dir=str(run), lr=lr, anneal_lr=False, **fine))
        _, start = read_policy_file(source)
        _, tensors = read_policy_file(result.policy_path)
        for name, value in start.items():
            if name.startswith("cell."):
                np.testing.assert_array_equal(tensors[name], value, err_msg=name)
        state = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
        assert torch.all(state["actor"]["log_std"] == -1.5)  # the fine-tune's initial std
        critics.append(state["critic"])
    moved = [not torch.equal(critics[0][k], critics[1][k]) for k in critics[0]]
    assert all(moved)


def test_critic_warmup_needs_a_fine_tune(tmp_path):
    with pytest.raises(LiquidNodeError, match="--critic-warmup needs --init-from"):
        train(tiny_config(tmp_path, critic_warmup=3))
