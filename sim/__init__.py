"""liquidnode's simulations: MuJoCo plants from a Gymnasium id or an MJCF file, and video.

``make_plant("InvertedPendulum-v5")`` or ``make_plant("sim/models/pendulum.xml")`` gives a
:class:`controller.plant.Plant`. Importing this package is cheap; MuJoCo loads on first use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import gymnasium as gym

    from liquidnode.sim.physics import MujocoPlant

#: The example MJCF model shipped with liquidnode (a torque-driven pendulum).
PENDULUM_XML = Path(__file__).resolve().parent / "models" / "pendulum.xml"


def is_mjcf_path(env_or_path: str | os.PathLike[str]) -> bool:
    """True when the argument names an MJCF file (ends in .xml or is an existing file)."""
    text = os.fspath(env_or_path)
    return text.lower().endswith(".xml") or os.path.isfile(text)


def make_plant(
    env_or_path: str | os.PathLike[str],
    *,
    rate_hz: float | None = None,
    max_ticks: int | None = None,
    **kwargs: Any,
) -> MujocoPlant:
    """A MuJoCo plant from a Gymnasium MuJoCo id or an MJCF file path.

    Args:
        env_or_path: e.g. ``"HalfCheetah-v5"`` or ``"sim/models/pendulum.xml"``.
        rate_hz: control rate, Hz; None keeps the model's own (see the plant classes).
        max_ticks: episode length in ticks (Gymnasium: ``max_episode_steps``); None = default.
        **kwargs: further options of :class:`sim.mujoco_plant.GymPlant` /
            :class:`sim.mjcf_plant.MjcfPlant`.

    Raises:
        PlantError: unknown id, not a MuJoCo env, or an MJCF file MuJoCo cannot load.
        TimingError: the rate's period is not a whole multiple of the physics step.
    """
    if is_mjcf_path(env_or_path):
        from liquidnode.sim.mjcf_plant import MjcfPlant

        return MjcfPlant(env_or_path, rate_hz=rate_hz, max_ticks=max_ticks, **kwargs)
    from liquidnode.sim.mujoco_plant import GymPlant

    if max_ticks is not None:
        kwargs["max_episode_steps"] = max_ticks
    return GymPlant(os.fspath(env_or_path), rate_hz=rate_hz, **kwargs)


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make(env_id, **kwargs)`` with MuJoCo's notices about Gymnasium's own XML
    files dropped (the training environments; every other warning passes)."""
    import gymnasium as gym

    from liquidnode.sim.physics import quiet_bundled_asset_notices

    with quiet_bundled_asset_notices():
        return gym.make(env_id, **kwargs)


__all__ = ["PENDULUM_XML", "is_mjcf_path", "make_env", "make_plant"]
