"""Hardware in the loop: the plant simulated on the host, the policy stepped on the device.

A device built with ``make avr POLICY_DIR=... HIL=1`` runs an exported policy and reads its
observation from the host's SENSORS frames (PROTOCOL.md section 9). Each tick::

    host: obs = simulation's sensors   --SENSORS(obs), seq s-->   device
    device, at its next control tick: step the policy on obs (dt = its control period),
          clamp, apply                 <--TELEMETRY(sensor_seq s, cycles, digest, action)--
    host: simulation.act(applied action), step the physics

:class:`DevicePolicy` is that device seen as a policy (``reset``, ``step``, ``state``) and
:class:`HilPlant` wraps the simulation so that the device's faults and statistics reach the
run's events and summary; both go into the ordinary :class:`~controller.loop.ControlLoop`
in fast mode (the device paces it), so the run is logged and summarised like ``liquidnode
sim`` (``liquidnode logs`` and ``replay`` read it). Given the exported policy on the host
(:class:`~controller.export.host_build.CompiledPolicy`, the same precision), each step is
checked as it arrives: the device's action bit for bit and its hidden-state digest.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from liquidnode.controller.errors import LinkError
from liquidnode.controller.plant import Observation, Plant
from liquidnode.controller.records import Event
from liquidnode.firmware_bridge.handshake import DeviceInfo
from liquidnode.firmware_bridge.link import SerialLink
from liquidnode.firmware_bridge.protocol import (
    Arm,
    DeviceState,
    Disarm,
    Estop,
    Fault,
    Precision,
    Sensors,
    SensorSource,
    Status,
    Telemetry,
    decode_telemetry,
    state_digest,
)

#: ARM is repeated at this interval until a STATUS says ARMED, s.
ARM_RETRY_S = 0.1
#: How long :meth:`DevicePolicy.reset` tries to arm, s.
ARM_TIMEOUT_S = 2.0
#: TELEMETRY frames kept for inspection (:attr:`DevicePolicy.telemetry`), the newest.
KEEP_TELEMETRY = 100_000


def check_hil_device(info: DeviceInfo, port: str) -> None:
    """Refuse a device that does not run a policy on the host's sensor values.

    Raises:
        LinkError: no POLICY frame in the handshake, or a device reading its own sensors.
    """
    if info.policy is None:
        raise LinkError(
            f"device {info.identity.device_id!r} on {port!r} runs no policy (no POLICY frame "
            "in its handshake); build its firmware with `make avr POLICY_DIR=DIR HIL=1`"
        )
    if info.policy.sensor_source != SensorSource.HOST:
        raise LinkError(
            f"device {info.identity.device_id!r} on {port!r} reads its own sensors; hardware "
            "in the loop needs a HIL build (`make avr POLICY_DIR=DIR HIL=1`)"
        )


def arm_device(link: SerialLink) -> Status:
    """Send ARM (every 0.1 s) until a STATUS says ARMED; returns that STATUS. On a policy
    device ARM also zeroes the hidden state.

    Raises:
        LinkError: no STATUS ARMED within 2 s, or the device's own e-stop is latched.
    """
    deadline = time.monotonic() + ARM_TIMEOUT_S
    next_arm = 0.0
    while True:
        now = time.monotonic()
        if now > deadline:
            raise LinkError(f"device on {link.port!r} did not confirm ARM within 2 s")
        if now >= next_arm:
            link.send(Arm())
            next_arm = now + ARM_RETRY_S
        item = link.recv(0.02)
        if item is None or not isinstance(item.frame.message, Status):
            continue
        msg = item.frame.message
        if msg.fault == Fault.ESTOP_LATCHED:
            raise LinkError(
                f"device on {link.port!r} is e-stopped by its own e-stop input (fault 5); "
                "the host cannot clear it: release it and press clear"
            )
        if msg.state == DeviceState.ARMED:
            return msg


def step_stats(info: DeviceInfo, cycles: list[int]) -> dict[str, Any]:
    """Precision, cycles per step (p50, max, n), the step's µs at the device clock (p50 and
    max) and the clock of a policy device's TELEMETRY ``step_cycles``."""
    pol = info.policy
    assert pol is not None
    c = np.asarray(cycles, dtype=np.float64)
    p50 = float(np.percentile(c, 50)) if c.size else None
    top = int(c.max()) if c.size else None
    return {
        "policy": pol.name,
        "precision": Precision(pol.precision).name.lower(),
        "cycles_per_step": {"p50": p50, "max": top, "n": int(c.size)},
        "step_us_at_clock": None if p50 is None else p50 / pol.clock_hz * 1e6,
        "step_us_max": None if top is None else top / pol.clock_hz * 1e6,
        "clock_hz": pol.clock_hz,
        "control_period_us": info.identity.control_period_us,
    }


class DevicePolicy:
    """The policy on a HIL device, stepped through the link.

    Args:
        link: the open link (handshake done).
        info: the handshake's result (:func:`check_hil_device` passed).
        shadow: the same export built for the host (``CompiledPolicy``), or None: each step
            is then checked against it (action bits, state digest).
        timeout_s: how long a step waits for its TELEMETRY, s (default: 10 control periods,
            at least 2 s: an emulator on a busy machine runs behind); then :class:`LinkError`.

    Attributes:
        obs_dim, act_dim: the device's observation and action sizes.
        dt_s: the device's control period, s (its cell's time input).
        telemetry: the TELEMETRY frames of the steps, oldest first (the last 100,000).
    """

    def __init__(
        self,
        link: SerialLink,
        info: DeviceInfo,
        shadow: Any = None,
        timeout_s: float | None = None,
    ) -> None:
        assert info.policy is not None
        self.link, self.info, self.shadow = link, info, shadow
        self.obs_dim, self.act_dim = info.identity.n_obs, info.identity.n_act
        self.dt_s = info.identity.control_period_us / 1e6
        self.timeout_s = timeout_s if timeout_s is not None else max(2.0, 10 * self.dt_s)
        self.metadata = None
        self.telemetry: list[Telemetry] = []
        self.cycles: list[int] = []
        self.stale = 0
        self.action_mismatches = 0
        self.digest_mismatches = 0
        self.max_abs_daction = 0.0
        self.last_status: Status | None = info.status
        self._events: list[Event] = []
        self.faulted = False

    # ------------------------------------------------------------ policy interface
    def reset(self) -> None:
        """ARM the device, which zeroes its hidden state (a new episode).

        Raises:
            LinkError: no STATUS ARMED within 2 s, or the device's own e-stop is latched.
        """
        self.faulted = False
        self.last_status = arm_device(self.link)
        if self.shadow is not None:
            self.shadow.reset()

    def step(self, obs: np.ndarray, dt: float) -> np.ndarray:
        """Send ``obs`` (float64 ``(obs_dim,)``, env units) as SENSORS and return the action
        the device applied (clamped to its channel limits; its safe action when not ARMED),
        float64 ``(act_dim,)``. ``dt`` is not used: the device steps with its own period.

        Raises:
            LinkError: no TELEMETRY for these sensor values within the timeout.
        """
        seq = self.link.send(Sensors(tuple(float(v) for v in obs)))
        deadline = time.monotonic() + self.timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkError(
                    f"no TELEMETRY from {self.link.port!r} within {self.timeout_s:g} s "
                    f"after SENSORS seq {seq}"
                )
            item = self.link.recv(left)
            if item is None or item.frame.message is None:
                continue
            msg = item.frame.message
            if isinstance(msg, Status):
                self._status(msg)
            elif isinstance(msg, Estop) and msg.source == 1:
                self._event("estop", source="device")
            elif isinstance(msg, Telemetry):
                t = decode_telemetry(item.frame.payload, self.obs_dim)
                if t.sensor_seq != seq:
                    self.stale += 1
                    continue
                self._record(t)
                return np.asarray(t.applied, dtype=np.float64)

    @property
    def state(self) -> np.ndarray | None:
        """The hidden state after the last step, float32 ``(state_dim,)``: the host build's
        (whose digest matched the device's, see ``digest_mismatches``); None without one."""
        return None if self.shadow is None else self.shadow.state

    # ------------------------------------------------------------ bookkeeping
    def _record(self, t: Telemetry) -> None:
        if len(self.telemetry) >= KEEP_TELEMETRY:
            del self.telemetry[: KEEP_TELEMETRY // 10]
        self.telemetry.append(t)
        if t.step_cycles:
            self.cycles.append(t.step_cycles)
        if self.shadow is None or t.state != DeviceState.ARMED:
            return
        want = np.asarray(self.shadow.step(np.asarray(t.obs, np.float32), self.dt_s), np.float32)
        got = np.asarray(t.policy_action, np.float32)
        if want.tobytes() != got.tobytes():
            self.action_mismatches += 1
            diff = float(np.max(np.abs(want.astype(np.float64) - got)))
            self.max_abs_daction = max(self.max_abs_daction, diff)
        if state_digest(self.shadow.state) != t.state_digest:
            self.digest_mismatches += 1

    def _event(self, kind: str, **detail: Any) -> None:
        self._events.append(Event(kind, detail=detail))

    def _status(self, msg: Status) -> None:
        prev, self.last_status = self.last_status, msg
        if prev is not None and (prev.state, prev.fault) == (msg.state, msg.fault):
            return
        if msg.state == DeviceState.ESTOP:
            self.faulted = True
            self._event("estop", source="device", fault=Fault(msg.fault).name.lower())
        elif msg.state == DeviceState.WATCHDOG:
            self.faulted = True
            self._event("fault", code="watchdog")
        elif msg.fault == Fault.BAD_COMMAND:
            self._event("fault", code="bad_sensors")

    def drain_events(self) -> list[Event]:
        """The device's events since the last call."""
        events, self._events = self._events, []
        return events

    def disarm(self) -> bool:
        """Send DISARM (the device applies its safe action); True if written. Never raises."""
        return self.link.try_send(Disarm())

    def stats(self, flash_bytes: int | None = None, ram_bytes: int | None = None,
              target: str | None = None) -> dict[str, Any]:  # fmt: skip
        """The ``device`` part of the summary: target, precision, cycles per step (p50, max),
        the step's µs at the device clock, clock, flash and RAM (bytes, when known), and the
        host's checks (stale TELEMETRY, action and digest mismatches)."""
        return {
            "target": target or self.info.identity.device_id,
            **step_stats(self.info, self.cycles),
            "flash_bytes": flash_bytes,
            "ram_bytes": ram_bytes,
            "stale_telemetry": self.stale,
            "checked": self.shadow is not None,
            "action_mismatches": self.action_mismatches if self.shadow is not None else None,
            "digest_mismatches": self.digest_mismatches if self.shadow is not None else None,
            "max_abs_daction": self.max_abs_daction if self.shadow is not None else None,
            "last_status": None if self.last_status is None else {
                "state": DeviceState(self.last_status.state).name.lower(),
                "fault": Fault(self.last_status.fault).name.lower(),
                "crc_errors": self.last_status.crc_errors,
                "dropped_frames": self.last_status.dropped_frames,
            },
        }  # fmt: skip


class HilPlant(Plant):
    """The simulation, with the HIL device's events and statistics.

    Args:
        simulation: the host-side plant (MuJoCo).
        device: the device's policy end.
        device_stats: extra ``device`` summary fields (target, flash_bytes, ram_bytes).
    """

    def __init__(self, simulation: Plant, device: DevicePolicy, **device_stats: Any) -> None:
        self.simulation, self.device, self.device_stats = simulation, device, device_stats
        self.spec = simulation.spec

    def connect(self) -> None:
        self.simulation.connect()

    def reset(self, seed: int | None = None) -> Observation:
        return self.simulation.reset(seed)

    def act(self, action: np.ndarray) -> None:
        self.simulation.act(action)

    def observe(self) -> Observation:
        obs = self.simulation.observe()
        if self.device.faulted:  # the device made itself safe: the episode ends here
            obs.truncated = True
        return obs

    def safe_stop(self) -> None:
        self.device.disarm()
        self.simulation.safe_stop()

    def disconnect(self) -> None:
        self.simulation.disconnect()

    def drain_events(self) -> list[Event]:
        return [*self.simulation.drain_events(), *self.device.drain_events()]

    def summary(self) -> dict[str, Any]:
        return {**self.simulation.summary(), "device": self.device.stats(**self.device_stats)}
