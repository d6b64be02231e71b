"""Distributed evaluation on a real two-node Ray cluster: ``eval`` / ``stress --workers``
give exactly the in-process figures, and a worker killed mid-run is replaced."""

from __future__ import annotations

import json
import os
import signal

import pytest

from liquidnode.cli import main
from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.policy import Policy
from liquidnode.policies import default_policy_path
from liquidnode.sim.episodes import BlockRunner, EpisodeBlock, split
from liquidnode.sim.randomization.spec import load_spec

pytestmark = pytest.mark.cluster

ray = pytest.importorskip("ray", reason="needs Ray: pip install -c constraints.txt -e '.[cluster]'")

#: HalfCheetah under its randomisation preset: every episode's return differs.
EVAL = ["--env", "HalfCheetah-v5", "--randomize", "HalfCheetah-v5", "--max-ticks", "150",
        "--episodes", "6", "--seed", "3", "--json"]  # fmt: skip


def _json(capsys, argv: list[str]) -> dict:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_eval_workers_give_the_in_process_returns(ray_cluster, capsys):
    local = _json(capsys, ["eval", *EVAL])
    spread = _json(capsys, ["eval", *EVAL, "--workers", "2", "--address", ray_cluster])
    assert len(set(local["returns"])) == 6  # the episodes really differ
    assert spread["returns"] == local["returns"]
    assert spread["ticks"] == local["ticks"]
    assert spread["workers"] == 2


def test_stress_workers_give_the_in_process_table(ray_cluster, capsys, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text("[axes]\nlatency = [0, 3]\nmass = [2.0]\n[[combined]]\nname = 'both'\n"
                    "latency = 2\nmass = 1.5\n")  # fmt: skip
    argv = ["stress", "--episodes", "4", "--grid", str(grid), "--json"]
    local = _json(capsys, argv)
    spread = _json(capsys, [*argv, "--workers", "2", "--address", ray_cluster])
    assert spread == local
    assert len({c["mean_return"] for c in local["cells"]}) > 1  # the cells really differ


def _blocks() -> list[EpisodeBlock]:
    spec = load_spec("HalfCheetah-v5")
    return [
        EpisodeBlock(
            "HalfCheetah-v5", 11, first, count, max_ticks=300, randomize=spec, randomize_seed=11
        )
        for first, count in split(8, 4)
    ]


def test_a_worker_killed_mid_run_is_replaced_and_its_episodes_rerun(ray_cluster):
    from liquidnode.cluster.episodes import run_blocks

    policy = Policy.load(default_policy_path("HalfCheetah-v5"))
    blocks = _blocks()
    killed = []

    def kill_one(actors):
        pid = ray.get(actors[0].pid.remote())  # answers while the actor runs its block
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    spread = run_blocks(policy, blocks, 2, on_started=kill_one)
    assert killed
    runner = BlockRunner(policy)
    try:
        local = [runner.run(b) for b in blocks]
    finally:
        runner.close()
    assert [[o.return_ for o in b] for b in spread] == [[o.return_ for o in b] for b in local]
    assert [o.index for b in spread for o in b] == list(range(8))


def test_a_block_that_never_returns_ends_the_run_with_an_error(ray_cluster):
    from liquidnode.cluster.episodes import run_blocks

    policy = Policy.load(default_policy_path("HalfCheetah-v5"))
    with pytest.raises(LiquidNodeError, match="no result after"):
        run_blocks(policy, _blocks()[:1], 1, timeout_s=0.01, retries=1)


def test_an_error_in_a_block_is_one_error(ray_cluster):
    from liquidnode.cluster.episodes import run_blocks

    policy = Policy.load(default_policy_path("HalfCheetah-v5"))
    with pytest.raises(LiquidNodeError, match="NoSuchEnv"):
        run_blocks(policy, [EpisodeBlock("NoSuchEnv-v0", 0, 0, 1)], 1)
