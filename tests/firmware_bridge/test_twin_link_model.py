"""The twin as an imperfect robot: latency/jitter/noise flags become a randomised plant."""

from __future__ import annotations

import numpy as np
import pytest

from liquidnode.firmware_bridge.twin import VirtualRobot, make_twin_plant
from liquidnode.sim.randomization import SpecError, load_spec
from liquidnode.sim.randomization.link import channel_scales, link_spec, parse_latency_ms


def test_latency_flag_parsing():
    assert parse_latency_ms("20") == (20.0, 20.0)
    assert parse_latency_ms("0:20") == (0.0, 20.0)
    for bad in ("20:5", "-1", "a:b", "1:2:3"):
        with pytest.raises(ValueError, match=r"latency|milliseconds"):
            parse_latency_ms(bad)


def test_link_spec_in_milliseconds():
    spec = link_spec(0.05, latency_ms=(5.0, 20.0), jitter_ms=10.0, noise=0.05, obs_scale=(1.0,))
    assert spec.latency.ms.lo == spec.latency.ms.hi == 5.0
    assert spec.latency.jitter_ticks == pytest.approx(15.0 / 50.0)  # U(0, 15) ms on top
    assert spec.timing.dt_jitter == pytest.approx(0.2)
    assert spec.observation.noise.lo == 0.05 and spec.observation.scale == (1.0,)
    with pytest.raises(SpecError, match="below the control period"):
        link_spec(0.05, jitter_ms=50.0)
    with pytest.raises(SpecError, match="channel's scale"):
        link_spec(0.05, noise=0.1)
    scales = channel_scales("InvertedDoublePendulum-v5")
    assert scales == load_spec("InvertedDoublePendulum-v5").observation.scale
    assert channel_scales("no-such-env.xml") is None


def test_jittered_twin_ticks_at_the_simulated_periods():
    spec = link_spec(0.04, jitter_ms=12.0, latency_ms=(0.0, 20.0))
    plant = make_twin_plant("InvertedPendulum-v5", randomize=spec, randomize_seed=1)
    robot = VirtualRobot(plant, seed=3)
    plant.connect()
    robot._new_episode()
    data = plant.data
    periods = []
    for _ in range(15):
        t0 = data.time
        period_ns = robot._tick()
        assert period_ns == pytest.approx((data.time - t0) * 1e9, abs=1.0)
        periods.append(period_ns)
    assert len(set(periods)) > 5
    assert all(28e6 - 1 <= p <= 52e6 + 1 for p in periods)
    plant.disconnect()


def test_nominal_twin_ticks_at_its_period():
    plant = make_twin_plant("InvertedPendulum-v5")
    robot = VirtualRobot(plant)
    plant.connect()
    robot._new_episode()
    assert [robot._tick() for _ in range(3)] == [40_000_000] * 3
    assert np.isfinite(plant.observe().values).all()
    plant.disconnect()
