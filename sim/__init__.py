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
    from liquidnode.sim.randomization.spec import RandomizationSpec

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
            :class:`sim.mjcf_plant.MjcfPlant` (``randomize`` may be a spec, a preset name or a
            TOML path; ``randomize_seed``, ``obs_scale``).

    Raises:
        PlantError: unknown id, not a MuJoCo env, or an MJCF file MuJoCo cannot load.
        TimingError: the rate's period is not a whole multiple of the physics step.
        SpecError: a randomisation spec that cannot be read.
    """
    if kwargs.get("randomize") is not None:
        kwargs["randomize"] = randomization_spec(kwargs["randomize"])
    if is_mjcf_path(env_or_path):
        from liquidnode.sim.mjcf_plant import MjcfPlant

        return MjcfPlant(env_or_path, rate_hz=rate_hz, max_ticks=max_ticks, **kwargs)
    from liquidnode.sim.mujoco_plant import GymPlant

    if max_ticks is not None:
        kwargs["max_episode_steps"] = max_ticks
    return GymPlant(os.fspath(env_or_path), rate_hz=rate_hz, **kwargs)


def randomization_spec(spec: str | os.PathLike[str] | RandomizationSpec) -> RandomizationSpec:
    """A spec as given, or loaded from a preset name or TOML path (raises SpecError)."""
    from liquidnode.sim.randomization.spec import RandomizationSpec, load_spec

    return spec if isinstance(spec, RandomizationSpec) else load_spec(os.fspath(spec))


def make_env(
    env_id: str,
    *,
    randomize: str | os.PathLike[str] | RandomizationSpec | None = None,
    randomize_seed: int = 0,
    **kwargs: Any,
) -> gym.Env:
    """``gymnasium.make(env_id, **kwargs)`` with MuJoCo's notices about Gymnasium's own XML
    files dropped (the training environments; every other warning passes), or for an MJCF
    file an :class:`liquidnode.sim.mjcf_env.MjcfEnv` (same conventions as ``sim``).

    Args:
        env_id: Gymnasium MuJoCo id, or the path of an MJCF ``.xml`` file.
        randomize: a randomisation spec (or preset name / TOML path): the env is wrapped in
            :class:`liquidnode.sim.randomization.gym_wrapper.RandomizedEnv`, whose
            ``randomization`` attribute is the spec and whose ``info["dt"]`` is each tick's
            period.
        randomize_seed: base seed of the randomisation.
        **kwargs: passed to ``gymnasium.make``.
    """
    import gymnasium as gym

    from liquidnode.sim.physics import quiet_bundled_asset_notices

    spec = None if randomize is None else randomization_spec(randomize)
    if is_mjcf_path(env_id):
        from liquidnode.sim.mjcf_env import MjcfEnv

        return MjcfEnv(env_id, randomize=spec, randomize_seed=randomize_seed, **kwargs)
    with quiet_bundled_asset_notices():
        env = gym.make(env_id, **kwargs)
    if spec is None:
        return env
    from liquidnode.sim.randomization.gym_wrapper import RandomizedEnv

    return RandomizedEnv(env, spec, seed=randomize_seed)


__all__ = ["PENDULUM_XML", "is_mjcf_path", "make_env", "make_plant", "randomization_spec"]
