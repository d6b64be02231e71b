"""A device that runs its policy on its own sensors, supervised and logged from the host.

A firmware built with ``make avr POLICY_DIR=DIR`` (no ``HIL=1``) reads its sensors, steps
the policy at its control period and streams TELEMETRY (PROTOCOL.md section 9). The host
supervises it: ARM at each episode start (which zeroes the device's hidden state), a PING per
tick to feed the link watchdog, DISARM however the run ends, the device's faults as events.
:class:`OnboardDevice` is that device as a self-paced :class:`~controller.plant.Plant`
(``observe`` blocks for the next TELEMETRY, whose ``obs`` it returns) and
:class:`OnboardPolicy` reports the action the device computed for that observation, so the
ordinary :class:`~controller.loop.ControlLoop` logs the run to MCAP like a host-side one:
observation, the policy's action, the action sent (the device's applied action), timing.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from liquidnode.controller.errors import LinkError
from liquidnode.controller.plant import Observation, Plant
from liquidnode.controller.records import Event
from liquidnode.firmware_bridge.handshake import DeviceInfo
from liquidnode.firmware_bridge.hil import arm_device, step_stats
from liquidnode.firmware_bridge.link import SerialLink
from liquidnode.firmware_bridge.protocol import (
    DeviceState,
    Disarm,
    Estop,
    Fault,
    Ping,
    SensorSource,
    Status,
    Telemetry,
    decode_telemetry,
)


def check_onboard_device(info: DeviceInfo, port: str) -> None:
    """Refuse a device that runs no policy, or a HIL build (it waits for SENSORS).

    Raises:
        LinkError: naming what the device is.
    """
    if info.policy is None:
        raise LinkError(
            f"device {info.identity.device_id!r} on {port!r} runs no policy (no POLICY frame); "
            "build it with `make avr POLICY_DIR=DIR`, or drive it with `liquidnode deploy`"
        )
    if info.policy.sensor_source == SensorSource.HOST:
        raise LinkError(
            f"device {info.identity.device_id!r} on {port!r} is a HIL build (it reads SENSORS "
            "frames, not its sensors): run it with `liquidnode hil`"
        )


class OnboardDevice(Plant):
    """The policy device as a plant.

    Args:
        link: the open link (handshake done, :func:`check_onboard_device` passed).
        info: the handshake's result.
        timeout_s: link-loss timeout without TELEMETRY, s (default: 10 control periods, at
            least 2 s: an emulated board on a busy machine runs behind; the device's own
            link watchdog keeps it safe meanwhile).

    Attributes:
        last: the TELEMETRY of the current tick (None before the first).
    """

    self_paced = True

    def __init__(self, link: SerialLink, info: DeviceInfo, timeout_s: float | None = None) -> None:
        self.link, self.info = link, info
        self.spec = info.spec
        period = info.identity.control_period_us / 1e6
        self.timeout_s = timeout_s if timeout_s is not None else max(2.0, 10 * period)
        self.last: Telemetry | None = None
        self.last_status: Status | None = info.status
        self.cycles: list[int] = []
        self._events: list[Event] = []

    def connect(self) -> None:
        """The link is opened by the caller."""

    def reset(self, seed: int | None = None) -> Observation:
        """ARM (a new episode: the device zeroes its hidden state); the first armed tick."""
        self.last_status = arm_device(self.link)
        return self._next(armed=True)

    def observe(self) -> Observation:
        """The next tick's TELEMETRY, as an observation (truncated when the device left
        ARMED: a watchdog, an e-stop, a DISARM)."""
        return self._next(armed=False)

    def act(self, action: np.ndarray) -> None:
        """The device applied its action already; a PING feeds its link watchdog."""
        self.link.send(Ping(0))

    def _next(self, armed: bool) -> Observation:
        deadline = time.monotonic() + self.timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkError(f"no TELEMETRY from {self.link.port!r} within {self.timeout_s:g} s")
            item = self.link.recv(left)
            if item is None or item.frame.message is None:
                continue
            msg = item.frame.message
            if isinstance(msg, Status):
                self._status(msg)
            elif isinstance(msg, Estop) and msg.source == 1:
                self._events.append(Event("estop", detail={"source": "device"}))
            elif isinstance(msg, Telemetry):
                t = decode_telemetry(item.frame.payload, self.spec.obs_dim)
                if armed and t.state != DeviceState.ARMED:
                    continue  # a tick from before the ARM
                self.last = t
                if t.step_cycles:
                    self.cycles.append(t.step_cycles)
                return Observation(
                    values=np.asarray(t.obs, dtype=np.float64),
                    truncated=t.state != DeviceState.ARMED,
                    device_time_s=t.device_time_us / 1e6,
                )

    def _status(self, msg: Status) -> None:
        prev, self.last_status = self.last_status, msg
        if prev is not None and (prev.state, prev.fault) == (msg.state, msg.fault):
            return
        if msg.state == DeviceState.WATCHDOG:
            self._events.append(Event("fault", detail={"code": "watchdog"}))
        elif msg.state == DeviceState.ESTOP:
            fault = Fault(msg.fault).name.lower()
            self._events.append(Event("estop", detail={"source": "device", "fault": fault}))

    def safe_stop(self) -> None:
        """DISARM: the device applies its safe action. Never raises."""
        self.link.try_send(Disarm())

    def disconnect(self) -> None:
        """The link is closed by the caller."""

    def drain_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def summary(self) -> dict[str, Any]:
        """``device``: the step statistics of :func:`~firmware_bridge.hil.step_stats`."""
        return {"device": {"target": self.info.identity.device_id,
                           **step_stats(self.info, self.cycles)}}  # fmt: skip


class OnboardPolicy:
    """The device's policy, seen by the loop: each step returns the action the device
    computed for the observation :meth:`OnboardDevice.observe` just returned (its
    ``policy_action``, env units, before the clamp); ``state`` is None (the device sends a
    digest only)."""

    def __init__(self, device: OnboardDevice) -> None:
        self.device = device
        self.obs_dim, self.act_dim = device.spec.obs_dim, device.spec.act_dim
        self.metadata = None

    def reset(self) -> None:
        """The device's hidden state is zeroed by the ARM of :meth:`OnboardDevice.reset`."""

    def step(self, obs: np.ndarray, dt: float) -> np.ndarray:
        last = self.device.last
        assert last is not None
        return np.asarray(last.policy_action, dtype=np.float64)

    @property
    def state(self) -> None:
        return None
