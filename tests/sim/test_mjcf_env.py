"""MjcfEnv: an MJCF file as a Gymnasium training env, with MjcfPlant's conventions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from liquidnode.controller.errors import PlantError
from liquidnode.controller.train.envs import env_info, make_env
from liquidnode.sim import PENDULUM_XML
from liquidnode.sim.mjcf_env import MjcfEnv
from liquidnode.sim.mjcf_plant import MjcfPlant

SLIDER = """<mujoco>
  <option timestep="0.01"/>
  <custom>{numerics}</custom>
  <worldbody>
    <body name="cart">
      <joint name="slide" type="slide" axis="0 0 1"/>
      <geom type="box" size="0.1 0.1 0.1" mass="1"/>
      <site name="s" pos="0 0 0"/>
    </body>
  </worldbody>
  <actuator><motor name="push" joint="slide" {limits}/></actuator>
  <sensor><framepos name="reward" objtype="site" objname="s"/></sensor>
</mujoco>"""


def _slider(
    tmp_path: Path, numerics: str = "", limits: str = 'ctrllimited="true" ctrlrange="-1 1"'
) -> Path:
    path = tmp_path / "slider.xml"
    path.write_text(SLIDER.format(numerics=numerics, limits=limits))
    return path


def test_pendulum_env_spaces_dt_and_reward() -> None:
    env = MjcfEnv(PENDULUM_XML)
    assert env.observation_space.shape == (3,) and env.action_space.shape == (1,)
    assert env.action_space.low.tolist() == [-2.0] and env.action_space.high.tolist() == [2.0]
    assert env.dt == pytest.approx(0.02)
    obs, _ = env.reset(seed=3)
    plant = MjcfPlant(PENDULUM_XML)
    assert np.allclose(obs, plant.reset(3).values)  # the same state as sim/twin for a seed
    obs, reward, terminated, truncated, info = env.step(np.array([0.0], np.float32))
    tip_height = 0.5 * math.cos(obs[0])  # hinge angle 0 = upright, pole 0.5 m
    assert reward == pytest.approx(tip_height, abs=1e-6)
    assert not terminated and not truncated and info["dt"] == pytest.approx(0.02)


def test_truncation_and_min_reward_termination(tmp_path: Path) -> None:
    env = MjcfEnv(_slider(tmp_path), max_episode_steps=3)
    env.reset(seed=0)
    flags = [env.step(np.zeros(1, np.float32))[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]
    # liquidnode_min_reward: terminated when the reward (the site's height, falling under
    # gravity) drops below it
    path = _slider(tmp_path, numerics='<numeric name="liquidnode_min_reward" data="-0.05"/>')
    env = MjcfEnv(path)
    env.reset(seed=0)
    for _ in range(200):
        _, reward, terminated, truncated, _ = env.step(np.array([-1.0], np.float32))
        if terminated:
            break
    assert terminated and not truncated and reward < -0.05, reward
    assert env.plant.spec.info["min_reward"] == -0.05


def test_unbounded_actuator_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PlantError, match="push have no finite ctrlrange"):
        MjcfEnv(_slider(tmp_path, limits=""))


def test_training_envs_accept_an_mjcf_path() -> None:
    info = env_info(str(PENDULUM_XML))
    assert (info.obs_dim, info.act_dim, info.control_period_s) == (3, 1, pytest.approx(0.02))
    assert info.obs_units == ("rad", "rad/s", "N·m") and info.act_units == ("N·m",)
    env = make_env(str(PENDULUM_XML))
    assert isinstance(env, MjcfEnv)


def test_the_upright_pendulum_terminates_when_the_pole_falls() -> None:
    env = MjcfEnv(PENDULUM_XML.with_name("pendulum_upright.xml"))
    env.reset(seed=0)
    ticks = 0
    terminated = truncated = False
    while not (terminated or truncated):
        _, reward, terminated, truncated, _ = env.step(np.zeros(1, np.float32))
        ticks += 1
    assert terminated and reward < 0.35 and ticks < 200, (ticks, reward)
