"""Distributed rollouts of one training run (``train --workers N``) on a real two-node Ray
cluster: a valid policy file, collected batches that the learner's policy reproduces and
that agree statistically with the in-process collector's, recovery from a killed worker,
bounded waits, and SIGTERM's exit code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from liquidnode.cli import main
from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.policy import Policy

pytestmark = pytest.mark.cluster

ray = pytest.importorskip("ray", reason="needs Ray: pip install -c constraints.txt -e '.[cluster]'")
torch = pytest.importorskip("torch", reason="training needs the [train] extra")

from liquidnode.controller.train.config import TrainConfig  # noqa: E402
from liquidnode.controller.train.envs import env_info, make_vector_env  # noqa: E402
from liquidnode.controller.train.rollout.buffer import sequences  # noqa: E402
from liquidnode.controller.train.rollout.collector import (  # noqa: E402
    Acting,
    Agent,
    Rollout,
    VectorCollector,
)

ENV = "InvertedPendulum-v5"
#: Four rollouts of 2 envs x 64 steps: seconds of learning.
TINY = ["--env", ENV, "--units", "8", "--envs", "2", "--rollout-steps", "64", "--seq-len", "16",
        "--minibatches", "2", "--epochs", "2", "--eval-interval", "0", "--final-eval-episodes",
        "2", "--no-progress", "--no-tensorboard"]  # fmt: skip


def _tiny_config(tmp_path, **kw) -> TrainConfig:
    values = dict(env=ENV, units=8, envs=2, rollout_steps=64, seq_len=16, minibatches=2,
                  epochs=2, eval_interval=0, final_eval_episodes=2, progress=False,
                  tensorboard=False, run_dir=str(tmp_path / "run"), steps=512)  # fmt: skip
    values.update(kw)
    return TrainConfig(**values)


def test_train_with_two_workers_writes_a_valid_policy(ray_cluster, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", *TINY, "--steps", "256", "--workers", "2", "--address", ray_cluster]
    capsys.readouterr()
    assert main([*argv, "--run-dir", str(run), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["workers"] == 2 and summary["steps"] == 256
    policy = Policy.load(summary["policy"])
    assert policy.is_trained
    provenance = policy.metadata.provenance
    assert provenance["steps"] == 256
    assert np.all(np.isfinite(policy.obs_mean)) and np.any(policy.obs_mean != 0.0)
    assert (run / "checkpoints" / "latest.pt").is_file()


def _learner_logprobs_and_values(agent: Agent, rollout: Rollout) -> tuple[np.ndarray, ...]:
    """What the learner computes from the stored batch at the first PPO epoch, chunked."""
    seqs = {k: torch.as_tensor(v) for k, v in sequences(rollout.buffer, 16).items()}
    with torch.no_grad():
        mean = agent.actor.unroll(seqs["obs"], seqs["ts"], seqs["starts"], seqs["h0"])
        logprob = agent.actor.distribution(mean).log_prob(seqs["actions"]).sum(-1)
        values = agent.critic(seqs["obs"], seqs["privileged"])
    return (logprob.numpy(), seqs["logprobs"].numpy(), values.numpy(), seqs["values"].numpy())


def _collect_both(local, spread, agent: Agent, seed: int, steps: int) -> tuple[Rollout, Rollout]:
    """One rollout of ``steps`` steps from each collector after the same reset; both closed."""
    try:
        for collector in (local, spread):
            collector.reset(seed=seed)
        return local.collect(agent, steps), spread.collect(agent, steps)
    finally:
        local.close()
        spread.close()


def test_workers_collect_what_the_learner_policy_gives_and_agree_with_in_process(
    ray_cluster, tmp_path
):
    """One rollout of 4 envs x 128 steps with the same weights, in-process and on 2 actors.

    Exact: every stored log-probability and value is what the learner's modules give for the
    stored batch (PPO's ratio starts at 1), and both collectors reset the same environments
    with the same seeds. Statistical: the action noise differs, so the episode returns are two
    samples of one distribution; their means must agree within 4.5 standard errors of the
    difference (a false alarm has probability < 1e-5 under a normal approximation; the draws
    are seeded, so the test is deterministic)."""
    from liquidnode.cluster.rollouts import RayCollector

    cfg = _tiny_config(tmp_path, envs=4, seed=2)
    info = env_info(ENV)
    acting = Acting.of(info)
    torch.manual_seed(0)
    agent = Agent.build(cfg, info)
    agent.obs_norm.rms.mean[:] = [0.0, 0.0, 0.0, 0.0]
    agent.obs_norm.rms.var[:] = [0.01, 0.01, 0.1, 0.1]  # the pendulum's working range
    local = VectorCollector(make_vector_env(ENV, 4, 0.0, cfg.seed, asynchronous=False), acting,
                            update_stats=False)  # fmt: skip
    a, b = _collect_both(local, RayCollector(cfg, info, acting, 2), agent, cfg.seed, 128)
    for rollout in (a, b):
        assert rollout.buffer.obs.shape == (128, 4, info.obs_dim)
        recomputed, stored, values, stored_values = _learner_logprobs_and_values(agent, rollout)
        np.testing.assert_allclose(recomputed, stored, atol=1e-4)
        np.testing.assert_allclose(values, stored_values, atol=1e-5)
    assert a.raw_obs is not None and b.raw_obs is not None
    np.testing.assert_array_equal(a.raw_obs[0], b.raw_obs[0])  # same envs, same reset seeds
    assert not np.array_equal(a.buffer.actions, b.buffer.actions)  # independent noise
    ra = np.array([r for _, r in a.episodes])
    rb = np.array([r for _, r in b.episodes])
    assert len(ra) >= 20 and len(rb) >= 20
    se = np.sqrt(ra.var(ddof=1) / len(ra) + rb.var(ddof=1) / len(rb))
    assert abs(ra.mean() - rb.mean()) <= 4.5 * se, (ra.mean(), rb.mean(), se)


def test_workers_give_a_privileged_critic_the_features_the_in_process_collector_gives(
    ray_cluster, tmp_path
):
    """``--privileged-critic`` over Ray: the same environments reset with the same seeds draw
    the same plants, so both collectors store the same features at the first step, and every
    stored value is what the learner's critic gives for the stored observation and features."""
    from liquidnode.cluster.rollouts import RayCollector
    from liquidnode.controller.train.envs import privileged_dim

    cfg = _tiny_config(tmp_path, envs=4, seed=3, randomize=ENV, privileged_critic=True)
    info = env_info(ENV)
    k = privileged_dim(ENV, ENV)
    acting = Acting.of(info, None, k)
    torch.manual_seed(0)
    agent = Agent.build(cfg, info, k)
    local = VectorCollector(
        make_vector_env(ENV, 4, 0.0, cfg.seed, randomize=ENV, asynchronous=False),
        acting,
        update_stats=False,
    )
    a, b = _collect_both(local, RayCollector(cfg, info, acting, 2), agent, cfg.seed, 64)
    np.testing.assert_array_equal(a.buffer.privileged[0], b.buffer.privileged[0])
    assert len({float(m) for m in a.buffer.privileged[0, :, 1]}) == 4  # four masses drawn
    for rollout in (a, b):
        assert rollout.buffer.privileged.shape == (64, 4, k)
        assert rollout.last_privileged.shape == (4, k)
        *_, values, stored_values = _learner_logprobs_and_values(agent, rollout)
        np.testing.assert_allclose(values, stored_values, atol=1e-5)


def test_a_worker_killed_mid_run_is_replaced_and_the_run_completes(ray_cluster, tmp_path):
    from liquidnode.cluster.rollouts import ray_collector
    from liquidnode.controller.train.ppo import train

    killed: list[int] = []
    built = []

    def kill_in_second_rollout(index: int, actors: list) -> None:
        if index == 1 and not killed:
            pid = ray.get(actors[1].pid.remote())  # answers while the actor collects
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    factory = ray_collector(2, on_submitted=kill_in_second_rollout)

    def recording(cfg, info, acting):
        built.append(factory(cfg, info, acting))
        return built[-1]

    # Three rollouts: a kill that lands just after the second is seen in the third.
    result = train(_tiny_config(tmp_path, rollout_steps=128, steps=768), collector=recording)
    assert killed and built[0].replaced == 1
    assert result.steps == 768
    assert Policy.load(result.policy_path).is_trained


def test_a_rollout_that_never_returns_ends_the_run_with_an_error(ray_cluster, tmp_path):
    from liquidnode.cluster.rollouts import ray_collector
    from liquidnode.controller.train.ppo import train

    with pytest.raises(LiquidNodeError, match=r"no result after 0\.01 s"):
        train(_tiny_config(tmp_path), collector=ray_collector(2, timeout_s=0.01, retries=1))


def test_more_workers_than_the_cluster_has_cpus_is_an_error(ray_cluster, tmp_path):
    from liquidnode.cluster.rollouts import RayCollector

    info = env_info(ENV)
    with pytest.raises(LiquidNodeError, match="--workers 3 needs 3 CPUs; the Ray cluster has 2"):
        RayCollector(_tiny_config(tmp_path, envs=3), info, Acting.of(info), 3)


def test_more_workers_than_envs_is_one_error_line(capsys):
    assert main(["train", *TINY, "--workers", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["liquidnode train: error: --workers 3 needs --envs >= 3 (each worker steps a "
                   "share of the --envs 2 environments)"]  # fmt: skip


@pytest.mark.slow
def test_sigterm_stops_a_distributed_training_with_a_checkpoint_and_143(ray_cluster, tmp_path):
    run = tmp_path / "run"
    argv = ["train", *TINY, "--steps", "10000000", "--checkpoint-interval", "1",
            "--workers", "2", "--address", ray_cluster, "--run-dir", str(run)]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "liquidnode", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        checkpoint = run / "checkpoints" / "latest.pt"
        deadline = time.monotonic() + 180
        while not checkpoint.exists():  # a rollout has been learnt from: actors are busy
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert "interrupted (SIGTERM)" in err and "--resume" in err
    state = torch.load(checkpoint, weights_only=False)
    assert state["global_step"] > 0
