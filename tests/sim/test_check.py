"""check_plant passes the shipped plants and names a broken contract."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from liquidnode.controller.errors import PlantError
from liquidnode.controller.plant import Observation
from liquidnode.sim import PENDULUM_XML, make_plant
from liquidnode.sim.check import check_plant
from liquidnode.sim.mjcf_plant import MjcfPlant


@pytest.mark.parametrize("env", ["InvertedPendulum-v5", str(PENDULUM_XML)])
def test_shipped_plants_pass(env):
    plant = make_plant(env)
    check_plant(plant, ticks=30)
    plant.disconnect()


class WrongShape(MjcfPlant):
    def observe(self) -> Observation:
        obs = super().observe()
        return Observation(obs.values[:-1], obs.reward)


def test_wrong_observation_shape_is_named():
    with pytest.raises(
        PlantError, match=r"observe\(\) gave observation shape \(2,\), spec says \(3,\)"
    ):
        check_plant(WrongShape(PENDULUM_XML))


def test_safe_action_outside_limits_is_named():
    plant = MjcfPlant(PENDULUM_XML)
    plant.spec = dataclasses.replace(plant.spec, safe_action=np.array([5.0]))
    with pytest.raises(PlantError, match=r"safe_action \[5\.\] is not finite and within"):
        check_plant(plant)
