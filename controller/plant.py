"""The plant interface: what the control loop closes against.

A simulated plant (:mod:`sim`) and a robot behind a serial link (:mod:`firmware_bridge`)
both implement :class:`Plant`, so the loop cannot tell them apart. The interface is
LeRobot-shaped: ``connect`` / ``reset`` / ``observe`` / ``act`` / ``disconnect``, usable as a
context manager, with ``safe_stop`` that drives the actuators to the safe action however the
loop exits.

Tick order, as driven by :class:`controller.loop.ControlLoop`::

    obs = plant.reset(seed)            # episode start, Observation with reward 0
    while not (obs.terminated or obs.truncated):
        action = policy.step(obs.values, dt)
        sent = safety.filter(action, dt)
        plant.act(sent)                # applies the action for one control period
        obs = plant.observe()          # observation after it, with the reward it earned
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np

from liquidnode.controller.records import Event


@dataclass(frozen=True)
class PlantSpec:
    """What a plant exposes: its identity, channel layout, limits and control period.

    Attributes:
        name: identity of the plant, e.g. ``"InvertedPendulum-v5"`` or a device id.
        obs_names: name of each observation channel, in vector order.
        obs_units: unit of each observation channel (``"m"``, ``"rad"``, ``"rad/s"``, ``"1"``...).
        act_names: name of each action channel, in vector order.
        act_units: unit of each action channel.
        action_low: lower limit per action channel, float64, shape ``(act_dim,)``.
        action_high: upper limit per action channel, float64, shape ``(act_dim,)``.
        safe_action: action held when stopping or on a fault, float64, within the limits.
        control_period_s: the plant's native control period in seconds (> 0).
        info: free-form identity details (firmware version, model file, ...), JSON-able.
    """

    name: str
    obs_names: tuple[str, ...]
    obs_units: tuple[str, ...]
    act_names: tuple[str, ...]
    act_units: tuple[str, ...]
    action_low: np.ndarray
    action_high: np.ndarray
    safe_action: np.ndarray
    control_period_s: float
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def obs_dim(self) -> int:
        """Number of observation channels."""
        return len(self.obs_names)

    @property
    def act_dim(self) -> int:
        """Number of action channels."""
        return len(self.act_names)

    @property
    def rate_hz(self) -> float:
        """Native control rate in Hz (1 / control_period_s)."""
        return 1.0 / self.control_period_s


@dataclass
class Observation:
    """One observation of a plant.

    Attributes:
        values: observation vector, float64, shape ``(obs_dim,)``, order of ``PlantSpec.obs_names``.
        reward: reward earned by the previous action (0 after reset and on real devices).
        terminated: the episode ended in a terminal state (e.g. the pendulum fell).
        truncated: the episode ended for another reason (time limit, device stop).
        device_time_s: the device's own timestamp of the reading in seconds, if it has one.
    """

    values: np.ndarray
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    device_time_s: float | None = None


class Plant(ABC):
    """Abstract plant. Subclasses set :attr:`spec` in ``__init__``."""

    spec: PlantSpec

    #: True for a device that samples on its own clock (a serial robot streaming observations
    #: every control period): the loop then does not sleep; ``observe`` blocks until the next
    #: sample arrives and ``dt`` is the measured time between samples. False for simulations,
    #: which the loop paces (real-time mode) or runs as fast as possible (fast mode).
    self_paced: bool = False

    @abstractmethod
    def connect(self) -> None:
        """Open the plant (load the model, open the port, handshake). Idempotent."""

    @abstractmethod
    def reset(self, seed: int | None = None) -> Observation:
        """Start an episode and return its first observation."""

    @abstractmethod
    def act(self, action: np.ndarray) -> np.ndarray | None:
        """Apply ``action`` (float64, ``(act_dim,)``, within limits) for one control period.

        Returns the action the plant actually applied when it may differ (float64,
        ``(act_dim,)``: a device's own clamp, or its safe action while it does not accept
        commands), or None when ``action`` was applied as given. The loop logs the returned
        action as ``sent``.
        """

    @abstractmethod
    def observe(self) -> Observation:
        """Return the observation that follows the last :meth:`act`."""

    @abstractmethod
    def disconnect(self) -> None:
        """Close the plant. Idempotent; must not raise on an already broken link."""

    def safe_stop(self) -> None:
        """Drive the actuators to ``spec.safe_action``. Must not raise."""
        with contextlib.suppress(Exception):  # best effort on the way out
            self.act(np.asarray(self.spec.safe_action, dtype=np.float64))

    def actuation_latency_s(self) -> float | None:
        """The actuation latency of the current episode as the plant knows it, seconds: how long
        the previous command still acts after an observation is taken (a simulation: what its
        randomisation drew, 0 for the nominal plant). None (the default): unknown, e.g. a
        serial robot, whose latency must be measured on the link and configured."""
        return None

    def drain_events(self) -> list[Event]:
        """Events the plant raised since the last call (link loss, device faults...)."""
        return []

    def summary(self) -> dict[str, Any]:
        """Plant-specific statistics for the run summary (e.g. ``link`` for serial)."""
        return {}

    def __enter__(self) -> Plant:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.safe_stop()
        finally:
            self.disconnect()
