"""The virtual robot: a simulated plant served over a pseudo-terminal as a protocol device.

:class:`VirtualRobot` behaves on the wire exactly like the reference firmware (same
:class:`~firmware_bridge.device.DeviceCore` rules: handshake, clamping, watchdog, e-stop,
safe action), with a :class:`~controller.plant.Plant` (a MuJoCo simulation) behind it that
steps once per control period on the twin's own monotonic clock:

- every period: check the watchdog, apply the current action for one period
  (``plant.act`` + ``plant.observe``), stream OBSERVATION; STATUS once per second;
- between periods: answer incoming frames as they arrive (PONG immediately);
- when the plant ends its episode (pendulum fell) while ARMED: safe action, DISARMED,
  STATUS with fault 4 (plant terminated), then the terminal OBSERVATION; the simulation is
  reset. While not ARMED the simulation keeps running on the safe action and is reset
  silently when it ends; every ARM into ARMED starts a fresh episode (as if an operator put
  the pendulum up before arming).

A randomised plant (``make_twin_plant(..., randomize=spec)``, ``liquidnode twin
--latency-ms/--jitter-ms/--noise``) models an imperfect robot: commands reach the actuators
late, observations are noisy, and when its control period jitters the twin ticks at the
simulated periods (each tick is as long on the wall clock as the period it simulated).

Writes are non-blocking: with nobody reading, frames are lost as on a real UART.

:meth:`VirtualRobot.press_estop` and :meth:`VirtualRobot.press_clear` are the device's own
e-stop and clear buttons (``liquidnode twin``: SIGUSR1 and SIGUSR2): the e-stop latches and
refuses the host's ARM until the clear button is pressed, as on the reference firmware.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import select
import threading
import time
import tty
from typing import Any

import numpy as np

from liquidnode.controller.plant import Plant
from liquidnode.firmware_bridge import cobs
from liquidnode.firmware_bridge.device import DeviceConfig, DeviceCore
from liquidnode.firmware_bridge.framing import Deframer
from liquidnode.firmware_bridge.protocol import DeviceState, Frame, Message, encode_frame

#: Twin's device id prefix (IDENTITY.id, truncated to 32 bytes on the wire).
TWIN_ID_PREFIX = "liquidnode-twin"
#: Episode length given to the simulation: a device has no time limit.
TWIN_MAX_TICKS = 2**62


def default_watchdog_ms(control_period_s: float) -> int:
    """Default watchdog timeout: 3 control periods, at least 100 ms (host jitter), in ms."""
    return max(100, round(3 * control_period_s * 1000))


def open_pty() -> tuple[int, int, str]:
    """Create a raw pseudo-terminal; return ``(master_fd, slave_fd, slave_path)``.

    The master is non-blocking. The twin keeps the slave fd open so that the master stays
    readable while no host has the port open.
    """
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    return master, slave, os.ttyname(slave)


class VirtualRobot:
    """Serve ``plant`` as a protocol device on a file descriptor (pty master by default).

    Args:
        plant: the simulated plant (connected by :meth:`serve`).
        watchdog_ms: COMMAND timeout while ARMED, ms; None -> :func:`default_watchdog_ms`.
        device_id: IDENTITY id; None -> ``"liquidnode-twin <plant name>"``.
        seed: seed of the first simulation reset (then seed + n for the n-th episode).
    """

    def __init__(
        self,
        plant: Plant,
        watchdog_ms: int | None = None,
        device_id: str | None = None,
        seed: int | None = 0,
    ) -> None:
        self.plant = plant
        spec = plant.spec
        self.config = DeviceConfig(
            spec=spec,
            watchdog_timeout_ms=watchdog_ms or default_watchdog_ms(spec.control_period_s),
            device_id=device_id or f"{TWIN_ID_PREFIX} {spec.name}",
        )
        self.core = DeviceCore(self.config)
        self.deframer = Deframer()
        self.seed = seed
        self.episodes = 0
        self.ticks = 0
        self.overruns = 0
        self.tx_lost = 0
        #: The last 64 frames received from the host, oldest first (what the host last sent).
        self.received: collections.deque[Frame] = collections.deque(maxlen=64)
        self.master_fd: int | None = None
        self.slave_fd: int | None = None
        self.port: str | None = None
        self._stop = threading.Event()
        self._estop_press = threading.Event()
        self._clear_press = threading.Event()
        self._thread: threading.Thread | None = None
        self._tx_seq = 0
        self._resync = False
        self._t0 = time.monotonic_ns()
        self._period_ns = round(spec.control_period_s * 1e9)
        self._device_time: float | None = None

    # ------------------------------------------------------------ transport
    def open(self) -> str:
        """Create the pty; return the path the host opens (``/dev/pts/N``)."""
        self.master_fd, self.slave_fd, self.port = open_pty()
        return self.port

    def close(self) -> None:
        """Stop serving and close the pty (the host sees the port vanish). Idempotent."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            self._stop.set()
            thread.join(timeout=2.0)
        for fd in (self.master_fd, self.slave_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master_fd = self.slave_fd = None

    def stop(self) -> None:
        """Ask :meth:`serve` to return (thread-safe)."""
        self._stop.set()

    def press_estop(self) -> None:
        """Press the device's e-stop button once (thread-safe, signal-safe): safe action,
        ESTOP latched (fault 5), ARM refused until :meth:`press_clear`."""
        self._estop_press.set()

    def press_clear(self) -> None:
        """Press the device's clear button once: releases a latched e-stop -> DISARMED."""
        self._clear_press.set()

    def _buttons(self) -> None:
        now = self.now_us()
        if self._estop_press.is_set():
            self._estop_press.clear()
            self._send(self.core.button_estop(now))
        elif self._clear_press.is_set():
            self._clear_press.clear()
            self._send(self.core.local_reset(now))

    def now_us(self) -> int:
        """Device time, µs since the twin started."""
        return (time.monotonic_ns() - self._t0) // 1000

    def _send(self, messages: list[Message]) -> None:
        fd = self.master_fd
        for msg in messages:
            wire = cobs.encode(encode_frame(msg, self._tx_seq)) + b"\x00"
            self._tx_seq = (self._tx_seq + 1) & 0xFFFF
            if self._resync:
                wire = b"\x00" + wire
            try:
                n = os.write(fd, wire) if fd is not None else 0
            except BlockingIOError:
                n = 0
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EBADF, errno.EPIPE, errno.ECONNRESET):
                    return  # nobody on the other end: bytes are lost, as on a UART
                raise
            self._resync = 0 < n < len(wire)
            if n < len(wire):
                self.tx_lost += 1

    def _receive(self) -> None:
        try:
            data = os.read(self.master_fd, 4096) if self.master_fd is not None else b""
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EBADF):  # no slave open / closed meanwhile
                return
            raise
        if not data:  # end of file: a socket peer closed the connection
            self._stop.set()
            return
        now = self.now_us()
        for frame in self.deframer.feed(data):
            self.received.append(frame)
            before = self.core.armed_count
            replies = self.core.handle(frame, now)
            if self.core.armed_count != before:
                self._new_episode()
            self._send(replies)
        st = self.deframer.stats
        self.core.crc_errors = st.crc_errors
        self.core.dropped_frames = max(self.core.dropped_frames, st.dropped_total)

    # ------------------------------------------------------------ simulation
    def _new_episode(self) -> None:
        seed = None if self.seed is None else self.seed + self.episodes
        self.episodes += 1
        self._device_time = self.plant.reset(seed).device_time_s

    def _tick(self) -> int:
        """One control period; returns its length in ns (the simulated period when the
        plant timestamps its observations, else the nominal one)."""
        now = self.now_us()
        out = self.core.poll(now)
        self.plant.act(self.core.action)
        obs = self.plant.observe()
        period_ns = self._period_ns
        t = obs.device_time_s
        if t is not None and self._device_time is not None and t > self._device_time:
            period_ns = round((t - self._device_time) * 1e9)
        self._device_time = t
        self.ticks += 1
        ended = obs.terminated  # a time limit means nothing to a device
        if ended and self.core.state is DeviceState.ARMED:
            out += self.core.terminate(now)
        out.append(self.core.observation(np.asarray(obs.values), now))
        self._send(out)
        if ended:
            self._new_episode()
        return period_ns

    def serve(self, duration_s: float | None = None) -> None:
        """Run the device until :meth:`stop` (or ``duration_s``). Opens the pty if needed."""
        if self.master_fd is None:
            self.open()
        self.plant.connect()
        self._new_episode()
        period_ns = round(self.config.spec.control_period_s * 1e9)
        start = time.monotonic_ns()
        next_tick = start + period_ns
        next_status = start + 1_000_000_000
        end = None if duration_s is None else start + int(duration_s * 1e9)
        while not self._stop.is_set() and self.master_fd is not None:
            now = time.monotonic_ns()
            if end is not None and now >= end:
                break
            wake = next_tick
            wd = self.core.watchdog_deadline_us()
            if wd is not None:
                wake = min(wake, self._t0 + wd * 1000)
            timeout = max(0.0, (wake - now) / 1e9)
            readable, _, _ = select.select([self.master_fd], [], [], min(timeout, 0.1))
            if readable:
                self._receive()
            self._buttons()
            now = time.monotonic_ns()
            self._send(self.core.poll(self.now_us()))
            if now >= next_tick:
                next_tick += self._tick()
                if now - next_tick > period_ns:  # fell behind: skip, do not burst
                    missed = (now - next_tick) // period_ns
                    self.overruns += 1
                    next_tick += missed * period_ns
            if now >= next_status:
                self._send([self.core.status(self.now_us())])
                next_status += 1_000_000_000

    def start_thread(self) -> threading.Thread:
        """Open the pty and run :meth:`serve` in a daemon thread (tests, benchmarks)."""
        if self.master_fd is None:
            self.open()
        thread = threading.Thread(target=self.serve, name="liquidnode-twin", daemon=True)
        self._thread = thread
        thread.start()
        return thread


def make_twin_plant(env_or_path: str, rate_hz: float | None = None, **kwargs: Any) -> Plant:
    """The simulated plant behind the twin: :func:`sim.make_plant` without a time limit.

    Args:
        env_or_path: Gymnasium MuJoCo id or MJCF file (as for ``liquidnode sim``).
        rate_hz: control rate, Hz; None keeps the model's own.
        **kwargs: further plant options, e.g. ``randomize`` (a randomisation spec) and
            ``randomize_seed``.
    """
    from liquidnode.controller.simulators import make_plant

    return make_plant(env_or_path, rate_hz=rate_hz, max_ticks=TWIN_MAX_TICKS, **kwargs)
