"""Fixtures: a virtual robot (InvertedPendulum-v5 twin) served on a pty from a thread."""

from __future__ import annotations

import numpy as np
import pytest

from liquidnode.firmware_bridge.twin import VirtualRobot, make_twin_plant


class PD:
    """A hand-tuned PD controller that balances InvertedPendulum-v5 (a PolicyLike)."""

    obs_dim, act_dim = 4, 1
    gains = np.array([1.0, 10.0, 1.0, 1.0])

    def reset(self) -> None:
        pass

    def step(self, obs, dt):
        return np.array([float(self.gains @ obs)])

    @property
    def state(self):
        return np.zeros(0, dtype=np.float32)


def start_twin(watchdog_ms: int = 120, rate_hz: float | None = None) -> VirtualRobot:
    robot = VirtualRobot(make_twin_plant("InvertedPendulum-v5", rate_hz), watchdog_ms=watchdog_ms)
    robot.start_thread()
    return robot


def stop_twin(robot: VirtualRobot) -> None:
    robot.stop()
    robot.close()


@pytest.fixture
def twin():
    robot = start_twin()
    yield robot
    stop_twin(robot)
