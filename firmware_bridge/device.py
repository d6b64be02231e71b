"""Device-side protocol state machine (what the C firmware's core does), in Python.

:class:`DeviceCore` is pure logic — no I/O, no clock of its own: the caller hands it decoded
frames and the device time, and sends the messages it returns. The virtual robot
(:mod:`firmware_bridge.twin`) wraps it around a simulated plant; tests drive it directly.

States, faults and rules are those of PROTOCOL.md sections 3-4: DISARMED after reset with
the safe action; ARM -> ARMED (fault cleared, watchdog restarted); in ARMED a valid COMMAND
(right length, all finite) is clamped to the channel limits, applied and feeds the watchdog;
no valid COMMAND within ``watchdog_timeout_ms`` -> WATCHDOG (fault 1) with the safe action
until the next ARM; ESTOP from the host -> ESTOP (fault 2) with the safe action. The
device's own e-stop input (:meth:`DeviceCore.button_estop`) latches ESTOP with fault 5: ARM is
refused while it is set (the reply STATUS still says ESTOP, fault 5) and only
:meth:`DeviceCore.local_reset` with the input released clears it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from liquidnode.controller.plant import PlantSpec
from liquidnode.firmware_bridge.protocol import (
    PROTOCOL_VERSION,
    Arm,
    Channel,
    ChannelKind,
    Command,
    DeviceState,
    Estop,
    Fault,
    Frame,
    Hello,
    Identity,
    Message,
    ObservationMsg,
    Ping,
    Pong,
    Status,
)


@dataclass(frozen=True)
class DeviceConfig:
    """What a device announces in IDENTITY/CHANNEL.

    Attributes:
        spec: channel names/units, action limits, safe action and control period.
        watchdog_timeout_ms: COMMAND timeout while ARMED, ms (1..65535).
        device_id: ASCII id, truncated to 32 bytes on the wire.
        obs_low: observation lower bounds (informative), shape ``(n_obs,)``; -inf if unknown.
        obs_high: observation upper bounds, shape ``(n_obs,)``; +inf if unknown.
    """

    spec: PlantSpec
    watchdog_timeout_ms: int
    device_id: str
    obs_low: np.ndarray | None = None
    obs_high: np.ndarray | None = None

    @property
    def control_period_us(self) -> int:
        """Control period in µs (rounded)."""
        return round(self.spec.control_period_s * 1e6)

    def identity(self) -> Identity:
        """The IDENTITY message."""
        s = self.spec
        return Identity(
            PROTOCOL_VERSION,
            s.obs_dim,
            s.act_dim,
            self.control_period_us,
            self.watchdog_timeout_ms,
            self.device_id,
        )

    def channels(self) -> list[Channel]:
        """The CHANNEL messages: observations first, then actions."""
        s = self.spec
        inf = math.inf
        lo = self.obs_low if self.obs_low is not None else np.full(s.obs_dim, -inf)
        hi = self.obs_high if self.obs_high is not None else np.full(s.obs_dim, inf)
        out = [
            Channel(ChannelKind.OBSERVATION, i, float(lo[i]), float(hi[i]), 0.0, n, u)
            for i, (n, u) in enumerate(zip(s.obs_names, s.obs_units, strict=True))
        ]
        out += [
            Channel(
                ChannelKind.ACTION,
                i,
                float(s.action_low[i]),
                float(s.action_high[i]),
                float(s.safe_action[i]),
                n,
                u,
            )
            for i, (n, u) in enumerate(zip(s.act_names, s.act_units, strict=True))
        ]
        return out


class DeviceCore:
    """Protocol state machine of a device.

    Args:
        config: the announced schema, limits and watchdog timeout.

    Attributes:
        state: :class:`DeviceState`.
        fault: latched :class:`Fault`.
        action: the action being applied, float64 ``(n_act,)``.
        last_cmd_seq: seq of the last COMMAND applied.
        crc_errors / dropped_frames: counters reported in STATUS (the transport adds its own).
        armed_count: number of ARM transitions into ARMED (the twin starts an episode on each).
    """

    def __init__(self, config: DeviceConfig, boot_fault: Fault = Fault.NONE) -> None:
        self.config = config
        spec = config.spec
        self.low = np.asarray(spec.action_low, dtype=np.float64)
        self.high = np.asarray(spec.action_high, dtype=np.float64)
        self.safe = np.clip(np.asarray(spec.safe_action, dtype=np.float64), self.low, self.high)
        self.action = self.safe.copy()
        self.state = DeviceState.DISARMED
        self.fault = Fault.NONE
        self.last_cmd_seq = 0
        self.crc_errors = 0
        self.dropped_frames = 0
        self.armed_count = 0
        self._last_cmd_us = 0
        if boot_fault is Fault.ESTOP_LATCHED:
            self.state, self.fault = DeviceState.ESTOP, Fault.ESTOP_LATCHED
        elif boot_fault is Fault.WATCHDOG_RESET:
            self.fault = Fault.WATCHDOG_RESET

    @property
    def estop_latched(self) -> bool:
        """True while the device's own e-stop latch is set (ESTOP, fault 5)."""
        return self.state is DeviceState.ESTOP and self.fault is Fault.ESTOP_LATCHED

    # ------------------------------------------------------------ inputs
    def handle(self, frame: Frame, now_us: int) -> list[Message]:
        """Process one CRC-checked frame at device time ``now_us``; return the replies."""
        msg = frame.message
        if msg is None:  # another protocol version
            self.dropped_frames += 1
            return []
        if isinstance(msg, Hello):
            return [self.config.identity(), *self.config.channels(), self.status(now_us)]
        if isinstance(msg, Command):
            self._command(msg, frame.seq, now_us)
            return []
        if isinstance(msg, Ping):
            return [Pong(msg.token)]
        if isinstance(msg, Arm):
            return self.arm(now_us)
        if isinstance(msg, Estop):
            fault = Fault.ESTOP_LATCHED if self.estop_latched else Fault.ESTOP
            return self._enter(DeviceState.ESTOP, fault, now_us, always_status=True)
        self.dropped_frames += 1  # a device->host type sent to the device
        return []

    def _command(self, msg: Command, seq: int, now_us: int) -> None:
        values = np.asarray(msg.values, dtype=np.float64)
        if values.shape != self.low.shape:
            self.dropped_frames += 1
            return
        if not np.all(np.isfinite(values)):
            self.dropped_frames += 1
            self.fault = Fault.BAD_COMMAND
            return
        self._last_cmd_us = now_us
        if self.state is DeviceState.ARMED:
            self.action = np.clip(values, self.low, self.high)
            self.last_cmd_seq = seq

    def arm(self, now_us: int) -> list[Message]:
        """ARM: -> ARMED, clear the fault, restart the watchdog; reply STATUS.

        Refused while the e-stop latch is set: nothing changes, the reply STATUS says
        ESTOP with fault 5.
        """
        if self.estop_latched:
            return [self.status(now_us)]
        if self.state is not DeviceState.ARMED:
            self.armed_count += 1
        self.state = DeviceState.ARMED
        self.fault = Fault.NONE
        self._last_cmd_us = now_us
        return [self.status(now_us)]

    def button_estop(self, now_us: int) -> list[Message]:
        """The device's own e-stop input: safe action, ESTOP with the latch set (fault 5);
        returns ESTOP(source 1) and STATUS (nothing when already latched)."""
        if self.estop_latched:
            return []
        return [Estop(1), *self._enter(DeviceState.ESTOP, Fault.ESTOP_LATCHED, now_us, True)]

    def local_reset(self, now_us: int, estop_pressed: bool = False) -> list[Message]:
        """A local reset action on the device (its clear input): with the e-stop input
        released, clears the latch -> DISARMED (fault 0) and returns STATUS; the host must
        ARM again. No effect while the input is still pressed or without a latch."""
        if not self.estop_latched or estop_pressed:
            return []
        return self._enter(DeviceState.DISARMED, Fault.NONE, now_us, always_status=True)

    # ------------------------------------------------------------ time
    @property
    def last_command_us(self) -> int:
        """Device time of the last valid COMMAND (or ARM), µs: the watchdog's reference."""
        return self._last_cmd_us

    def watchdog_deadline_us(self) -> int | None:
        """Device time at which the watchdog trips, or None when not ARMED."""
        if self.state is not DeviceState.ARMED:
            return None
        return self._last_cmd_us + self.config.watchdog_timeout_ms * 1000

    def poll(self, now_us: int) -> list[Message]:
        """Check the watchdog at ``now_us``; returns STATUS if it tripped."""
        deadline = self.watchdog_deadline_us()
        if deadline is not None and now_us >= deadline:
            return self._enter(DeviceState.WATCHDOG, Fault.WATCHDOG, now_us)
        return []

    def terminate(self, now_us: int) -> list[Message]:
        """The plant ended its episode (twin only): safe action, DISARMED, fault 4."""
        return self._enter(DeviceState.DISARMED, Fault.TERMINATED, now_us, always_status=True)

    def _enter(
        self, state: DeviceState, fault: Fault, now_us: int, always_status: bool = False
    ) -> list[Message]:
        changed = state is not self.state
        self.state = state
        self.fault = fault
        self.action = self.safe.copy()
        return [self.status(now_us)] if (changed or always_status) else []

    # ------------------------------------------------------------ outputs
    def status(self, now_us: int) -> Status:
        """The STATUS message at ``now_us``."""
        return Status(
            int(self.state),
            int(self.fault),
            self.crc_errors,
            self.dropped_frames,
            self.last_cmd_seq,
            now_us & 0xFFFFFFFF,
        )

    def observation(self, values: np.ndarray, now_us: int) -> ObservationMsg:
        """The OBSERVATION message of ``values`` (float, ``(n_obs,)``) at ``now_us``."""
        return ObservationMsg(
            now_us & 0xFFFFFFFF,
            self.last_cmd_seq,
            int(self.state),
            tuple(float(v) for v in values),
        )
