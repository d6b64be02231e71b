"""Minimal Gymnasium-backed plant for the virtual robot when :mod:`sim` is not available.

The project's real MuJoCo plants live in :mod:`sim` (``sim.make_plant``); the twin prefers
them. This fallback wraps ``gymnasium.make(env_id).unwrapped`` (no time limit: a device runs
until stopped) and sets MuJoCo's ``frame_skip`` so that one ``act``+``observe`` advances the
physics by exactly the requested control period.
"""

from __future__ import annotations

import numpy as np

from controller.errors import PlantError, TimingError
from controller.plant import Observation, Plant, PlantSpec

#: Channel names/units of the Gymnasium MuJoCo envs the project ships policies for.
KNOWN_CHANNELS: dict[
    str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]
] = {
    "InvertedPendulum-v5": (
        ("slider_pos", "hinge_angle", "slider_vel", "hinge_vel"),
        ("m", "rad", "m/s", "rad/s"),
        ("slider_force",),
        ("N",),
    ),
}


class GymnasiumPlant(Plant):
    """A Gymnasium MuJoCo env as a :class:`Plant`, stepping at ``rate_hz``.

    Args:
        env_id: Gymnasium id, e.g. ``"InvertedPendulum-v5"``.
        rate_hz: control rate, Hz; None -> the env's native rate. The period must be a whole
            multiple of the MuJoCo timestep.

    Raises:
        TimingError: the period is not a whole multiple of the physics timestep.
    """

    def __init__(self, env_id: str, rate_hz: float | None = None) -> None:
        import gymnasium

        try:
            self.env = gymnasium.make(env_id).unwrapped
        except Exception as exc:  # gymnasium raises several kinds for an unknown id
            raise PlantError(f"cannot make Gymnasium env {env_id!r}: {exc}") from None
        timestep = float(self.env.model.opt.timestep)
        if rate_hz is not None:
            skip = round(1.0 / (rate_hz * timestep))
            if skip < 1 or abs(skip * timestep * rate_hz - 1.0) > 1e-6:
                raise TimingError(
                    f"control period {1.0 / rate_hz} s is not a whole multiple of the "
                    f"{env_id} physics step {timestep} s"
                )
            self.env.frame_skip = skip
        period = timestep * self.env.frame_skip
        n_obs = self.env.observation_space.shape[0]
        n_act = self.env.action_space.shape[0]
        names = KNOWN_CHANNELS.get(
            env_id,
            (
                tuple(f"obs{i}" for i in range(n_obs)),
                ("1",) * n_obs,
                tuple(f"act{i}" for i in range(n_act)),
                ("1",) * n_act,
            ),
        )
        low = np.asarray(self.env.action_space.low, dtype=np.float64)
        high = np.asarray(self.env.action_space.high, dtype=np.float64)
        self.spec = PlantSpec(
            name=env_id,
            obs_names=names[0],
            obs_units=names[1],
            act_names=names[2],
            act_units=names[3],
            action_low=low,
            action_high=high,
            safe_action=np.clip(np.zeros(n_act), low, high),
            control_period_s=period,
            info={"backend": "gymnasium", "frame_skip": int(self.env.frame_skip)},
        )
        self._last: Observation | None = None

    def connect(self) -> None:
        """Nothing to open."""

    def reset(self, seed: int | None = None) -> Observation:
        """Reset the env; returns its first observation."""
        obs, _ = self.env.reset(seed=seed)
        return Observation(np.asarray(obs, dtype=np.float64))

    def act(self, action: np.ndarray) -> None:
        """Step the physics by one control period with ``action``."""
        obs, reward, terminated, truncated, _ = self.env.step(np.asarray(action, np.float32))
        self._last = Observation(
            np.asarray(obs, dtype=np.float64), float(reward), bool(terminated), bool(truncated)
        )

    def observe(self) -> Observation:
        """The observation after the last :meth:`act`."""
        if self._last is None:
            raise PlantError("observe() before act()")
        return self._last

    def disconnect(self) -> None:
        """Close the env."""
        self.env.close()
