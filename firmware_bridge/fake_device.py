"""A scriptable protocol device on a pty: the hostile devices that tests and the fuzz campaign
point ``SerialPlant`` and ``liquidnode deploy`` at.

:class:`FakeDevice` answers HELLO with its IDENTITY and CHANNEL frames (or with raw bytes of
the caller's choosing), ARM with STATUS(ARMED), PING with PONG, and streams an OBSERVATION
every ``period_s`` of its own clock. A :class:`Script` says what goes wrong and when, counted
in observations sent after the first ARM:

| action | what the device does |
|---|---|
| ``garbage`` | writes ``n`` random bytes (with and without 0x00 delimiters) |
| ``silence`` | sends nothing for ``seconds`` (frames from the host are still read) |
| ``version`` | sends an OBSERVATION framed with protocol version ``value`` |
| ``estop`` | sends ESTOP(source 1, the button) then STATUS(ESTOP, fault 2) |
| ``watchdog`` | sends STATUS(WATCHDOG, fault 1) and then observations in state WATCHDOG |
| ``values`` | the next observation carries ``values`` (NaN, inf, 1e38...) |
| ``disconnect`` | closes the pty: the port vanishes for the host |

Every frame received from the host is kept in :attr:`FakeDevice.received` (oldest first).
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from liquidnode.firmware_bridge import cobs
from liquidnode.firmware_bridge.crc import crc16_ccitt_false
from liquidnode.firmware_bridge.framing import Deframer
from liquidnode.firmware_bridge.protocol import (
    PROTOCOL_VERSION,
    Arm,
    Channel,
    ChannelKind,
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
from liquidnode.firmware_bridge.twin import open_pty

ACTIONS = ("garbage", "silence", "version", "estop", "watchdog", "values", "disconnect")


@dataclass(frozen=True)
class Step:
    """One scripted misbehaviour: ``action`` (one of :data:`ACTIONS`) at observation ``at``.

    Attributes:
        at: observations sent since the first ARM when it happens (0 = right after ARM).
        action: what happens, see the module docstring.
        n: bytes of garbage.
        seconds: length of a silence, s.
        value: protocol version for ``version``.
        values: observation values for ``values``.
    """

    at: int
    action: str
    n: int = 64
    seconds: float = 0.0
    value: int = 2
    values: tuple[float, ...] = ()


@dataclass
class Script:
    """What a :class:`FakeDevice` announces and how it misbehaves.

    Attributes:
        n_obs: observation channels announced (and sent per OBSERVATION).
        n_act: action channels announced.
        period_us: IDENTITY control period, µs (also the real streaming period, bounded to
            1 ms .. 50 ms so that an absurd announcement does not stall the test).
        watchdog_ms: IDENTITY watchdog timeout, ms.
        protocol_version: IDENTITY protocol version.
        low, high, safe: every action channel's limits and safe value.
        hello_reply: raw bytes sent instead of IDENTITY + CHANNELs (None: the real answer).
        steps: the misbehaviours, in any order.
    """

    n_obs: int = 4
    n_act: int = 1
    period_us: int = 5000
    watchdog_ms: int = 200
    protocol_version: int = PROTOCOL_VERSION
    low: float = -3.0
    high: float = 3.0
    safe: float = 0.0
    hello_reply: bytes | None = None
    steps: list[Step] = field(default_factory=list)


def wire(message: Message, seq: int, version: int = PROTOCOL_VERSION) -> bytes:
    """COBS-encoded frame plus delimiter; fields packed as given, even out of range."""
    frame = bytes([version & 0xFF, int(message.TYPE)]) + struct.pack("<H", seq & 0xFFFF)
    frame += message.payload()
    frame += struct.pack("<H", crc16_ccitt_false(frame))
    return cobs.encode(frame) + b"\x00"


class FakeDevice:
    """Serve a :class:`Script` on a fresh pty from a daemon thread (:meth:`start`).

    Args:
        script: what to announce and how to misbehave.
        seed: seed of the garbage bytes.
    """

    def __init__(self, script: Script, seed: int = 0) -> None:
        self.script = script
        self.rng = np.random.default_rng(seed)
        self.master: int | None
        self.slave: int | None
        self.master, self.slave, self.port = open_pty()
        self.received: list[Frame] = []
        self.armed = 0
        self.sent_observations = 0
        self._seq = 0
        self._state = DeviceState.DISARMED
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._deframer = Deframer()
        self._pending = sorted(script.steps, key=lambda s: s.at)
        self._silent_until = 0.0
        self._next_values: tuple[float, ...] | None = None

    # ------------------------------------------------------------ life cycle
    def start(self) -> FakeDevice:
        """Start serving in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self._serve, name="fake-device", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and close the pty. Idempotent."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self._close_fds()

    def _close_fds(self) -> None:
        for fd in (self.master, self.slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self.slave = None

    def __enter__(self) -> FakeDevice:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ I/O
    def _write(self, data: bytes) -> None:
        if self.master is None:
            return
        with contextlib.suppress(OSError):  # nobody reading: bytes are lost, as on a UART
            os.write(self.master, data)

    def send(self, message: Message, version: int = PROTOCOL_VERSION) -> None:
        """Send one frame (fields as given, unchecked)."""
        self._write(wire(message, self._seq, version))
        self._seq += 1

    def _read(self) -> None:
        if self.master is None:
            return
        try:
            data = os.read(self.master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        for frame in self._deframer.feed(data):
            self.received.append(frame)
            self._answer(frame)

    def _answer(self, frame: Frame) -> None:
        msg, s = frame.message, self.script
        now_us = self._now_us()
        if isinstance(msg, Hello):
            if s.hello_reply is not None:
                self._write(s.hello_reply)
                return
            self.send(Identity(s.protocol_version, s.n_obs, s.n_act, s.period_us,
                               s.watchdog_ms, "fake-device"))  # fmt: skip
            for i in range(s.n_obs):
                self.send(Channel(int(ChannelKind.OBSERVATION), i, -math.inf, math.inf, 0.0,
                                  f"o{i}", "1"))  # fmt: skip
            for i in range(s.n_act):
                self.send(Channel(int(ChannelKind.ACTION), i, s.low, s.high, s.safe, f"a{i}", "N"))
        elif isinstance(msg, Arm):
            self.armed += 1
            self._state = DeviceState.ARMED
            self.send(Status(int(self._state), 0, 0, 0, 0, now_us))
        elif isinstance(msg, Ping):
            self.send(Pong(msg.token))
        elif isinstance(msg, Estop):
            self._state = DeviceState.ESTOP

    def _now_us(self) -> int:
        return time.monotonic_ns() // 1000 & 0xFFFFFFFF

    # ------------------------------------------------------------ the script
    def _misbehave(self) -> bool:
        """Run the steps due now; False when the device has disconnected."""
        while self._pending and self._pending[0].at <= self.sent_observations:
            step = self._pending.pop(0)
            if step.action == "garbage":
                self._write(self.rng.integers(0, 256, step.n, dtype=np.uint8).tobytes())
            elif step.action == "silence":
                self._silent_until = time.monotonic() + step.seconds
            elif step.action == "version":
                values = (0.0,) * self.script.n_obs
                obs = ObservationMsg(self._now_us(), 0, int(self._state), values)
                self.send(obs, version=step.value)
            elif step.action == "estop":
                self._state = DeviceState.ESTOP
                self.send(Estop(1))
                self.send(Status(int(self._state), int(Fault.ESTOP), 0, 0, 0, self._now_us()))
            elif step.action == "watchdog":
                self._state = DeviceState.WATCHDOG
                self.send(Status(int(self._state), int(Fault.WATCHDOG), 0, 0, 0, self._now_us()))
            elif step.action == "values":
                self._next_values = tuple(step.values)
            elif step.action == "disconnect":
                self._close_fds()
                return False
            else:
                raise ValueError(f"unknown fake-device action {step.action!r}")
        return True

    def _observe(self) -> None:
        n = self.script.n_obs
        values: Sequence[float] = self._next_values or tuple(
            float(v) for v in self.rng.normal(0, 0.01, n)
        )
        self._next_values = None
        values = tuple(values[:n]) + (0.0,) * max(0, n - len(values))
        self.send(ObservationMsg(self._now_us(), 0, int(self._state), values))
        if self.armed:
            self.sent_observations += 1

    def _serve(self) -> None:
        period = min(max(self.script.period_us, 1000), 50_000) / 1e6
        next_obs = time.monotonic() + period
        while not self._stop.is_set() and self.master is not None:
            timeout = max(0.0, next_obs - time.monotonic())
            try:
                readable, _, _ = select.select([self.master], [], [], timeout)
            except (OSError, ValueError):
                return
            if readable:
                self._read()
            now = time.monotonic()
            if now < next_obs:
                continue
            next_obs += period
            if self.armed and not self._misbehave():
                return
            if now >= self._silent_until:
                self._observe()
