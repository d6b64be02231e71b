"""A robot behind a serial link, as a :class:`~controller.plant.Plant`.

:class:`SerialPlant` speaks the wire protocol (PROTOCOL.md) over a
:class:`~firmware_bridge.link.SerialLink`, so ``liquidnode deploy`` closes the same control
loop, safety layer and logging as ``liquidnode sim``. The device streams observations on its
own clock (``self_paced = True``): the loop does not sleep; :meth:`SerialPlant.observe` blocks
until the next OBSERVATION arrives.

Life cycle::

    connect()   open the port, HELLO -> IDENTITY + CHANNEL frames, validate the schema
                (protocol version, sizes against the policy's, limits) -> PlantSpec
    reset()     ARM (the device clears its fault and restarts its watchdog), wait for the
                first fresh OBSERVATION; a device whose own e-stop is latched refuses ARM
                and :class:`DeviceEstopLatchedError` says so (never retried, also not
                by ``reconnect``: only a local action at the device clears it)
    act(a)      COMMAND(a); every ``ping_every`` ticks also a PING (round-trip time)
    observe()   the freshest OBSERVATION (older queued ones are dropped and counted),
                waiting at most ``obs_timeout_s``; STATUS/PONG/ESTOP handled on the way
    safe_stop() COMMAND(safe action), then ESTOP from the host: the device holds its safe
                action at once instead of waiting for its watchdog
    disconnect()

Link loss (no OBSERVATION within ``obs_timeout_s``, the port vanished, or a frame of another
protocol version, recorded as ``protocol_mismatch``): COMMAND(safe) and ESTOP are written if
the port still takes them, a ``link_lost`` event is recorded and the host stops commanding
(the device's watchdog applies its safe action if those frames did not reach it). Without
``reconnect`` :class:`~controller.errors.LinkError` is raised (the CLI prints one line and
exits 3). With ``reconnect`` the plant reopens the port until it is back (or until
``give_up_at``), repeats the handshake (the schema must not change), re-arms, records
``link_restored`` and the episode continues.

A device that ends its episode (the twin: STATUS fault 4, plant terminated) marks the next
observation ``terminated``; a watchdog trip or an e-stop marks it ``truncated`` and records a
``fault`` / ``estop`` event.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from liquidnode.controller.errors import LinkError, SpaceMismatchError
from liquidnode.controller.plant import Observation, Plant
from liquidnode.controller.records import Event
from liquidnode.firmware_bridge.handshake import DeviceInfo, handshake
from liquidnode.firmware_bridge.link import Received, SerialLink
from liquidnode.firmware_bridge.protocol import (
    PROTOCOL_VERSION,
    Arm,
    Command,
    DeviceState,
    Estop,
    Fault,
    ObservationMsg,
    Ping,
    Pong,
    Status,
)

#: Link events kept for the summary (the log has all of them).
_MAX_EVENT_HISTORY = 100


class DeviceEstopLatchedError(LinkError):
    """The device's own e-stop latched it (STATUS fault 5): it refuses the host's ARM until
    someone clears it at the device (e-stop released, then the board's clear button or a
    power cycle)."""


def _latched_error(port: str) -> DeviceEstopLatchedError:
    return DeviceEstopLatchedError(
        f"device on {port!r} is e-stopped by its own e-stop input (latched on the device, "
        "fault 5) and refuses ARM; the host cannot clear it: release the e-stop, then press "
        "the board's clear button or power-cycle the board, and start again"
    )


def _event(kind: str, **detail: Any) -> Event:
    return Event(kind, wall_time_ns=time.time_ns(), mono_time_ns=time.monotonic_ns(), detail=detail)


class SerialPlant(Plant):
    """A protocol-v1 device on a serial port.

    Args:
        port: device path or pyserial URL (``/dev/ttyACM0``, ``/dev/pts/5``, ``socket://h:p``).
        baud: baud rate (ignored by ptys and sockets).
        obs_dim: the policy's observation size; the handshake refuses a device with another.
        act_dim: the policy's action size; likewise.
        obs_timeout_s: link-loss timeout without an OBSERVATION, s; None -> max(0.25 s,
            5 device periods).
        handshake_timeout_s: how long connect() waits for IDENTITY + CHANNELs, s.
        boot_wait_s: wait this long after opening the port before the handshake, s (an
            Uno resets when its port opens and its bootloader listens about 1 s; 0 for a
            pty). Bytes received meanwhile are discarded.
        ping_every: send a PING every this many ticks (0: never).
        reconnect: on link loss, wait for the port and reconnect instead of raising.
        reconnect_timeout_s: give up reconnecting after this long, s (None: never).

    Attributes:
        give_up_at: ``time.monotonic()`` time (s) after which a link loss is final even with
            ``reconnect`` (``deploy --duration`` sets it: the duration bounds reconnecting too).
    """

    self_paced = True

    def __init__(
        self,
        port: str,
        baud: int = 115200,
        obs_dim: int | None = None,
        act_dim: int | None = None,
        obs_timeout_s: float | None = None,
        handshake_timeout_s: float = 2.0,
        boot_wait_s: float = 0.0,
        ping_every: int = 10,
        reconnect: bool = False,
        reconnect_timeout_s: float | None = None,
    ) -> None:
        self.port = port
        self.baud = baud
        self.obs_dim = obs_dim
        self.act_dim = act_dim
        self._obs_timeout_s = obs_timeout_s
        self.handshake_timeout_s = handshake_timeout_s
        self.boot_wait_s = boot_wait_s
        self.ping_every = ping_every
        self.reconnect = reconnect
        self.reconnect_timeout_s = reconnect_timeout_s
        self.link: SerialLink | None = None
        self.device: DeviceInfo | None = None
        self._events: list[Event] = []
        self._rtt_us: list[float] = []
        self._pings: dict[int, int] = {}
        self._token = 0
        self._ticks = 0
        self.stale_observations = 0
        self.reconnects = 0
        self.link_losses = 0
        self._crc_base = 0
        self._dropped_base = 0
        self.last_status: Status | None = None
        self._terminated = False
        self._fault_truncated = False
        self._armed = False
        self._last_obs_time: int | None = None
        self._time_hi = 0
        self._estop_seen = False
        self.give_up_at: float | None = None
        #: The link events drained so far (kind and detail), for the summary.
        self.event_history: list[dict[str, Any]] = []

    # ------------------------------------------------------------ set-up
    @property
    def obs_timeout_s(self) -> float:
        """Link-loss timeout, s."""
        if self._obs_timeout_s is not None:
            return self._obs_timeout_s
        period = self.spec.control_period_s if self.device else 0.05
        return max(0.25, 5 * period)

    def connect(self) -> None:
        """Open the port and run the handshake. Idempotent.

        Raises:
            LinkError: port missing, no answer, or an incompatible protocol version.
            SpaceMismatchError: the device's sizes differ from ``obs_dim``/``act_dim``.
        """
        if self.link is not None and self.link.is_open:
            return
        link = SerialLink(self.port, self.baud)
        link.open()
        try:
            if self.boot_wait_s > 0:
                time.sleep(self.boot_wait_s)  # the auto-reset board's bootloader runs first
                link.drain()  # whatever the bootloader or a starting firmware sent
            info = handshake(link, self.handshake_timeout_s)
            self._check_sizes(info)
        except BaseException:
            link.close()
            raise
        if self.device is not None and (info.spec.obs_names, info.spec.act_names) != (
            self.spec.obs_names,
            self.spec.act_names,
        ):
            link.close()
            raise LinkError(
                f"device on {self.port!r} came back with other channels: "
                f"{info.spec.obs_names} / {info.spec.act_names}, was "
                f"{self.spec.obs_names} / {self.spec.act_names}"
            )
        self.link, self.device, self.spec = link, info, info.spec
        if info.status is not None:
            self._status(info.status)

    def _check_sizes(self, info: DeviceInfo) -> None:
        s = info.spec
        if (self.obs_dim is not None and self.obs_dim != s.obs_dim) or (
            self.act_dim is not None and self.act_dim != s.act_dim
        ):
            raise SpaceMismatchError(
                f"the policy has {self.obs_dim} observations and {self.act_dim} actions, but "
                f"device {info.identity.device_id!r} on {self.port!r} has {s.obs_dim} "
                f"observations ({', '.join(s.obs_names)}) and {s.act_dim} actions "
                f"({', '.join(s.act_names)})"
            )

    # ------------------------------------------------------------ plant interface
    def reset(self, seed: int | None = None) -> Observation:
        """ARM the device and return its first fresh observation (``seed`` is unused)."""
        self.connect()
        self._terminated = self._fault_truncated = False
        try:
            self._arm()
        except DeviceEstopLatchedError:
            raise
        except LinkError as exc:
            self._lost(str(exc))
        return self.observe()

    def _arm(self) -> None:
        link = self._require_link()
        deadline = time.monotonic() + max(self.obs_timeout_s, 0.5)
        while True:
            link.send(Arm())
            resend = time.monotonic() + 0.1
            while time.monotonic() < resend:
                item = link.recv(0.02)
                if item is None:
                    continue
                self._handle(item)
                msg = item.frame.message
                if isinstance(msg, Status) and msg.state == DeviceState.ARMED:
                    self._terminated = self._fault_truncated = False
                    self._armed = True
                    self._estop_seen = False
                    return
                if isinstance(msg, Status) and msg.fault == Fault.ESTOP_LATCHED:
                    raise _latched_error(self.port)
            if time.monotonic() > deadline:
                raise LinkError(f"device on {self.port!r} did not confirm ARM")

    def act(self, action: np.ndarray) -> np.ndarray:
        """Send COMMAND(``action``) (float, ``(act_dim,)``, already within the limits).

        Returns the action the device applies: ``action`` as float32 clamped to the device's
        limits (its own clamp, the same limits the host's safety layer uses) while it is
        ARMED, else its safe action (DISARMED, watchdog, e-stop: the device ignores commands
        then; link lost: its watchdog applies the safe action).
        """
        values = np.asarray(action, dtype=np.float32).astype(np.float64).reshape(-1)
        if self.device is None:
            return values  # never connected: nothing is known about the device
        link = self.link
        if link is None or not link.is_open:
            # link lost (observe() handles it): the device's watchdog applies its safe
            # action within watchdog_timeout_ms, and a reconnect re-arms from there
            return self._safe_applied()
        applied = (
            np.clip(values, self.spec.action_low, self.spec.action_high)
            if self._armed
            else self._safe_applied()
        )
        try:
            link.send(Command(tuple(float(v) for v in values)))
            self._ticks += 1
            if self.ping_every and self._ticks % self.ping_every == 0:
                self.ping()
        except LinkError:
            pass  # observe() sees the dead link and reports it
        return applied

    def _safe_applied(self) -> np.ndarray:
        """The device's safe action (what it applies while it ignores commands)."""
        return np.asarray(self.spec.safe_action, dtype=np.float64).copy()

    def ping(self) -> None:
        """Send a PING; its PONG's round-trip time goes into the link statistics."""
        link = self._require_link()
        self._token = (self._token + 1) & 0xFFFFFFFF
        self._pings[self._token] = time.perf_counter_ns()
        if len(self._pings) > 64:  # forget unanswered pings
            self._pings.pop(next(iter(self._pings)))
        link.send(Ping(self._token))

    def observe(self) -> Observation:
        """The freshest OBSERVATION, waiting at most ``obs_timeout_s`` for a new one.

        Raises:
            LinkError: the link was lost and ``reconnect`` is off (or gave up).
        """
        while True:
            try:
                msg = self._next_observation()
            except LinkError as exc:
                self._lost(str(exc))
                continue
            if msg is None:
                self._lost(f"no observation within {self.obs_timeout_s * 1000:.0f} ms")
                continue
            return self._to_observation(msg)

    def _next_observation(self) -> ObservationMsg | None:
        link = self._require_link()
        deadline = time.monotonic() + self.obs_timeout_s
        newest: ObservationMsg | None = None
        while True:
            items = link.drain()
            if not items and newest is None:
                item = link.recv(max(0.0, deadline - time.monotonic()))
                if item is None:
                    return None
                items = [item]
            for item in items:
                if item.frame.message is None:  # good CRC, another protocol version
                    version = item.frame.version
                    self._events.append(_event("protocol_mismatch", version=version))
                    raise LinkError(
                        f"device sent a frame of protocol version {version}; this host speaks "
                        f"version {PROTOCOL_VERSION}"
                    )
                self._handle(item)
                if isinstance(item.frame.message, ObservationMsg):
                    if newest is not None:
                        self.stale_observations += 1
                    newest = item.frame.message
            if newest is not None and not items:
                return newest
            if newest is not None:
                continue  # one more drain: take anything that arrived meanwhile

    def _to_observation(self, msg: ObservationMsg) -> Observation:
        t = msg.device_time_us
        if self._last_obs_time is not None and t < self._last_obs_time:
            self._time_hi += 1 << 32  # u32 wrap (or a device reset)
        self._last_obs_time = t
        if self._armed and msg.state != DeviceState.ARMED:
            self._armed = False
            if not (self._terminated or self._fault_truncated):  # its STATUS got lost
                self._fault_truncated = True
                code = (
                    "watchdog"
                    if msg.state == DeviceState.WATCHDOG
                    else "estop"
                    if msg.state == DeviceState.ESTOP
                    else "disarmed"
                )
                self._events.append(
                    _event("fault", code=code, message=f"device left ARMED (state {msg.state})")
                )
        terminated = self._terminated
        truncated = self._fault_truncated or msg.state in (DeviceState.WATCHDOG, DeviceState.ESTOP)
        return Observation(
            values=np.asarray(msg.values, dtype=np.float64),
            terminated=terminated,
            truncated=truncated and not terminated,
            device_time_s=(self._time_hi + t) / 1e6,
        )

    def _handle(self, item: Received) -> None:
        msg = item.frame.message
        if isinstance(msg, Pong):
            sent = self._pings.pop(msg.token, None)
            if sent is not None:
                self._rtt_us.append((item.t_ns - sent) / 1000.0)
        elif isinstance(msg, Status):
            self._status(msg)
        elif isinstance(msg, Estop):
            self._estop_seen = True
            self._events.append(_event("estop", source="device" if msg.source else "host"))

    def _status(self, msg: Status) -> None:
        prev = self.last_status
        self.last_status = msg
        fault_changed = prev is None or prev.fault != msg.fault or prev.state != msg.state
        if not fault_changed:
            return
        if msg.fault == Fault.TERMINATED:
            self._terminated = True
        elif msg.fault == Fault.WATCHDOG and msg.state == DeviceState.WATCHDOG:
            self._fault_truncated = True
            self._events.append(_event("fault", code="watchdog", message="device watchdog tripped"))
        elif msg.fault == Fault.ESTOP and msg.state == DeviceState.ESTOP:
            self._fault_truncated = True
            if not self._estop_seen:  # the ESTOP frame itself got lost
                self._estop_seen = True
                self._events.append(_event("estop", source="status"))
        elif msg.fault == Fault.ESTOP_LATCHED and msg.state == DeviceState.ESTOP:
            self._fault_truncated = True
            if not self._estop_seen:  # latched before we connected, or its ESTOP got lost
                self._estop_seen = True
                self._events.append(_event("estop", source="device", latched=True))
        elif msg.fault == Fault.WATCHDOG_RESET:
            self._events.append(
                _event(
                    "fault",
                    code="watchdog_reset",
                    message="the device was restarted by its hardware watchdog",
                )
            )
        elif msg.fault == Fault.BAD_COMMAND:
            self._events.append(
                _event("fault", code="bad_command", message="device rejected a command")
            )

    # ------------------------------------------------------------ link loss
    def _require_link(self) -> SerialLink:
        if self.link is None:
            raise LinkError(f"serial device {self.port!r} is not connected")
        return self.link

    def _lost(self, reason: str) -> None:
        """Record a link loss; reconnect or raise LinkError."""
        self.link_losses += 1
        self._armed = False
        # The port may still be writable (a silent device, a bad frame): leave the device on
        # its safe action and stopped now rather than after its watchdog timeout.
        sent_safe = self._send_safe_stop(self.link)
        self._events.append(_event("link_lost", reason=reason, safe_stop_sent=sent_safe))
        if self.link is not None:
            self._crc_base += self.link.stats.crc_errors
            self._dropped_base += self.link.stats.dropped_total
            self.link.close()
            self.link = None
        if not self.reconnect:
            raise LinkError(f"link to {self.port!r} lost: {reason}")
        t0 = time.monotonic()
        while True:
            try:
                self.connect()
                self._arm()
                break
            except (SpaceMismatchError, DeviceEstopLatchedError):
                raise
            except LinkError as exc:
                if self.link is not None:
                    self.link.close()
                    self.link = None
                if self.give_up_at is not None and time.monotonic() + 0.2 > self.give_up_at:
                    raise LinkError(
                        f"link to {self.port!r} lost ({reason}); not back when the run's "
                        f"duration ended: {exc}"
                    ) from None
                waited = time.monotonic() - t0
                if self.reconnect_timeout_s is not None and waited > self.reconnect_timeout_s:
                    raise LinkError(
                        f"link to {self.port!r} lost ({reason}); not back after "
                        f"{waited:.1f} s: {exc}"
                    ) from None
                time.sleep(0.2)
        self.reconnects += 1
        self._last_obs_time = None
        self._events.append(_event("link_restored", downtime_s=time.monotonic() - t0))

    # ------------------------------------------------------------ shutdown
    def safe_stop(self) -> None:
        """Send the safe action, then ESTOP from the host (if the port is writable). Never
        raises."""
        self._armed = False
        self._send_safe_stop(self.link)

    def _send_safe_stop(self, link: SerialLink | None) -> bool:
        """COMMAND(safe action) then ESTOP(0) on ``link``; True if both were written."""
        if link is None or self.device is None:
            return False
        safe = Command(tuple(float(v) for v in self.spec.safe_action))
        return link.try_send(safe) and link.try_send(Estop(0))

    def disconnect(self) -> None:
        """Close the port. Idempotent."""
        if self.link is not None:
            self._crc_base += self.link.stats.crc_errors
            self._dropped_base += self.link.stats.dropped_total
            self.link.close()
            self.link = None

    def drain_events(self) -> list[Event]:
        """``link_lost`` / ``link_restored`` / ``protocol_mismatch`` / ``fault`` / ``estop``
        events since the last call (also kept for :meth:`summary`, the first 100)."""
        events, self._events = self._events, []
        room = _MAX_EVENT_HISTORY - len(self.event_history)
        self.event_history.extend({"kind": e.kind, **e.detail} for e in events[: max(room, 0)])
        return events

    @property
    def rtt_samples_us(self) -> list[float]:
        """Every PING -> PONG round-trip time measured so far, µs (a copy)."""
        return list(self._rtt_us)

    def summary(self) -> dict[str, Any]:
        """``{"link": {...}, "device": {...}}`` statistics of the run."""
        crc = self._crc_base + (self.link.stats.crc_errors if self.link else 0)
        dropped = self._dropped_base + (self.link.stats.dropped_total if self.link else 0)
        rtt = np.asarray(self._rtt_us, dtype=np.float64)
        pct = (lambda q: float(np.percentile(rtt, q))) if rtt.size else (lambda q: None)
        link = {
            "port": self.port,
            "rtt_us": {"p50": pct(50), "p99": pct(99), "max": pct(100), "n": int(rtt.size)},
            "crc_errors": crc,
            "dropped": dropped + self.stale_observations,
            "dropped_frames": dropped,
            "stale_observations": self.stale_observations,
            "reconnects": self.reconnects,
            "link_losses": self.link_losses,
            "events": list(self.event_history),
        }
        out: dict[str, Any] = {"link": link}
        if self.device is not None:
            st = self.last_status
            out["device"] = {
                "id": self.device.identity.device_id,
                "control_period_us": self.device.identity.control_period_us,
                "watchdog_timeout_ms": self.device.identity.watchdog_timeout_ms,
                "crc_errors": st.crc_errors if st else None,
                "dropped_frames": st.dropped_frames if st else None,
                "last_cmd_seq": st.last_cmd_seq if st else None,
            }
        return out
