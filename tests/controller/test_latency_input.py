"""A policy told its actuation latency: file, runtime step, control loop, replay, fold."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from liquidnode.controller import cells
from liquidnode.controller.errors import LiquidNodeError, LogFileError, PolicyFileError
from liquidnode.controller.export.fold_latency import fold_latency
from liquidnode.controller.latency_input import LatencyInput
from liquidnode.controller.logs import McapRecorder, load_episodes
from liquidnode.controller.logs.replay import replay_policy
from liquidnode.controller.loop import ControlLoop, LoopConfig
from liquidnode.controller.policy import Policy, random_policy
from liquidnode.sim.mujoco_plant import MjcfPlant
from liquidnode.sim.randomization.spec import spec_from_dict
from tests.controller.test_loop import PointMass

ROOT = Path(__file__).resolve().parents[2]
PENDULUM = ROOT / "sim" / "models" / "pendulum.xml"
TOLD = LatencyInput().as_metadata()


def _told_policy(feedback: bool = False, obs_dim: int = 3, seed: int = 4) -> Policy:
    return random_policy(
        obs_dim,
        1,
        seed=seed,
        units=8,
        action={"squash": "tanh", "feedback": feedback},
        latency_input=TOLD,
        time_scale=50.0,
    )


def test_normalise_clips_to_the_trained_range_and_refuses_nonsense() -> None:
    li = LatencyInput(low=0.0, high=1.5, mean=0.5, std=0.25)
    assert li.normalise(0.5) == 0.0
    assert li.normalise(1.0) == pytest.approx(2.0)
    assert li.normalise(9.0) == li.normalise(1.5) == pytest.approx(4.0)
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite number of control periods"):
            li.normalise(bad)
    with pytest.raises(ValueError, match="low < high"):
        LatencyInput(low=1.0, high=1.0)


def test_the_input_sits_after_the_observation_and_before_the_feedback() -> None:
    """Stepping a told policy = stepping its cell on ``[x | ell | a_prev]`` by hand."""
    policy = _told_policy(feedback=True)
    policy.set_latency(0.8)
    ell = LatencyInput().normalise(0.8)
    cell = cells.build_cell(policy.metadata.cell, policy.cell.weights())  # buffers of its own
    h, fb = np.zeros(cell.state_dim, np.float32), np.zeros(1)
    rng = np.random.default_rng(0)
    for _ in range(30):
        obs = rng.normal(size=3)
        x = np.concatenate([obs, [ell], fb]).astype(np.float32)
        y, h = cell.step(x, h.copy(), 0.02 * 50.0)
        fb = np.tanh(y.astype(np.float64))
        np.testing.assert_array_equal(policy.step(obs, 0.02), fb)


def test_the_told_latency_changes_the_action_and_survives_reset_and_copies() -> None:
    policy = _told_policy()
    obs = np.array([0.3, -0.2, 0.5])
    first = policy.step(obs, 0.02)
    policy.reset()
    assert policy.latency_ticks == 0.0
    policy.set_latency(1.0)
    assert not np.array_equal(policy.step(obs, 0.02), first)
    twin = copy.deepcopy(policy)
    assert twin.latency_ticks == 1.0
    policy.reset()
    twin.reset()
    np.testing.assert_array_equal(twin.step(obs, 0.02), policy.step(obs, 0.02))
    plain = random_policy(3, 1, seed=4)
    with pytest.raises(ValueError, match="no latency input"):
        plain.set_latency(0.5)


def test_file_round_trip_and_malformed_latency_input(tmp_path: Path) -> None:
    policy = _told_policy(feedback=True)
    policy.save(tmp_path / "told.safetensors")
    loaded = Policy.load(tmp_path / "told.safetensors")
    assert loaded.latency_input == LatencyInput()
    assert loaded.metadata.latency_input == TOLD
    # files without the input do not gain a key
    plain = random_policy(3, 1, seed=4)
    plain.save(tmp_path / "plain.safetensors")
    assert b"latency_input" not in (tmp_path / "plain.safetensors").read_bytes()
    for bad, message in (
        ({**TOLD, "std": 0.0}, "std must be > 0"),
        ({**TOLD, "units": "ms"}, "unknown key 'units'"),
        ({**TOLD, "low": "0"}, "low must be a finite number"),
    ):
        policy.metadata.latency_input = bad
        with pytest.raises(PolicyFileError, match=message):
            policy.save(tmp_path / "bad.safetensors")
            Policy.load(tmp_path / "bad.safetensors")
    # a cell without the extra input column does not pass for a told policy
    policy.metadata.latency_input = None
    with pytest.raises(PolicyFileError, match="input size"):
        policy.save(tmp_path / "mismatch.safetensors")
        Policy.load(tmp_path / "mismatch.safetensors")


def test_the_loop_tells_each_episode_the_plants_drawn_latency(tmp_path: Path) -> None:
    """Episodes on a randomised MuJoCo plant: the policy is told exactly the latency the
    randomisation drew for that episode, the log keeps it and a replay is bit-exact."""
    spec = spec_from_dict({"latency": {"ticks": [0.0, 1.4]}})
    plant = MjcfPlant(PENDULUM, randomize=spec, randomize_seed=3)
    policy = _told_policy()
    told: list[tuple[float, float]] = []
    original = policy.set_latency

    def spy(ticks: float) -> None:
        original(ticks)
        told.append((ticks, plant.actuation_latency_s() / plant.spec.control_period_s))

    policy.set_latency = spy  # type: ignore[method-assign]
    log = tmp_path / "told.mcap"
    loop = ControlLoop(
        plant,
        policy,
        LoopConfig(realtime=False, max_ticks=40),
        recorder=McapRecorder(log, command="sim"),
    )
    loop.run(episodes=4, seed=11)
    assert len(told) == 4
    assert all(t == pytest.approx(d, abs=1e-12) for t, d in told)
    assert len({round(t, 6) for t, _ in told}) == 4  # drawn anew every episode
    assert all(0.0 <= t <= 1.4 for t, _ in told)
    episodes = load_episodes(log)
    assert [e.latency_ticks for e in episodes] == pytest.approx([t for t, _ in told])
    fresh = copy.deepcopy(policy)  # rebuilt from the file's tensors: without the spy
    for episode in episodes:
        assert replay_policy(episode, fresh).bit_exact
    # the config's estimate overrides the simulation's own
    loop = ControlLoop(plant, fresh, LoopConfig(realtime=False, max_ticks=5, latency_s=0.01))
    loop.run(episodes=1, seed=11)
    assert fresh.latency_ticks == pytest.approx(0.01 / plant.spec.control_period_s)


def _device() -> PointMass:
    """A plant that does not know its latency (as a serial robot does not), 20 ms period."""
    return PointMass(period=0.02, episode_ticks=3)


def test_a_plant_that_does_not_know_its_latency_needs_it_configured() -> None:
    with pytest.raises(LiquidNodeError, match=r"does not know it.*--latency-ms"):
        ControlLoop(_device(), _told_policy(obs_dim=2), LoopConfig(realtime=False))
    with pytest.raises(LiquidNodeError, match=">= 0 s"):
        config = LoopConfig(realtime=False, latency_s=-0.001)
        ControlLoop(_device(), _told_policy(obs_dim=2), config)
    policy = _told_policy(obs_dim=2)
    ControlLoop(_device(), policy, LoopConfig(realtime=False, latency_s=0.015)).run(episodes=1)
    assert policy.latency_ticks == pytest.approx(0.75)
    # a policy without the input runs on it as before
    plain = random_policy(2, 1, seed=1)
    ControlLoop(_device(), plain, LoopConfig(realtime=False)).run(episodes=1)


def test_a_log_without_the_told_latency_cannot_be_replayed_by_a_told_policy(
    tmp_path: Path,
) -> None:
    log = tmp_path / "plain.mcap"
    plain = random_policy(3, 1, seed=4, units=8)
    ControlLoop(
        MjcfPlant(PENDULUM),
        plain,
        LoopConfig(realtime=False, max_ticks=10),
        recorder=McapRecorder(log, command="sim"),
    ).run(episodes=1, seed=1)
    (episode,) = load_episodes(log)
    assert episode.latency_ticks is None
    with pytest.raises(LogFileError, match="does not say what it was told"):
        replay_policy(episode, _told_policy())


@pytest.mark.parametrize("options", [{}, {"backbone_layers": 0}, {"mode": "pure"}])
def test_fold_latency_equals_the_told_policy(options: dict) -> None:
    policy = random_policy(
        3,
        1,
        seed=2,
        units=8,
        action={"squash": "tanh", "feedback": True},
        latency_input=TOLD,
        cell_options=options,
    )
    policy.set_latency(0.6)
    folded = fold_latency(policy)
    assert folded.latency_input is None
    assert folded.cell.input_size == policy.cell.input_size - 1
    assert folded.metadata.provenance["latency_folded"] == {"ticks": 0.6}
    rng = np.random.default_rng(1)
    for _ in range(200):
        obs = rng.normal(size=3)
        np.testing.assert_allclose(folded.step(obs, 1.0), policy.step(obs, 1.0), atol=2e-6)
    policy.set_latency(0.0)  # told otherwise, it acts otherwise
    policy.reset()
    folded.reset()
    obs = np.array([1.0, -1.0, 0.5])
    assert np.abs(folded.step(obs, 1.0) - policy.step(obs, 1.0)).max() > 1e-4
    ltc = random_policy(3, 1, cell="ltc_fc", units=6, latency_input=TOLD)
    with pytest.raises(Exception, match="cfc only"):
        fold_latency(ltc)
