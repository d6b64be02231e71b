"""A Gymnasium wrapper that applies a randomisation spec to a MuJoCo environment.

:class:`RandomizedEnv` hands the physics to :class:`PerturbedPhysics` (the same code the MJCF
plant uses): it replaces the ``_step_mujoco_simulation`` of the wrapped ``MujocoEnv`` instance,
so the environment's own ``step`` (observation, reward, termination) runs unchanged around
perturbed physics. Each ``step`` reports the control period it simulated as ``info["dt"]``
(seconds; with dt jitter the env's ``frame_skip`` and ``opt.timestep`` are set for that tick,
so rewards that divide by ``env.dt`` see the true period) and returns the corrupted observation.
``reset`` and ``step`` both report the episode's actuation latency as ``info["latency_s"]``
(seconds, the draw before per-tick jitter): what a policy told its latency is told (after a
vector env's same-step auto-reset, the new episode's), and ``info["privileged"]``, what a
trainer's critic may know that the policy is not told (the episode's draw and the push acting
now; :meth:`PerturbedPhysics.privileged`).

Seeding: ``RandomizedEnv(env, spec, seed=S)``. ``reset(seed=s)`` draws the episode from a
generator seeded by ``(S, s)``, so an episode's randomisation depends only on ``S`` and its
reset seed; ``reset()`` without a seed continues the wrapper's own stream (seeded by ``S``).
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

from liquidnode.controller.errors import LiquidNodeError
from liquidnode.sim.randomization.perturbed_physics import EpisodeDraw, PerturbedPhysics
from liquidnode.sim.randomization.spec import RandomizationSpec


class RandomizedEnv(gym.Wrapper):
    """Apply ``spec`` to a Gymnasium MuJoCo env (``env.unwrapped`` is a ``MujocoEnv``).

    Args:
        env: the environment (``gymnasium.make`` result).
        spec: the randomisation spec.
        seed: base seed of the randomisation (see the module docstring).
        obs_scale: channel scales for observation noise when the spec has none.

    Attributes:
        randomization: the spec.
        physics: the :class:`PerturbedPhysics` doing the work.
        draw: the current episode's draw.
    """

    def __init__(
        self,
        env: gym.Env,
        spec: RandomizationSpec,
        seed: int = 0,
        obs_scale: np.ndarray | None = None,
    ) -> None:
        super().__init__(env)
        base = env.unwrapped
        if not isinstance(base, MujocoEnv):
            raise LiquidNodeError(
                f"randomisation needs a Gymnasium MuJoCo environment, not {type(base).__name__}"
            )
        self.randomization = spec
        self.seed = int(seed)
        self.physics = PerturbedPhysics(base.model, base.data, spec, float(base.dt), obs_scale)
        self._rng = np.random.default_rng(self.seed)
        self._nominal_skip = int(base.frame_skip)
        self._nominal_substep = float(base.model.opt.timestep)
        self._period = (self._nominal_skip, self._nominal_substep)
        physics = self.physics

        def simulate(ctrl: np.ndarray, n_frames: int) -> None:
            physics.run_tick(ctrl, n_frames, base.model.opt.timestep)

        # an instance attribute shadows MujocoEnv's stepping method: this env steps perturbed
        base._step_mujoco_simulation = simulate  # type: ignore[method-assign]
        self._base = base

    @property
    def draw(self) -> EpisodeDraw:
        """What the current episode drew."""
        return self.physics.draw

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the env, then draw the episode (see the module docstring for seeding).

        With ``initial_state.spread`` the env's reset offset from ``init_qpos``/``init_qvel``
        is scaled and the observation taken again (the env's own ``_get_obs``).
        """
        obs, info = self.env.reset(seed=seed, options=options)
        if seed is not None:
            self._rng = np.random.default_rng([self.seed, int(seed)])
        base = self._base
        draw = self.physics.reset(self._rng, (base.init_qpos, base.init_qvel))
        if draw.spread != 1.0:
            obs = base._get_obs()  # type: ignore[attr-defined]
        info = dict(info)
        info["latency_s"] = draw.latency_s
        info["privileged"] = self.physics.privileged()
        return self.physics.observe(obs), info

    def step(self, action: np.ndarray) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """One tick of perturbed physics; ``info["dt"]`` is its period in seconds,
        ``info["latency_s"]`` the episode's actuation latency in seconds, ``info["privileged"]``
        the critic's features (:meth:`PerturbedPhysics.privileged`)."""
        base = self._base
        steps, substep, period = self.physics.draw_period(self._nominal_skip)
        jittered = steps != self._nominal_skip or substep != self._nominal_substep
        if jittered:
            base.frame_skip, base.model.opt.timestep = steps, substep
        try:
            obs, reward, terminated, truncated, info = self.env.step(action)
        finally:
            if jittered:
                base.frame_skip, base.model.opt.timestep = self._nominal_skip, self._nominal_substep
        info = dict(info)
        info["dt"] = period
        info["latency_s"] = self.physics.draw.latency_s
        info["privileged"] = self.physics.privileged()
        return self.physics.observe(obs), reward, terminated, truncated, info
