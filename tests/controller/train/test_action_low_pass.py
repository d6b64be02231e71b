"""--action-low-pass: the trainer's environments filter as the exported policy does."""

from __future__ import annotations

import numpy as np
import pytest

from liquidnode.controller.action_filter import low_pass_alpha
from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.policy import random_policy
from liquidnode.controller.policy_file import read_policy_file
from liquidnode.controller.train.envs import ActionLowPass, ControlPeriodJitter, make_env
from liquidnode.controller.train.ppo import train
from tests.controller.train.quick_config import tiny_config

ENV = "Reacher-v5"  # two actions in [-1, 1], no termination
NOMINAL_DT = 0.02


def _jittered(seed: int) -> ControlPeriodJitter:
    return ControlPeriodJitter(make_env(ENV), jitter=0.4, seed=seed)


def test_the_wrapper_filters_with_the_period_the_cell_is_fed_and_the_plant_gets_it():
    env = ActionLowPass(_jittered(3), 3.0)
    rng = np.random.default_rng(0)
    try:
        for episode in range(2):
            env.reset(seed=episode)
            z, dt, periods = np.zeros(2), NOMINAL_DT, []
            for _ in range(30):
                action = rng.uniform(-1.0, 1.0, 2)
                _, _, _, _, info = env.step(action)
                z = z + low_pass_alpha(3.0, dt) * (action - z)  # the previous tick's period
                np.testing.assert_allclose(info["command"], z, rtol=0, atol=1e-15)
                np.testing.assert_array_equal(env.unwrapped.data.ctrl, info["command"])
                assert np.abs(info["command"] - action).max() > 1e-3
                dt = info["dt"]
                periods.append(dt)
            assert np.ptp(periods) > 0.01  # the periods really varied
    finally:
        env.close()


def test_training_with_the_wrapper_is_running_the_filtered_policy():
    """The cell behind the trainer's wrapper and the exported policy with the filter inside
    send the plant the same commands and see the same states, tick by tick."""
    kwargs = {"units": 8, "seed": 6, "time_scale": 50.0, "control_rate_hz": 50.0}
    filtered = random_policy(10, 2, action={"squash": "tanh", "low_pass_hz": 3.0}, **kwargs)
    plain = random_policy(10, 2, action={"squash": "tanh"}, **kwargs)
    runtime, trainer = _jittered(8), ActionLowPass(_jittered(8), 3.0)
    try:
        obs_r, _ = runtime.reset(seed=1)
        obs_t, _ = trainer.reset(seed=1)
        dt_r = dt_t = NOMINAL_DT
        for _ in range(50):
            _, _, _, _, info_r = runtime.step(filtered.step(obs_r, dt_r))
            obs_r, dt_r = runtime.unwrapped._get_obs(), info_r["dt"]
            _, _, _, _, info_t = trainer.step(plain.step(obs_t, dt_t))
            obs_t, dt_t = trainer.unwrapped._get_obs(), info_t["dt"]
            assert dt_r == dt_t
            np.testing.assert_allclose(runtime.unwrapped.data.ctrl, info_t["command"], atol=1e-5)
            np.testing.assert_allclose(obs_r, obs_t, atol=1e-5)
    finally:
        runtime.close()
        trainer.close()


def test_the_trained_file_carries_its_cut_off_and_a_fine_tune_keeps_it(tmp_path):
    result = train(tiny_config(tmp_path, action_low_pass=4.0))
    meta, _ = read_policy_file(result.policy_path)
    assert meta.action == {"squash": "tanh", "low_pass_hz": 4.0}
    assert meta.provenance["config"]["action_low_pass"] == 4.0
    fine = {"init_from": str(result.policy_path), "units": 4, "backbone_units": 8}
    with pytest.raises(LiquidNodeError, match="acts behind a 4 Hz action low-pass"):
        train(tiny_config(tmp_path, run_dir=str(tmp_path / "a"), **fine))
    with pytest.raises(LiquidNodeError, match="--action-low-pass 4"):
        train(tiny_config(tmp_path, run_dir=str(tmp_path / "b"), action_low_pass=2.0, **fine))


@pytest.mark.parametrize("bad", [0.0, -3.0, float("inf")])
def test_a_cut_off_that_is_not_a_frequency_is_refused(bad, tmp_path):
    with pytest.raises(LiquidNodeError, match="--action-low-pass must be a cut-off in Hz > 0"):
        train(tiny_config(tmp_path, action_low_pass=bad))
