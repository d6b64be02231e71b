"""``check_plant``: a plant checker in the spirit of Gymnasium's ``check_env``.

Run it on a new plant (a simulation or a device behind :mod:`firmware_bridge`) before
closing the loop on it; it raises :class:`controller.errors.PlantError` naming the first
contract violation it finds::

    from liquidnode.sim.check import check_plant
    check_plant(make_plant("sim/models/pendulum.xml"))
"""

from __future__ import annotations

import json
import math

import numpy as np

from liquidnode.controller.errors import PlantError
from liquidnode.controller.plant import Observation, Plant


def _fail(plant: Plant, message: str) -> PlantError:
    name = getattr(getattr(plant, "spec", None), "name", type(plant).__name__)
    return PlantError(f"plant {name}: {message}")


def check_spec(plant: Plant) -> None:
    """Check the spec: channel names/units per channel, limits, safe action, period."""
    spec = plant.spec
    if len(spec.obs_units) != spec.obs_dim:
        raise _fail(plant, f"{spec.obs_dim} observation names but {len(spec.obs_units)} units")
    if len(spec.act_units) != spec.act_dim:
        raise _fail(plant, f"{spec.act_dim} action names but {len(spec.act_units)} units")
    for what, arr in (
        ("action_low", spec.action_low),
        ("action_high", spec.action_high),
        ("safe_action", spec.safe_action),
    ):
        if np.shape(arr) != (spec.act_dim,):
            raise _fail(plant, f"{what} has shape {np.shape(arr)}, expected ({spec.act_dim},)")
    low, high = np.asarray(spec.action_low), np.asarray(spec.action_high)
    if np.any(low > high):
        raise _fail(plant, f"action_low {low} > action_high {high}")
    safe = np.asarray(spec.safe_action)
    if not (np.isfinite(safe).all() and np.all(safe >= low) and np.all(safe <= high)):
        raise _fail(plant, f"safe_action {safe} is not finite and within [{low}, {high}]")
    if not (math.isfinite(spec.control_period_s) and spec.control_period_s > 0):
        raise _fail(plant, f"control_period_s must be > 0, got {spec.control_period_s}")
    try:
        json.dumps(spec.info)
    except TypeError as exc:
        raise _fail(plant, f"spec.info is not JSON-able: {exc}") from None


def _check_obs(plant: Plant, obs: object, where: str) -> Observation:
    if not isinstance(obs, Observation):
        raise _fail(plant, f"{where} returned {type(obs).__name__}, not an Observation")
    if np.shape(obs.values) != (plant.spec.obs_dim,):
        raise _fail(
            plant,
            f"{where} gave observation shape {np.shape(obs.values)}, spec says "
            f"({plant.spec.obs_dim},)",
        )
    if not math.isfinite(float(obs.reward)):
        raise _fail(plant, f"{where} gave a non-finite reward {obs.reward}")
    return obs


def check_plant(plant: Plant, ticks: int = 20, seed: int = 0) -> None:
    """Check spec, reset, act/observe with random in-limit actions, events, summary, safe stop.

    Args:
        plant: the plant to check (connected here; not disconnected).
        ticks: how many random actions to send.
        seed: seed of the reset and of the random actions.

    Raises:
        PlantError: the first violation of the :class:`controller.plant.Plant` contract.
    """
    check_spec(plant)
    spec = plant.spec
    plant.connect()
    _check_obs(plant, plant.reset(seed), "reset()")
    rng = np.random.default_rng(seed)
    low = np.where(np.isfinite(spec.action_low), spec.action_low, -1.0)
    high = np.where(np.isfinite(spec.action_high), spec.action_high, 1.0)
    for _ in range(ticks):
        plant.act(rng.uniform(low, high))
        obs = _check_obs(plant, plant.observe(), "observe()")
        if obs.terminated or obs.truncated:
            _check_obs(plant, plant.reset(), "reset()")
    events = plant.drain_events()
    if not isinstance(events, list):
        raise _fail(plant, f"drain_events() returned {type(events).__name__}, not a list")
    try:
        json.dumps(plant.summary())
    except TypeError as exc:
        raise _fail(plant, f"summary() is not JSON-able: {exc}") from None
    plant.safe_stop()
