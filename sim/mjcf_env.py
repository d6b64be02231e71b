"""An MJCF file as a Gymnasium environment, for ``liquidnode train --env robot.xml``.

:class:`MjcfEnv` wraps :class:`~liquidnode.sim.mjcf_plant.MjcfPlant`, so training sees exactly
what ``liquidnode sim``, ``eval`` and ``twin`` run:

- observation: ``qpos``, ``qvel``, then every sensor except ``reward``, in model order
  (float64, units of :class:`MjcfPlant`'s spec: rad, rad/s, m, N...);
- action: actuator ``ctrl`` in ``ctrlrange`` (float32 Box); every actuator must be
  ``ctrllimited`` (a policy's output is scaled into finite limits);
- reward: the last component of the sensor named ``reward`` after each tick (0 without one);
- terminated: the reward fell below the custom numeric ``liquidnode_min_reward`` (never
  without it);
- truncated: after ``liquidnode_max_ticks`` ticks (default 1000);
- ``dt``: the control period, s: ``liquidnode_frame_skip`` x ``opt.timestep``.

``info["dt"]`` is each tick's period (the nominal one, or the randomised one with a spec).
"""

from __future__ import annotations

import os
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from liquidnode.controller.errors import PlantError
from liquidnode.sim.mjcf_plant import MjcfPlant
from liquidnode.sim.randomization.spec import RandomizationSpec


class MjcfEnv(gym.Env[np.ndarray, np.ndarray]):
    """A Gymnasium env over an MJCF model (conventions in the module docstring).

    Args:
        path: the MJCF ``.xml`` file.
        randomize: a randomisation spec applied to every episode, or None.
        randomize_seed: base seed of the randomisation.
        max_episode_steps: overrides ``liquidnode_max_ticks``.

    Raises:
        PlantError: the file cannot be loaded, or an actuator has no finite ``ctrlrange``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        randomize: RandomizationSpec | None = None,
        randomize_seed: int = 0,
        max_episode_steps: int | None = None,
    ) -> None:
        self.plant = MjcfPlant(
            path, max_ticks=max_episode_steps, randomize=randomize, randomize_seed=randomize_seed
        )
        spec = self.plant.spec
        low, high = spec.action_low, spec.action_high
        unbounded = [n for n, lo, hi in zip(spec.act_names, low, high, strict=True)
                     if not (np.isfinite(lo) and np.isfinite(hi))]  # fmt: skip
        if unbounded:
            raise PlantError(
                f"{path}: actuator(s) {', '.join(unbounded)} have no finite ctrlrange; training "
                'needs ctrllimited="true" ctrlrange="lo hi" on every actuator'
            )
        self.action_space = gym.spaces.Box(low.astype(np.float32), high.astype(np.float32))
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (spec.obs_dim,), np.float64)
        self.dt = spec.control_period_s
        self.randomization = randomize
        self._low, self._high = low, high
        self._period = spec.control_period_s

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Keyframe 0 (or qpos0) plus the model's reset noise, drawn from ``seed``."""
        super().reset(seed=seed)
        episode_seed = seed if seed is not None else int(self.np_random.integers(2**31))
        obs = self.plant.reset(episode_seed)
        self._last_time = obs.device_time_s
        return obs.values.copy(), {}

    def step(
        self, action: np.ndarray
    ) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Apply ``action`` (clipped to ``ctrlrange``) for one control period."""
        self.plant.act(np.clip(np.asarray(action, dtype=np.float64), self._low, self._high))
        obs = self.plant.observe()
        dt = self._period
        if obs.device_time_s is not None and self._last_time is not None:
            dt = obs.device_time_s - self._last_time
        self._last_time = obs.device_time_s
        return obs.values.copy(), obs.reward, obs.terminated, obs.truncated, {"dt": dt}
