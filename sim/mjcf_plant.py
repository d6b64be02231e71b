"""A plain MJCF file as a plant (no Gymnasium, no task code).

Conventions (all optional, so any MJCF model runs):

- observation: ``qpos``, then ``qvel``, then ``sensordata`` of every sensor except one named
  ``reward``, in model order. Names and units: ``"<joint> pos"``/``"<joint> vel"`` (m, m/s
  for slide joints; rad, rad/s for hinges; quaternions unit 1), sensors by name
  (``"<sensor>[k]"`` for multi-dimensional ones) with the unit of their type.
- action: actuator ``ctrl`` in ``ctrlrange`` (±inf when not ``ctrllimited``); safe action =
  zeros clipped into the limits.
- reward: the last component of a sensor named ``reward`` (e.g. a ``framepos`` of a tip site
  gives its height), else 0.
- ``<custom><numeric name=...>``: ``liquidnode_frame_skip`` (physics steps per control tick,
  default 1), ``liquidnode_max_ticks`` (ticks per episode, default 1000; the episode ends
  truncated), ``liquidnode_reset_noise`` (half-width of the uniform noise added to the
  hinge/slide ``qpos`` and to ``qvel`` at reset, default 0.01).
- video: the model's first camera if it has one, else MuJoCo's default free camera.
- reset: keyframe 0 if the model has one, else ``qpos0``, plus the seeded noise.
- termination: with ``liquidnode_min_reward`` the episode ends ``terminated`` when the reward
  falls below it (a pendulum's tip sinking: it fell); without it the episode never ends
  ``terminated`` (there is no task). Divergence raises PlantError.

The control period is ``frame_skip x model.opt.timestep``; a requested rate whose period is
not a whole multiple of the physics step raises TimingError naming both numbers.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import mujoco
import numpy as np

from liquidnode.controller.errors import PlantError
from liquidnode.controller.plant import Observation, PlantSpec
from liquidnode.sim.physics import (
    MAX_FRAME_SKIP,
    MAX_TIMESTEP_S,
    MujocoPlant,
    action_limits,
    actuator_channels,
    frame_skip_for_rate,
    joint_channels,
)
from liquidnode.sim.randomization.perturbed_physics import PerturbedPhysics
from liquidnode.sim.randomization.spec import RandomizationSpec

_S = mujoco.mjtSensor
#: Unit of each sensor type's values (types not listed: "unknown").
_SENSOR_UNITS = {
    _S.mjSENS_TOUCH: "N",
    _S.mjSENS_ACCELEROMETER: "m/s²",
    _S.mjSENS_VELOCIMETER: "m/s",
    _S.mjSENS_GYRO: "rad/s",
    _S.mjSENS_FORCE: "N",
    _S.mjSENS_TORQUE: "N·m",
    _S.mjSENS_FRAMEPOS: "m",
    _S.mjSENS_FRAMEQUAT: "1",
    _S.mjSENS_FRAMEXAXIS: "1",
    _S.mjSENS_FRAMEYAXIS: "1",
    _S.mjSENS_FRAMEZAXIS: "1",
    _S.mjSENS_FRAMELINVEL: "m/s",
    _S.mjSENS_FRAMEANGVEL: "rad/s",
    _S.mjSENS_FRAMELINACC: "m/s²",
    _S.mjSENS_FRAMEANGACC: "rad/s²",
    _S.mjSENS_SUBTREECOM: "m",
    _S.mjSENS_CLOCK: "s",
}
_UNIT_BY_TYPE = {int(k): v for k, v in _SENSOR_UNITS.items()}


def _custom_numeric(model: mujoco.MjModel, name: str, default: float) -> float:
    i = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_NUMERIC, name)
    if i < 0:
        return default
    return float(model.numeric_data[model.numeric_adr[i]])


def _whole(value: float, name: str, where: Path, low: int, high: int) -> int:
    """``value`` as an int if it is a whole number in ``[low, high]``; else PlantError."""
    if not (math.isfinite(value) and value == int(value) and low <= value <= high):
        raise PlantError(f"{where}: {name} must be a whole number in {low}..{high}, got {value}")
    return int(value)


class MjcfPlant(MujocoPlant):
    """A plant simulated from an MJCF file (see the module docstring for the conventions).

    Args:
        path: the MJCF ``.xml`` file.
        rate_hz: control rate in Hz; None -> ``liquidnode_frame_skip`` (default 1) physics steps.
        max_ticks: ticks per episode; None -> ``liquidnode_max_ticks`` (default 1000).
        reset_noise: reset noise half-width; None -> ``liquidnode_reset_noise`` (default 0.01).
        randomize: a randomisation spec applied to every episode (see
            :mod:`liquidnode.sim.randomization`); None: the nominal plant.
        randomize_seed: base seed of the randomisation (episode ``k`` of a run seeded ``S``
            draws from ``(randomize_seed, S + k)``).
        obs_scale: channel scales for observation noise when the spec has none (env units).

    Raises:
        PlantError: the file is missing or MuJoCo cannot compile it.
        TimingError: ``1 / rate_hz`` is not a whole multiple of the physics step.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        rate_hz: float | None = None,
        max_ticks: int | None = None,
        reset_noise: float | None = None,
        randomize: RandomizationSpec | None = None,
        randomize_seed: int = 0,
        obs_scale: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        if not self.path.is_file():
            raise PlantError(f"MJCF file {self.path} does not exist")
        try:
            model = mujoco.MjModel.from_xml_path(os.fspath(self.path))
        except ValueError as exc:
            msg = " ".join(str(exc).split())
            raise PlantError(f"MuJoCo cannot load {self.path}: {msg}") from None
        self._model = model
        self._data = mujoco.MjData(model)
        step = float(model.opt.timestep)
        if not (math.isfinite(step) and 0 < step <= MAX_TIMESTEP_S):
            raise PlantError(
                f"{self.path}: timestep must be > 0 and <= {MAX_TIMESTEP_S} s, got {step}"
            )
        if rate_hz is None:
            numeric = _custom_numeric(model, "liquidnode_frame_skip", 1)
            skip = _whole(numeric, "liquidnode_frame_skip", self.path, 1, MAX_FRAME_SKIP)
        else:
            skip = frame_skip_for_rate(rate_hz, step, str(self.path))
        self._skip = skip
        if max_ticks is None:
            numeric = _custom_numeric(model, "liquidnode_max_ticks", 1000)
            max_ticks = _whole(numeric, "liquidnode_max_ticks", self.path, 1, 2**62)
        self.max_ticks = max_ticks
        if reset_noise is None:
            reset_noise = _custom_numeric(model, "liquidnode_reset_noise", 0.01)
        if not (math.isfinite(reset_noise) and reset_noise >= 0):
            raise PlantError(
                f"{self.path}: liquidnode_reset_noise must be a finite number >= 0, "
                f"got {reset_noise}"
            )
        self.reset_noise = float(reset_noise)
        self.min_reward = _custom_numeric(model, "liquidnode_min_reward", -math.inf)
        self._rng = np.random.default_rng()
        self._ticks = 0
        if model.ncam > 0:
            self.camera = {"fixedcamid": 0}

        # Observation layout: qpos, qvel, sensors except "reward".
        qpos, qvel = joint_channels(model)
        sensors: list[tuple[str, str]] = []
        obs_sensor_idx: list[int] = []
        self._reward_idx: int | None = None
        for s in range(model.nsensor):
            name = model.sensor(s).name or f"sensor{s}"
            adr, dim = int(model.sensor_adr[s]), int(model.sensor_dim[s])
            if name == "reward":
                self._reward_idx = adr + dim - 1
                continue
            unit = _UNIT_BY_TYPE.get(int(model.sensor_type[s]), "unknown")
            if int(model.sensor_type[s]) == int(_S.mjSENS_ACTUATORFRC):
                unit = actuator_channels(model)[int(model.sensor_objid[s])][1]
            for k in range(dim):
                sensors.append((name if dim == 1 else f"{name}[{k}]", unit))
                obs_sensor_idx.append(adr + k)
        self._sensor_idx = np.asarray(obs_sensor_idx, dtype=np.intp)
        scalar = np.isin(model.jnt_type, [mujoco.mjtJoint.mjJNT_SLIDE, mujoco.mjtJoint.mjJNT_HINGE])
        self._noisy_qpos = model.jnt_qposadr[scalar].astype(np.intp)
        channels = qpos + qvel + sensors
        low, high = action_limits(model)
        acts = actuator_channels(model)
        self.spec = PlantSpec(
            name=self.path.stem,
            obs_names=tuple(n for n, _ in channels),
            obs_units=tuple(u for _, u in channels),
            act_names=tuple(n for n, _ in acts),
            act_units=tuple(u for _, u in acts),
            action_low=low,
            action_high=high,
            safe_action=np.clip(np.zeros(model.nu), low, high),
            control_period_s=skip * step,
            info={
                "source": "mjcf",
                "model_file": os.fspath(self.path),
                "physics_step_s": step,
                "frame_skip": skip,
                "max_ticks": max_ticks,
                "reward": "sensor 'reward'" if self._reward_idx is not None else "none (0)",
                "min_reward": self.min_reward if math.isfinite(self.min_reward) else None,
            },
        )
        self.randomization = randomize
        self._physics: PerturbedPhysics | None = None
        if randomize is not None:
            self._physics = PerturbedPhysics(
                model, self._data, randomize, skip * step, obs_scale=obs_scale
            )
        self._randomize_seed = int(randomize_seed)
        self._randomize_rng = np.random.default_rng(self._randomize_seed)
        self._device_time = 0.0

    # ------------------------------------------------------------------ Plant
    @property
    def model(self) -> mujoco.MjModel:
        """The compiled MuJoCo model."""
        return self._model

    @property
    def data(self) -> mujoco.MjData:
        """The simulation state."""
        return self._data

    def connect(self) -> None:
        """Nothing to open (the model is loaded at construction)."""

    def disconnect(self) -> None:
        """Nothing to close."""

    def _observation(self, reward: float = 0.0, terminated: bool = False) -> Observation:
        d = self._data
        values = np.concatenate([d.qpos, d.qvel, d.sensordata[self._sensor_idx]])
        device_time = None
        if self._physics is not None:
            values = self._physics.observe(values)
            if self.randomization is not None and self.randomization.timing.dt_jitter > 0:
                device_time = self._device_time
        truncated = self._ticks >= self.max_ticks and not terminated
        return Observation(values, reward, terminated, truncated, device_time)

    def actuation_latency_s(self) -> float:
        """This episode's actuation latency, s: the randomisation's draw (0 without one)."""
        return 0.0 if self._physics is None else float(self._physics.draw.latency_s)

    def reset(self, seed: int | None = None) -> Observation:
        """Keyframe 0 (or qpos0) plus uniform noise from ``seed``; reward 0."""
        m, d = self._model, self._data
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        if m.nkey > 0:
            mujoco.mj_resetDataKeyframe(m, d, 0)
        else:
            mujoco.mj_resetData(m, d)
        reference = (d.qpos.copy(), d.qvel.copy())
        if self.reset_noise > 0:
            n = self.reset_noise
            d.qpos[self._noisy_qpos] += self._rng.uniform(-n, n, self._noisy_qpos.size)
            d.qvel[:] += self._rng.uniform(-n, n, m.nv)
        mujoco.mj_forward(m, d)
        self._ticks = 0
        self._device_time = 0.0
        if self._physics is not None:
            if seed is not None:
                self._randomize_rng = np.random.default_rng([self._randomize_seed, int(seed)])
            self._physics.reset(self._randomize_rng, reference)
        return self._observation()

    def act(self, action: np.ndarray) -> None:
        """Set ctrl and step the physics ``frame_skip`` times.

        Raises:
            PlantError: the simulation diverged.
        """
        m, d = self._model, self._data
        self._clear_warnings()
        if self._physics is None:
            d.ctrl[:] = action
            mujoco.mj_step(m, d, nstep=self._skip)
        else:
            steps, substep, period = self._physics.draw_period(self._skip)
            self._physics.run_tick(action, steps, substep)
            m.opt.timestep = self._physics.nominal_substep
            self._device_time += period
        self._check_divergence()
        if m.nsensor:
            mujoco.mj_forward(m, d)  # sensors of the state after the last step, not before it
        self._ticks += 1

    def observe(self) -> Observation:
        """State after the last :meth:`act`, with its reward; terminated when the reward is
        below ``liquidnode_min_reward``, truncated at ``max_ticks``."""
        idx = self._reward_idx
        reward = 0.0 if idx is None else float(self._data.sensordata[idx])
        return self._observation(reward, idx is not None and reward < self.min_reward)
