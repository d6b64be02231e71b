"""MuJoCo plants: :class:`GymPlant` from a Gymnasium MuJoCo id, :class:`MjcfPlant` from a file.

``GymPlant("InvertedPendulum-v5")`` wraps ``gymnasium.make(id)`` (time limit included):

- observation: the environment's own vector. Channel names and units come from the model
  when the observation is ``qpos`` (minus excluded root positions) followed by ``qvel``
  (InvertedPendulum, HalfCheetah, Hopper, Walker2d, Swimmer...; checked against the data at
  construction), from a table for InvertedDoublePendulum, and are ``obs[i]`` otherwise.
- action: actuator controls, limits from ``action_space``; safe action = zeros clipped into
  the limits.
- control period: ``env.unwrapped.dt`` (= physics step x ``frame_skip``). ``rate_hz`` sets
  ``frame_skip``; a period that is not a whole multiple of the physics step raises TimingError.
- reward, terminated, truncated: from ``env.step``.

Example, InvertedPendulum-v5 (25 Hz, physics step 0.02 s, frame_skip 2):

====  ==============  ======  ====  =====
obs   name            unit    min   max
====  ==============  ======  ====  =====
0     slider pos      m       -1    1
1     hinge pos       rad     -inf  inf
2     slider vel      m/s     -inf  inf
3     hinge vel       rad/s   -inf  inf
====  ==============  ======  ====  =====

Action 0 ``slide``: force on the cart, unit 1 (x gear 100 N), limits [-3, 3].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liquidnode.controller.errors import PlantError
from liquidnode.controller.plant import Observation, PlantSpec
from liquidnode.sim.mjcf_plant import MjcfPlant
from liquidnode.sim.physics import (
    MujocoPlant,
    actuator_channels,
    frame_skip_for_rate,
    joint_channels,
    quiet_bundled_asset_notices,
)
from liquidnode.sim.randomization.spec import RandomizationSpec

__all__ = ["GymPlant", "MjcfPlant"]

#: Observation layouts that are not plain qpos+qvel: env name -> (name, unit) per channel.
_KNOWN_OBS: dict[str, list[tuple[str, str]]] = {
    "InvertedDoublePendulum": [
        ("slider pos", "m"),
        ("sin hinge", "1"),
        ("sin hinge2", "1"),
        ("cos hinge", "1"),
        ("cos hinge2", "1"),
        ("slider vel", "m/s"),
        ("hinge vel", "rad/s"),
        ("hinge2 vel", "rad/s"),
        ("slider constraint force", "N"),
    ],
}


def _make_env(env_id: str, **kwargs: Any) -> Any:
    import gymnasium as gym
    from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

    try:
        with quiet_bundled_asset_notices():
            env = gym.make(env_id, **kwargs)
    except gym.error.Error as exc:
        raise PlantError(
            f"unknown environment id {env_id!r} ({exc}); use a Gymnasium MuJoCo id such as "
            "InvertedPendulum-v5 or HalfCheetah-v5, or the path of an MJCF .xml file"
        ) from None
    except TypeError as exc:
        raise PlantError(f"environment {env_id!r} rejected its options {kwargs}: {exc}") from None
    if not isinstance(env.unwrapped, MujocoEnv):
        env.close()
        raise PlantError(
            f"environment {env_id!r} is not a MuJoCo environment "
            f"({type(env.unwrapped).__name__}); liquidnode sim needs a MuJoCo one"
        )
    return env


class GymPlant(MujocoPlant):
    """A Gymnasium MuJoCo (v5) environment as a plant.

    Args:
        env_id: Gymnasium id, e.g. ``"InvertedPendulum-v5"``.
        rate_hz: control rate in Hz; None keeps the environment's (``1 / env.unwrapped.dt``).
        randomize: a randomisation spec applied to every episode (see
            :mod:`liquidnode.sim.randomization`); None: the nominal plant.
        randomize_seed: base seed of the randomisation (episode ``k`` of a run seeded ``S``
            draws from ``(randomize_seed, S + k)``).
        obs_scale: channel scales for observation noise when the spec has none (env units).
        **env_kwargs: passed to ``gymnasium.make`` (e.g. ``max_episode_steps``).

    Raises:
        PlantError: unknown id, not a MuJoCo environment, or bad options.
        TimingError: ``1 / rate_hz`` is not a whole multiple of the physics step.
    """

    def __init__(
        self,
        env_id: str,
        *,
        rate_hz: float | None = None,
        randomize: RandomizationSpec | None = None,
        randomize_seed: int = 0,
        obs_scale: np.ndarray | None = None,
        **env_kwargs: Any,
    ) -> None:
        super().__init__()
        self.env_id = env_id
        self.randomization = randomize
        self._randomize_args = (randomize_seed, obs_scale)
        self._device_time = 0.0
        env = _make_env(env_id, **env_kwargs)
        if rate_hz is not None:
            step = float(env.unwrapped.model.opt.timestep)
            skip = frame_skip_for_rate(rate_hz, step, env_id)
            if skip != env.unwrapped.frame_skip:
                env.close()
                env = _make_env(env_id, frame_skip=skip, **env_kwargs)
        self._env_kwargs = env_kwargs
        self._frame_skip_kw = env.unwrapped.frame_skip
        self._obs = Observation(np.zeros(env.observation_space.shape, dtype=np.float64))
        self.spec = self._build_spec(env)
        self._env = self._randomized(env)
        cam = getattr(getattr(env.unwrapped, "mujoco_renderer", None), "default_cam_config", None)
        self.camera = dict(cam or {})

    def _randomized(self, env: Any) -> Any:
        """``env`` wrapped in the randomisation (unchanged when there is none)."""
        if self.randomization is None:
            return env
        from liquidnode.sim.randomization.gym_wrapper import RandomizedEnv

        seed, obs_scale = self._randomize_args
        return RandomizedEnv(env, self.randomization, seed=seed, obs_scale=obs_scale)

    def _build_spec(self, env: Any) -> PlantSpec:
        u = env.unwrapped
        model, data = u.model, u.data
        obs0, _ = env.reset(seed=0)
        obs_dim = int(np.prod(env.observation_space.shape))
        channels = self._obs_channels(obs0, model, data, obs_dim)
        low = np.asarray(env.action_space.low, dtype=np.float64).reshape(-1)
        high = np.asarray(env.action_space.high, dtype=np.float64).reshape(-1)
        acts = actuator_channels(model)
        if len(acts) != low.shape[0]:
            acts = [(f"action[{i}]", "unknown") for i in range(low.shape[0])]
        return PlantSpec(
            name=self.env_id,
            obs_names=tuple(n for n, _ in channels),
            obs_units=tuple(u_ for _, u_ in channels),
            act_names=tuple(n for n, _ in acts),
            act_units=tuple(u_ for _, u_ in acts),
            action_low=low,
            action_high=high,
            safe_action=np.clip(np.zeros_like(low), low, high),
            control_period_s=float(u.dt),
            info={
                "source": "gymnasium",
                "env_id": self.env_id,
                "physics_step_s": float(model.opt.timestep),
                "frame_skip": int(u.frame_skip),
                "max_episode_steps": env.spec.max_episode_steps if env.spec else None,
            },
        )

    def _obs_channels(
        self, obs0: np.ndarray, model: Any, data: Any, obs_dim: int
    ) -> list[tuple[str, str]]:
        base = self.env_id.split("-v")[0]
        if base in _KNOWN_OBS and len(_KNOWN_OBS[base]) == obs_dim:
            return _KNOWN_OBS[base]
        qpos, qvel = joint_channels(model)
        skip = model.nq + model.nv - obs_dim
        if 0 <= skip <= model.nq:
            expect = np.concatenate([data.qpos[skip:], data.qvel])
            if np.allclose(expect, np.asarray(obs0).reshape(-1)):
                return qpos[skip:] + qvel
        return [(f"obs[{i}]", "unknown") for i in range(obs_dim)]

    # ------------------------------------------------------------------ Plant
    @property
    def model(self) -> Any:
        """The environment's MuJoCo model."""
        return self._env.unwrapped.model

    @property
    def data(self) -> Any:
        """The environment's MuJoCo data."""
        return self._env.unwrapped.data

    @property
    def env(self) -> Any:
        """The wrapped Gymnasium environment."""
        return self._env

    def connect(self) -> None:
        """Re-create the environment if :meth:`disconnect` closed it."""
        if self._env is None:
            env = _make_env(self.env_id, frame_skip=self._frame_skip_kw, **self._env_kwargs)
            self._env = self._randomized(env)

    def reset(self, seed: int | None = None) -> Observation:
        """``env.reset(seed=seed)``; the observation has reward 0."""
        self._guard = None  # rebuilt on this env's MjData (a re-created env has a new one)
        obs, _ = self._env.reset(seed=seed)
        self._device_time = 0.0
        values = np.asarray(obs, dtype=np.float64).reshape(-1)
        self._obs = Observation(values, device_time_s=0.0 if self._jittered else None)
        return self._obs

    @property
    def _jittered(self) -> bool:
        return self.randomization is not None and self.randomization.timing.dt_jitter > 0

    def actuation_latency_s(self) -> float:
        """This episode's actuation latency, s: the randomisation's draw (0 without one)."""
        if self.randomization is None or self._env is None:
            return 0.0
        return float(self._env.draw.latency_s)

    def act(self, action: np.ndarray) -> None:
        """``env.step(action)`` for one control period.

        With a randomisation whose control period jitters, the observation's
        ``device_time_s`` is the simulated time since reset (so the loop's fast mode feeds
        the true period to the policy).

        Raises:
            PlantError: the simulation diverged.
        """
        self._clear_warnings()
        obs, reward, terminated, truncated, info = self._env.step(action)
        self._check_divergence()
        device_time = None
        if self._jittered:
            self._device_time += float(info["dt"])
            device_time = self._device_time
        self._obs = Observation(
            np.asarray(obs, dtype=np.float64).reshape(-1),
            float(reward),
            bool(terminated),
            bool(truncated),
            device_time,
        )

    def observe(self) -> Observation:
        """The observation, reward and episode flags that the last :meth:`act` produced."""
        return self._obs

    def disconnect(self) -> None:
        """Close the environment. Idempotent."""
        if self._env is not None:
            self._env.close()
            self._env = None

    def safe_stop(self) -> None:
        """Set ctrl to the safe action (no physics step). Never raises."""
        if self._env is not None:
            super().safe_stop()
