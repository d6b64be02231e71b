"""Replay through the real loop, plant and policy: exact reproduction, detected regressions,
the replay/logs commands, the PNG, and the user-facing one-liner."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from liquidnode.cli import logs_cmd, replay_cmd
from liquidnode.controller.errors import LogFileError, SpaceMismatchError
from liquidnode.controller.logs import McapRecorder, load_episode, load_episodes
from liquidnode.controller.logs.replay import replay_policy, replay_sim
from liquidnode.controller.testing import assert_replays

ROOT = Path(__file__).resolve().parents[3]
PENDULUM = ROOT / "sim" / "models" / "pendulum.xml"


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="liquidnode")
    sub = parser.add_subparsers()
    replay_cmd.add_parser(sub)
    logs_cmd.add_parser(sub)
    args = parser.parse_args(argv)
    return int(args.run(args))


def _policy(path: Path, seed: int = 1) -> Path:
    from liquidnode.controller.policy import random_policy

    random_policy(3, 1, seed=seed, action_scale=np.array([2.0])).save(path)
    return path


@pytest.fixture(scope="module")
def sim_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-episode log of the real loop on the MJCF pendulum (fast mode, 120 ticks each)."""
    from liquidnode.controller.loop import ControlLoop, LoopConfig
    from liquidnode.controller.policy import Policy
    from liquidnode.sim.mujoco_plant import MjcfPlant

    tmp = tmp_path_factory.mktemp("replay")
    policy_path = _policy(tmp / "policy.safetensors")
    log = tmp / "liquidnode.sim.mcap"
    recorder = McapRecorder(log, command="sim", policy_path=policy_path)
    loop = ControlLoop(
        MjcfPlant(PENDULUM),
        Policy.load(policy_path),
        LoopConfig(realtime=False, max_ticks=120),
        recorder=recorder,
        policy_path=policy_path,
    )
    loop.run(episodes=2, seed=7)
    return log


def test_policy_replay_is_bit_for_bit(sim_log: Path) -> None:
    for ep in load_episodes(sim_log):
        result = replay_policy(ep)
        assert result.bit_exact and result.max_action_dev == 0.0 and result.max_state_dev == 0.0
        assert result.ticks == ep.ticks == 120 and result.policy == "attached"


def test_sim_replay_reproduces_the_trajectory(sim_log: Path) -> None:
    for ep in load_episodes(sim_log):
        assert ep.seed == 7 + ep.index
        result = replay_sim(ep)
        assert result.max_obs_drift == 0.0 and result.ticks == 120


def test_another_policy_is_caught(sim_log: Path, tmp_path: Path) -> None:
    other = _policy(tmp_path / "other.safetensors", seed=2)
    result = replay_policy(load_episode(sim_log), other)
    assert result.max_action_dev > 1e-3 and not result.bit_exact and result.worst_tick >= 0
    with pytest.raises(AssertionError, match="deviates by"):
        assert_replays(sim_log, policy=other, tol=1e-6)
    assert _cli(["replay", str(sim_log), "--policy", str(other), "--tol", "1e-6"]) == 1


def test_wrong_sizes_are_refused(sim_log: Path, tmp_path: Path) -> None:
    from liquidnode.controller.policy import random_policy

    path = tmp_path / "wide.safetensors"
    random_policy(5, 1, seed=0).save(path)
    with pytest.raises(SpaceMismatchError, match="5 observations"):
        replay_policy(load_episode(sim_log), path)


def test_sim_drift_is_caught(sim_log: Path) -> None:
    ep = load_episode(sim_log)
    ep.sent = ep.sent + 0.05  # as if the physics or the actuation had changed
    assert replay_sim(ep).max_obs_drift > 1e-4


def test_assert_replays_one_liner(sim_log: Path) -> None:
    results = assert_replays(sim_log, sim=True)
    assert len(results) == 2 and all(p.bit_exact for p, _ in results)


def test_replay_command_json_and_plot(sim_log: Path, tmp_path: Path, capsys) -> None:
    png = tmp_path / "replay.png"
    argv = ["replay", str(sim_log), "--sim", "--plot", str(png), "--episode", "1", "--json"]
    assert _cli(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] and out["max_action_dev"] == 0.0 and out["max_obs_drift"] == 0.0
    assert [r["episode"] for r in out["episodes"]] == [1]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_replay_command_text(sim_log: Path, capsys) -> None:
    assert _cli(["replay", str(sim_log)]) == 0
    out = capsys.readouterr().out
    assert "bit-for-bit" in out and out.strip().endswith("(sim tol 1e-09)")


def test_logs_command(sim_log: Path, capsys) -> None:
    assert _cli(["logs", str(sim_log), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["ticks"] == 240 and len(s["episodes"]) == 2 and s["complete"]
    assert s["plant"] == "pendulum" and s["policy"]["attached"]
    assert s["events"]["episode_start"] == 2 and s["events"]["episode_end"] == 2
    assert set(s["lateness_us"]) == {"p50", "p99", "max"}
    assert _cli(["logs", str(sim_log)]) == 0
    assert "lateness" in capsys.readouterr().out


def test_bad_log_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(b"PK\x03\x04 not a log at all")
    with pytest.raises(LogFileError, match="not an MCAP log"):
        _cli(["replay", str(bad)])


def test_sim_replay_uses_the_attached_model(tmp_path: Path) -> None:
    """A log of an MJCF simulation carries its model: --sim works after the file is gone."""
    from liquidnode.controller.loop import ControlLoop, LoopConfig
    from liquidnode.controller.policy import Policy
    from liquidnode.sim.mujoco_plant import MjcfPlant

    model = tmp_path / "moved.xml"
    model.write_bytes(PENDULUM.read_bytes())
    policy_path = _policy(tmp_path / "policy.safetensors")
    log = tmp_path / "moved.mcap"
    loop = ControlLoop(
        MjcfPlant(model),
        Policy.load(policy_path),
        LoopConfig(realtime=False, max_ticks=30),
        recorder=McapRecorder(log, policy_path=policy_path),
    )
    loop.run(episodes=1, seed=3)
    model.unlink()
    ep = load_episode(log)
    assert ep.model_bytes == PENDULUM.read_bytes()
    assert replay_sim(ep).max_obs_drift == 0.0


def test_a_policy_with_an_action_low_pass_replays_bit_for_bit(tmp_path: Path) -> None:
    """The filter's command is part of the state the log keeps: its episode replays bit for
    bit, and the same weights without the filter are caught."""
    from liquidnode.controller.loop import ControlLoop, LoopConfig
    from liquidnode.controller.policy import Policy, random_policy
    from liquidnode.sim.mujoco_plant import MjcfPlant

    def save(path: Path, action: dict[str, object]) -> Path:
        random_policy(3, 1, seed=1, action_scale=np.array([2.0]), action=action).save(path)
        return path

    filtered = save(tmp_path / "filtered.safetensors", {"squash": "tanh", "low_pass_hz": 3.0})
    plain = save(tmp_path / "plain.safetensors", {"squash": "tanh"})
    log = tmp_path / "liquidnode.sim.mcap"
    loop = ControlLoop(
        MjcfPlant(PENDULUM),
        Policy.load(filtered),
        LoopConfig(realtime=False, max_ticks=60),
        recorder=McapRecorder(log, command="sim", policy_path=filtered),
        policy_path=filtered,
    )
    loop.run(episodes=1, seed=3)
    result = replay_policy(load_episode(log))
    assert result.bit_exact and result.ticks == 60 and result.policy == "attached"
    assert replay_policy(load_episode(log), plain).max_action_dev > 1e-3
