"""Absurd liquidnode numerics in an MJCF file, or an absurd rate, get a named error."""

from __future__ import annotations

import pytest

from liquidnode.controller.errors import PlantError, TimingError
from liquidnode.sim import PENDULUM_XML
from liquidnode.sim.mjcf_plant import MjcfPlant

BASE = PENDULUM_XML.read_text()


def _model(tmp_path, **changes) -> str:
    text = BASE
    for name, value in changes.items():
        if name == "timestep":
            text = text.replace('timestep="0.002"', f'timestep="{value}"')
        else:
            old = next(line for line in text.splitlines() if f'name="{name}"' in line)
            text = text.replace(old, f'    <numeric name="{name}" data="{value}"/>')
    path = tmp_path / "model.xml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"liquidnode_frame_skip": "1e12"}, "liquidnode_frame_skip must be a whole number"),
        ({"liquidnode_frame_skip": "2.5"}, "liquidnode_frame_skip must be a whole number"),
        ({"liquidnode_frame_skip": "0"}, "liquidnode_frame_skip must be a whole number"),
        ({"liquidnode_frame_skip": "nan"}, "liquidnode_frame_skip must be a whole number"),
        ({"liquidnode_max_ticks": "nan"}, "liquidnode_max_ticks must be a whole number"),
        ({"liquidnode_max_ticks": "-3"}, "liquidnode_max_ticks must be a whole number"),
        ({"liquidnode_reset_noise": "nan"}, "liquidnode_reset_noise must be a finite number"),
        ({"liquidnode_reset_noise": "-1"}, "liquidnode_reset_noise must be a finite number"),
        ({"timestep": "10"}, "timestep must be > 0 and <= 0.1 s, got 10"),
    ],
)
def test_absurd_numerics_are_refused_by_name(tmp_path, changes, message):
    with pytest.raises(PlantError, match=message):
        MjcfPlant(_model(tmp_path, **changes))


@pytest.mark.parametrize("rate", [1e-9, 1e-3])
def test_a_rate_of_absurdly_many_physics_steps_is_a_timing_error(rate):
    with pytest.raises(TimingError, match="at most 100000 steps per tick"):
        MjcfPlant(PENDULUM_XML, rate_hz=rate)


def test_the_shipped_model_still_loads():
    plant = MjcfPlant(PENDULUM_XML)
    assert plant.spec.control_period_s == pytest.approx(0.02) and plant.max_ticks == 500
