"""Env construction errors and the control-period jitter wrapper."""

import gymnasium as gym
import numpy as np
import pytest

from liquidnode.controller.errors import LiquidNodeError, SpaceMismatchError
from liquidnode.controller.policy import random_policy
from liquidnode.controller.train.envs import (
    ControlPeriodJitter,
    box_space,
    env_info,
    make_env,
)
from liquidnode.controller.train.evaluate import evaluate_policy


def test_unknown_env_id_is_one_clear_error():
    with pytest.raises(LiquidNodeError, match="unknown Gymnasium environment 'NoSuchEnv-v0'"):
        make_env("NoSuchEnv-v0")


def test_discrete_action_space_is_refused_with_its_name():
    with pytest.raises(LiquidNodeError, match=r"Discrete action space.*needs a Box action space"):
        make_env("CartPole-v1")


def test_box_space_refuses_other_spaces_with_their_description():
    box = gym.spaces.Box(-1.0, 1.0, (2,))
    assert box_space(box, "action") is box
    with pytest.raises(LiquidNodeError, match=r"the action space is Discrete\(3\)"):
        box_space(gym.spaces.Discrete(3), "action")
    with pytest.raises(LiquidNodeError, match="one-dimensional Box"):
        box_space(gym.spaces.Box(-1.0, 1.0, (2, 2)), "observation")


def test_env_info_of_inverted_pendulum():
    info = env_info("InvertedPendulum-v5")
    assert (info.obs_dim, info.act_dim) == (4, 1)
    assert info.control_period_s == pytest.approx(0.04)
    np.testing.assert_array_equal(info.act_low, [-3.0])
    assert len(info.obs_names) == 4 and len(info.act_names) == 1


def test_jitter_varies_the_period_and_restores_the_model():
    env = ControlPeriodJitter(make_env("InvertedPendulum-v5"), jitter=0.3, seed=0)
    base = env.unwrapped
    env.reset(seed=0)
    dts = []
    for _ in range(200):
        _, _, term, trunc, info = env.step(np.zeros(1))
        dts.append(info["dt"])
        assert base.frame_skip == 2 and base.model.opt.timestep == pytest.approx(0.02)
        if term or trunc:
            env.reset()
    dts = np.asarray(dts)
    assert dts.min() >= 0.04 * 0.7 - 1e-12 and dts.max() <= 0.04 * 1.3 + 1e-12
    assert dts.std() > 0.003  # really varied, not a constant


def test_jittered_step_simulates_the_reported_period():
    # the simulated time advances by exactly the dt reported to the cell
    env = ControlPeriodJitter(make_env("InvertedPendulum-v5"), jitter=0.45, seed=1)
    env.reset(seed=1)
    data = env.unwrapped.data
    for _ in range(20):
        t0 = data.time
        _, _, term, _, info = env.step(np.zeros(1))
        if term:
            break
        assert data.time - t0 == pytest.approx(info["dt"], abs=1e-9)


def test_no_jitter_reports_the_nominal_period():
    env = ControlPeriodJitter(make_env("InvertedPendulum-v5"), jitter=0.0)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(1))
    assert info["dt"] == pytest.approx(0.04)


def test_evaluation_refuses_a_policy_of_the_wrong_size():
    policy = random_policy(5, 1, units=4)
    with pytest.raises(SpaceMismatchError, match=r"\(5, 1\) but InvertedPendulum-v5 has \(4, 1\)"):
        evaluate_policy(policy, "InvertedPendulum-v5", 1, 0)


def test_evaluation_tells_a_policy_with_a_latency_input_each_episodes_latency(tmp_path):
    """The trainer's evaluation tells the drawn latency as the control loop does: the same
    returns as ``liquidnode eval``'s loop on the same randomised episodes."""
    from liquidnode.controller.latency_input import LatencyInput
    from liquidnode.controller.loop import ControlLoop, LoopConfig
    from liquidnode.sim import make_plant, randomization_spec

    spec = tmp_path / "lat.toml"
    spec.write_text("[latency]\nticks = [0.0, 1.5]\n")
    policy = random_policy(4, 1, units=6, seed=3, latency_input=LatencyInput().as_metadata())
    ours = evaluate_policy(policy, "InvertedPendulum-v5", 3, 40, randomize=str(spec))
    plant = make_plant(
        "InvertedPendulum-v5", randomize=randomization_spec(str(spec)), randomize_seed=40
    )
    loop = ControlLoop(plant, policy, LoopConfig(realtime=False))
    summary = loop.run(episodes=3, seed=40)
    assert ours["returns"] == pytest.approx([e.return_ for e in summary.episodes], abs=1e-3)
    told = []
    policy.set_latency = told.append  # the evaluation tells every episode its own draw
    evaluate_policy(policy, "InvertedPendulum-v5", 3, 40, randomize=str(spec))
    assert len(set(told)) == 3 and all(0.0 <= t <= 1.5 for t in told)
