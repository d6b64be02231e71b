"""Domain randomisation on real MuJoCo: latency queue, seeding, dynamics scaling, spec errors."""

from __future__ import annotations

import json
import re

import mujoco
import numpy as np
import pytest

from liquidnode.controller.loop import ControlLoop, LoopConfig
from liquidnode.controller.policy import Policy
from liquidnode.policies import default_policy_path
from liquidnode.sim import PENDULUM_XML, make_env, make_plant
from liquidnode.sim.randomization import (
    SpecError,
    load_spec,
    preset_names,
    spec_from_dict,
    spec_from_json,
)
from liquidnode.sim.randomization.perturbed_physics import PerturbedPhysics

STEP = 0.002  # physics step of sim/models/pendulum.xml, s


def _pendulum() -> tuple[mujoco.MjModel, mujoco.MjData]:
    model = mujoco.MjModel.from_xml_path(str(PENDULUM_XML))
    data = mujoco.MjData(model)
    data.qpos[0] = 0.3
    mujoco.mj_forward(model, data)
    return model, data


@pytest.mark.parametrize("k", [1, 3, 7])
def test_latency_of_k_physics_steps_delays_the_command_by_k_steps(k):
    """One physics step per tick, latency k steps: after every step MuJoCo's ctrl and the
    actuator force it computed are the command issued k ticks earlier (the queue spans ticks)."""
    model, data = _pendulum()
    spec = spec_from_dict({"latency": {"ticks": float(k)}})
    physics = PerturbedPhysics(model, data, spec, control_period_s=STEP)
    physics.reset(np.random.default_rng(0))
    commands = np.linspace(-1.9, 1.9, 25)
    for t, u in enumerate(commands):
        physics.run_tick(np.array([u]), n_steps=1)
        expected = commands[t - k] if t >= k else 0.0  # before the first arrival: reset ctrl
        assert data.ctrl[0] == expected
        assert data.qfrc_actuator[0] == pytest.approx(expected)  # gear 1, computed in the step


def test_latency_inside_a_tick_matches_stepping_by_hand():
    """Five steps per tick, latency 3 steps: the state equals 3 steps with the old command and
    2 with the new one, bit for bit."""
    model, data = _pendulum()
    ref_model, ref_data = _pendulum()
    spec = spec_from_dict({"latency": {"ticks": 0.6}})  # 3 of the tick's 5 steps
    physics = PerturbedPhysics(model, data, spec, control_period_s=5 * STEP)
    physics.reset(np.random.default_rng(0))
    previous = 0.0
    for u in (1.5, -0.7, 0.2):
        physics.run_tick(np.array([u]), n_steps=5)
        ref_data.ctrl[0] = previous
        mujoco.mj_step(ref_model, ref_data, nstep=3)
        ref_data.ctrl[0] = u
        mujoco.mj_step(ref_model, ref_data, nstep=2)
        previous = u
        assert np.array_equal(data.qpos, ref_data.qpos)
        assert np.array_equal(data.qvel, ref_data.qvel)
    assert model.opt.timestep == STEP


def test_latency_between_physics_steps_splits_the_step():
    """Half a physics step of latency: the step is split at the arrival, so the result lies
    strictly between no latency and a whole step of latency."""

    def final_qvel(ticks: float) -> float:
        model, data = _pendulum()
        physics = PerturbedPhysics(
            model, data, spec_from_dict({"latency": {"ticks": ticks}}), control_period_s=STEP
        )
        physics.reset(np.random.default_rng(0))
        physics.run_tick(np.array([2.0]), n_steps=1)
        return float(data.qvel[0])

    none, half, whole = final_qvel(0.0), final_qvel(0.5), final_qvel(1.0)
    assert min(none, whole) < half < max(none, whole)


def test_zero_randomisation_is_the_nominal_plant():
    """An empty spec steps the Gymnasium env exactly as the plain plant does."""
    nominal = make_plant("InvertedPendulum-v5")
    randomized = make_plant("InvertedPendulum-v5", randomize=spec_from_dict({}))
    a, b = nominal.reset(seed=5), randomized.reset(seed=5)
    assert np.array_equal(a.values, b.values)
    for u in np.sin(np.arange(30)):
        nominal.act(np.array([u]))
        randomized.act(np.array([u]))
        assert np.array_equal(nominal.observe().values, randomized.observe().values)


def _rollout(seed: int, randomize_seed: int) -> np.ndarray:
    plant = make_plant(
        "InvertedPendulum-v5", randomize="InvertedPendulum-v5", randomize_seed=randomize_seed
    )
    policy = Policy.load(default_policy_path("InvertedPendulum-v5"))
    obs = [plant.reset(seed=seed).values]
    policy.reset()
    for _ in range(40):
        plant.act(np.clip(policy.step(obs[-1], 0.04), -3, 3))
        obs.append(plant.observe().values)
    plant.disconnect()
    return np.array(obs)


def test_randomisation_is_seeded_and_reproducible():
    first, again = _rollout(11, 3), _rollout(11, 3)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, _rollout(11, 4))  # another randomisation seed
    assert not np.array_equal(first, _rollout(12, 3))  # another episode


def test_mass_scaling_changes_body_mass_and_reset_restores_it():
    plant = make_plant("InvertedPendulum-v5", randomize=spec_from_dict({}))
    nominal = plant.model.body_mass.copy()
    plant.disconnect()
    plant = make_plant(
        "InvertedPendulum-v5", randomize=spec_from_dict({"dynamics": {"mass": [0.5, 1.5]}})
    )
    scales = set()
    for seed in range(3):
        plant.reset(seed=seed)
        ratio = plant.model.body_mass[1:] / nominal[1:]
        assert np.allclose(ratio, ratio[0]) and 0.5 <= ratio[0] <= 1.5
        scales.add(round(float(ratio[0]), 9))
    assert len(scales) == 3  # drawn per episode from the nominal masses, never compounded
    heavy = make_plant("InvertedPendulum-v5", randomize=spec_from_dict({"dynamics": {"mass": 2}}))
    heavy.reset(seed=0)
    assert np.allclose(heavy.model.body_mass, 2 * nominal)


def test_dt_jitter_reports_the_simulated_period():
    env = make_env("InvertedPendulum-v5", randomize=spec_from_dict({"timing": {"dt_jitter": 0.4}}))
    env.reset(seed=0)
    data = env.unwrapped.data
    periods = []
    for _ in range(20):
        t0 = data.time
        _, _, _, _, info = env.step(np.zeros(1))
        assert data.time - t0 == pytest.approx(info["dt"])
        periods.append(info["dt"])
    assert 0.024 <= min(periods) < max(periods) <= 0.056
    assert env.unwrapped.model.opt.timestep == 0.02 and env.unwrapped.frame_skip == 2
    env.close()


def test_jittered_plant_feeds_the_true_period_to_the_cell():
    spec = spec_from_dict({"timing": {"dt_jitter": 0.3}})
    plant = make_plant("InvertedPendulum-v5", randomize=spec)
    seen: list[float] = []
    policy = Policy.load(default_policy_path("InvertedPendulum-v5"))
    step = policy.step

    def recording_step(obs, dt):
        seen.append(dt)
        return step(obs, dt)

    policy.step = recording_step
    ControlLoop(plant, policy, LoopConfig(realtime=False, max_ticks=30)).run(seed=0)
    assert seen[0] == pytest.approx(0.04) and len(set(seen[1:])) > 10
    assert all(0.028 - 1e-9 <= dt <= 0.052 + 1e-9 for dt in seen)


def test_observation_noise_and_bias_scale_with_the_channel():
    scale = [1.0, 0.0, 10.0, 0.0]
    spec = spec_from_dict({"observation": {"noise": 0.1, "bias": 0.5, "scale": scale}})
    clean = make_plant("InvertedPendulum-v5")
    noisy = make_plant("InvertedPendulum-v5", randomize=spec)
    diffs = []
    for seed in range(20):
        diffs.append(noisy.reset(seed=seed).values - clean.reset(seed=seed).values)
    diffs = np.array(diffs)
    assert np.all(diffs[:, [1, 3]] == 0.0)  # zero scale: untouched
    assert 0.05 < diffs[:, 0].std() < 0.7 and 0.5 < diffs[:, 2].std() < 7


def test_pushes_apply_an_external_force():
    spec = spec_from_dict(
        {"push": {"impulse": 1.0, "interval_s": 0.1, "duration_s": 0.04, "bodies": ["pole"]}}
    )
    env = make_env("InvertedPendulum-v5", randomize=spec)
    env.reset(seed=0)
    pole = env.unwrapped.model.body("pole").id
    forces = []
    for _ in range(10):
        env.step(np.zeros(1))
        forces.append(np.linalg.norm(env.unwrapped.data.xfrc_applied[pole, :3]))
    assert max(forces) == pytest.approx(1.0 / 0.04)  # impulse / duration, N
    env.close()


def test_mjcf_plant_takes_a_spec():
    spec = spec_from_dict({"latency": {"ticks": 1.0}, "dynamics": {"damping": 3.0}})
    plant = make_plant(PENDULUM_XML, randomize=spec)
    plant.reset(seed=1)
    assert plant.model.dof_damping[0] == pytest.approx(0.15)
    plant.act(np.array([2.0]))
    assert plant.data.ctrl[0] == 0.0  # one tick late: the reset command still acts
    plant.act(np.array([-1.0]))
    assert plant.data.ctrl[0] == 2.0


def test_initial_state_spread_scales_the_reset_offset_of_a_gymnasium_env():
    """spread 2: the reset state's offset from init_qpos/init_qvel doubles, the observation is
    taken again from it, and no other draw of the episode changes."""
    spread = {"initial_state": {"spread": 2.0}, "dynamics": {"mass": [0.5, 1.5]}}
    nominal = make_env("InvertedDoublePendulum-v5")
    wide = make_env("InvertedDoublePendulum-v5", randomize=spec_from_dict(spread), randomize_seed=3)
    masses = make_env(
        "InvertedDoublePendulum-v5",
        randomize=spec_from_dict({"dynamics": {"mass": [0.5, 1.5]}}),
        randomize_seed=3,
    )
    for seed in (11, 12):
        obs0, _ = nominal.reset(seed=seed)
        obs2, _ = wide.reset(seed=seed)
        masses.reset(seed=seed)
        base0, base2 = nominal.unwrapped, wide.unwrapped
        np.testing.assert_allclose(
            base2.data.qpos - base2.init_qpos, 2.0 * (base0.data.qpos - base0.init_qpos)
        )
        np.testing.assert_allclose(
            base2.data.qvel - base2.init_qvel, 2.0 * (base0.data.qvel - base0.init_qvel)
        )
        assert np.any(base2.data.qpos != base0.data.qpos)
        np.testing.assert_allclose(obs2, base2._get_obs())  # the observation is the new state
        assert obs2[0] == pytest.approx(2.0 * obs0[0])  # slider position, init 0
        draw = wide.get_wrapper_attr("draw")
        assert draw.spread == 2.0
        assert draw.mass == masses.get_wrapper_attr("draw").mass


def test_initial_state_spread_on_the_mjcf_plant_and_reproducible():
    spec = spec_from_dict({"initial_state": {"spread": [1.0, 3.0]}})
    plant = make_plant(PENDULUM_XML, randomize=spec, reset_noise=0.05)
    nominal = make_plant(PENDULUM_XML, reset_noise=0.05)
    factors = []
    for seed in (1, 2, 3):
        obs = plant.reset(seed=seed).values
        ref = nominal.reset(seed=seed).values
        factor = plant.data.qpos[0] / nominal.data.qpos[0]  # reference qpos0 = 0
        assert 1.0 <= factor <= 3.0
        np.testing.assert_allclose(plant.data.qvel, factor * nominal.data.qvel)
        np.testing.assert_allclose(obs[:2], factor * ref[:2])
        factors.append(factor)
    assert len(set(factors)) == 3
    again = plant.reset(seed=2).values[0]  # the same seed draws the same spread
    assert again == pytest.approx(factors[1] * nominal.reset(seed=2).values[0])


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"dynamics": {"mass": "heavy"}}, "dynamics.mass"),
        ({"dynamics": {"mass": [1.5, 0.5]}}, "dynamics.mass"),
        ({"latency": {"tick": 1}}, "latency.tick"),
        ({"latency": {"ticks": -1}}, "latency.ticks"),
        ({"timing": {"dt_jitter": 1.5}}, "timing.dt_jitter"),
        ({"observation": {"scale": [1, "x"]}}, "observation.scale[1]"),
        ({"push": {"bodies": "pole"}}, "push.bodies"),
        ({"wind": {}}, "wind"),
        ({"initial_state": {"spread": -0.5}}, "initial_state.spread"),
        ({"initial_state": {"scale": 2}}, "initial_state.scale"),
    ],
)
def test_spec_errors_name_the_field(raw, field):
    with pytest.raises(SpecError, match="^" + re.escape(f"my.toml: {field}")):
        spec_from_dict(raw, name="my.toml")


def test_spec_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[dynamics]\nfriction = [1.2, 0.8]\n")
    with pytest.raises(SpecError, match=re.escape("dynamics.friction: low 1.2 is above high 0.8")):
        load_spec(bad)
    bad.write_text("[dynamics\n")
    with pytest.raises(SpecError, match="invalid TOML"):
        load_spec(bad)
    with pytest.raises(SpecError, match="neither a file nor a shipped preset"):
        load_spec("NoSuchEnv-v5")


def test_presets_load_and_round_trip_through_json():
    assert {"InvertedPendulum-v5", "InvertedDoublePendulum-v5"} <= set(preset_names())
    for name in preset_names():
        spec = load_spec(name)
        assert not spec.is_nominal
        assert spec_from_json(spec.to_dict()).to_dict() == spec.to_dict()


def test_unknown_push_body_is_named():
    spec = spec_from_dict({"push": {"impulse": 1.0, "bodies": ["mast"]}})
    with pytest.raises(Exception, match="'mast'"):
        make_plant("InvertedPendulum-v5", randomize=spec)


def test_eval_randomize_is_reproducible_and_bad_specs_get_one_line(capsys):
    from liquidnode.cli import main

    argv = ["eval", "--env", "InvertedDoublePendulum-v5", "--episodes", "2", "--max-ticks", "40"]
    argv += ["--json", "--randomize", "InvertedDoublePendulum-v5"]
    runs = []
    for seed in ("3", "3", "4"):
        assert main([*argv, "--seed", seed]) == 0
        runs.append(json.loads(capsys.readouterr().out)["returns"])
    assert runs[0] == runs[1] and runs[0] != runs[2]
    assert main([*argv, "--randomize", "Nope-v5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "neither a file nor a shipped preset" in err[0]
