"""MuJoCo plants on real MuJoCo: spec (names, units, limits, period), rates, divergence, reset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from liquidnode.controller.errors import PlantError, TimingError
from liquidnode.sim import PENDULUM_XML, is_mjcf_path, make_plant
from liquidnode.sim.mjcf_plant import MjcfPlant
from liquidnode.sim.mujoco_plant import GymPlant

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def pendulum_env() -> GymPlant:
    plant = make_plant("InvertedPendulum-v5")
    yield plant
    plant.disconnect()


def test_gym_inverted_pendulum_spec(pendulum_env):
    spec = pendulum_env.spec
    assert spec.name == "InvertedPendulum-v5"
    assert spec.obs_names == ("slider pos", "hinge pos", "slider vel", "hinge vel")
    assert spec.obs_units == ("m", "rad", "m/s", "rad/s")
    assert spec.act_names == ("slide",)
    assert spec.action_low.tolist() == [-3.0] and spec.action_high.tolist() == [3.0]
    assert spec.safe_action.tolist() == [0.0]
    assert spec.control_period_s == pytest.approx(0.04)
    assert spec.info["frame_skip"] == 2 and spec.info["max_episode_steps"] == 1000


def test_gym_step_gives_reward_and_termination(pendulum_env):
    obs = pendulum_env.reset(seed=3)
    assert obs.values.shape == (4,) and obs.reward == 0.0
    ticks = 0
    while not (obs.terminated or obs.truncated):
        pendulum_env.act(np.array([3.0]))  # push hard one way: the pole falls
        obs = pendulum_env.observe()
        ticks += 1
        assert obs.reward in (0.0, 1.0)
    assert obs.terminated and 1 < ticks < 100


def test_gym_reset_is_deterministic_per_seed(pendulum_env):
    a = pendulum_env.reset(seed=5).values
    b = pendulum_env.reset(seed=5).values
    c = pendulum_env.reset(seed=6).values
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_halfcheetah_channels_come_from_the_model():
    plant = make_plant("HalfCheetah-v5")
    spec = plant.spec
    assert spec.obs_dim == 17 and spec.act_dim == 6
    assert spec.obs_names[0] == "rootz pos" and spec.obs_units[0] == "m"  # rootx excluded
    assert spec.obs_names[8] == "rootx vel" and spec.obs_units[8] == "m/s"
    assert spec.act_names == ("bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot")
    plant.disconnect()


def test_gym_rate_override_changes_frame_skip():
    plant = make_plant("InvertedPendulum-v5", rate_hz=50)
    assert plant.spec.control_period_s == pytest.approx(0.02) and plant.frame_skip == 1
    plant.disconnect()


def test_gym_rate_not_a_multiple_of_the_physics_step_names_both_numbers():
    with pytest.raises(TimingError, match=r"0\.0333333 s \(30 Hz\).*physics step 0\.02 s"):
        make_plant("InvertedPendulum-v5", rate_hz=30)


@pytest.mark.parametrize(
    ("env", "match"),
    [("NoSuchEnv-v5", "unknown environment id 'NoSuchEnv-v5'"), ("CartPole-v1", "not a MuJoCo")],
)
def test_bad_env_ids_are_plant_errors(env, match):
    with pytest.raises(PlantError, match=match):
        make_plant(env)


def test_mjcf_pendulum_spec_follows_the_conventions():
    plant = make_plant(PENDULUM_XML)
    assert isinstance(plant, MjcfPlant)
    spec = plant.spec
    assert spec.obs_names == ("hinge pos", "hinge vel", "torque")
    assert spec.obs_units == ("rad", "rad/s", "N·m")
    assert spec.act_names == ("torque",) and spec.act_units == ("N·m",)
    assert spec.action_low.tolist() == [-2.0] and spec.action_high.tolist() == [2.0]
    assert spec.control_period_s == pytest.approx(0.02)  # liquidnode_frame_skip 10 x 2 ms
    assert spec.info["max_ticks"] == 500 and plant.camera == {"fixedcamid": 0}


def test_mjcf_reward_is_tip_height_and_episode_truncates_at_max_ticks():
    plant = MjcfPlant(PENDULUM_XML, max_ticks=30, reset_noise=0.0)
    obs = plant.reset(seed=0)
    assert obs.values.tolist() == [0.0, 0.0, 0.0]  # upright, at rest
    plant.act(np.array([0.0]))
    obs = plant.observe()
    assert obs.reward == pytest.approx(0.5, abs=1e-3)  # tip 0.5 m above the hinge
    for _ in range(29):
        assert not obs.truncated
        plant.act(np.array([2.0]))
        obs = plant.observe()
    assert obs.truncated and not obs.terminated
    assert obs.values[2] == pytest.approx(2.0)  # the torque sensor reads the applied torque
    assert obs.reward < 0.5


def test_mjcf_reset_noise_is_seeded():
    plant = MjcfPlant(PENDULUM_XML)
    a, b, c = plant.reset(1).values, plant.reset(1).values, plant.reset(2).values
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.abs(a[:2]).max() <= 0.05


def test_mjcf_rate_must_be_a_whole_multiple_of_the_timestep():
    assert MjcfPlant(PENDULUM_XML, rate_hz=100).frame_skip == 5
    assert MjcfPlant(PENDULUM_XML, rate_hz=500).frame_skip == 1
    with pytest.raises(TimingError, match=r"0\.00333333 s \(300 Hz\).*physics step 0\.002 s"):
        MjcfPlant(PENDULUM_XML, rate_hz=300)
    with pytest.raises(TimingError, match="whole multiple"):
        MjcfPlant(PENDULUM_XML, rate_hz=1000)  # shorter than one physics step


def test_divergence_is_a_named_plant_error():
    plant = make_plant(FIXTURES / "diverging.xml")
    plant.reset(seed=0)
    with pytest.raises(PlantError, match=r"diverged .* non-finite or huge acceleration"):
        for _ in range(20):
            plant.act(np.array([1.0]))


def test_safe_stop_sets_safe_controls_without_stepping():
    plant = MjcfPlant(PENDULUM_XML)
    plant.reset(seed=0)
    plant.act(np.array([1.5]))
    t = plant.data.time
    plant.safe_stop()
    assert plant.data.ctrl.tolist() == [0.0] and plant.data.time == t


def test_bad_mjcf_files_are_plant_errors(tmp_path):
    with pytest.raises(PlantError, match="does not exist"):
        make_plant(tmp_path / "missing.xml")
    bad = tmp_path / "bad.xml"
    bad.write_text("<mujoco><worldbody><geom type='nonsense'/></worldbody></mujoco>")
    with pytest.raises(PlantError, match="MuJoCo cannot load"):
        make_plant(bad)


def test_make_plant_dispatch():
    assert is_mjcf_path("x/y.XML") and is_mjcf_path(PENDULUM_XML)
    assert not is_mjcf_path("HalfCheetah-v5")


def test_gymnasium_asset_notice_is_dropped_and_other_mujoco_warnings_pass():
    import mujoco

    from liquidnode.sim.physics import quiet_bundled_asset_notices

    got: list[str] = []
    before = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(got.append)
    try:
        with quiet_bundled_asset_notices():
            make_plant("HalfCheetah-v5")  # its XML uses the deprecated settotalmass
            mujoco.get_mju_user_warning()("something else went wrong")
        assert got == ["something else went wrong"]
        assert mujoco.get_mju_user_warning() is not None  # the previous handler is back
        mujoco.get_mju_user_warning()("after the block")
        assert got[-1] == "after the block"
    finally:
        mujoco.set_mju_user_warning(before)
