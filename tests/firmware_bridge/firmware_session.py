"""Drive the C reference firmware (host-native or AVR in simavr) over a pty.

Helpers shared by ``test_firmware_host.py`` and ``test_firmware_avr.py``:

- :func:`build_firmware` runs ``make`` in ``firmware_bridge/firmware`` (outputs in its
  gitignored ``build/``), skipping - or failing under ``LIQUIDNODE_REQUIRE_ALL=1`` - when a
  tool is missing.
- :class:`DeviceSession` starts a firmware process that prints ``port: /dev/pts/N`` first,
  opens the pty with pyserial and speaks wire protocol v1 through the project's own codec
  (:mod:`firmware_bridge.protocol`, :mod:`firmware_bridge.framing`).
- :class:`DeviceBehaviour` holds the protocol behaviour tests; each test file subclasses it
  with a ``device`` fixture for its build.

The demo board (``firmware/board.h``): observations ``adc_a0`` (V, RC-filtered PWM D6),
``adc_a1`` (V, 3.3 V), ``pwm_d6_rb`` (duty read back, [0, 1]), ``motor_d5_rb`` ([-1, 1]);
actions ``pwm_d6`` (duty [0, 1], safe 0) and ``motor_d5`` ([-1, 1], safe 0); control period
10 ms, watchdog 100 ms.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from liquidnode.firmware_bridge import cobs
from liquidnode.firmware_bridge.framing import Deframer
from liquidnode.firmware_bridge.protocol import (
    Arm,
    Channel,
    Command,
    Estop,
    Frame,
    Hello,
    Identity,
    Message,
    MsgType,
    ObservationMsg,
    Ping,
    Pong,
    Status,
    encode_frame,
    encode_wire,
)

REPO = Path(__file__).resolve().parents[2]
VECTORS_JSON = REPO / "firmware_bridge" / "test_vectors.json"
FIRMWARE_DIR = REPO / "firmware_bridge" / "firmware"
BUILD_DIR = FIRMWARE_DIR / "build"

PERIOD_US = 10_000  #: the demo board's control period, µs
WATCHDOG_MS = 100  #: the demo board's watchdog timeout, ms
N_OBS, N_ACT = 4, 2
STATE_DISARMED, STATE_ARMED, STATE_WATCHDOG, STATE_ESTOP = 0, 1, 2, 3
FAULT_NONE, FAULT_WATCHDOG, FAULT_ESTOP, FAULT_BAD_COMMAND = 0, 1, 2, 3
FAULT_ESTOP_LATCHED, FAULT_WATCHDOG_RESET = 5, 6
SAFE_READBACK = (0.0, 128 / 255 * 2 - 1)  #: pwm_d6_rb, motor_d5_rb under the safe action
#: readback tolerance: one step of an 8-bit compare register on the [-1, 1] channel (2/255)
READBACK_TOL = 1.01 * 2 / 255


def require(condition: bool, reason: str) -> None:
    """Skip the test when ``condition`` is false, or fail under LIQUIDNODE_REQUIRE_ALL=1."""
    if condition:
        return
    if os.environ.get("LIQUIDNODE_REQUIRE_ALL") == "1":
        pytest.fail(f"{reason} (LIQUIDNODE_REQUIRE_ALL=1)")
    pytest.skip(reason)


def require_tools(*tools: str) -> None:
    """Require executables on PATH (e.g. ``make``, ``cc``, ``avr-gcc``)."""
    missing = [t for t in tools if shutil.which(t) is None]
    require(
        not missing,
        f"missing {', '.join(missing)}; install with scripts/install-system-deps.sh",
    )


def require_simavr() -> None:
    """Require the simavr headers and libraries (Debian: simavr, libsimavr-dev, libelf-dev)."""
    headers = Path("/usr/include/simavr/sim_avr.h").exists() or (
        shutil.which("pkg-config") is not None
        and subprocess.run(["pkg-config", "--exists", "simavr"], check=False).returncode == 0
    )
    require(headers, "simavr development files missing (Debian: libsimavr-dev libelf-dev)")


def build_firmware(*targets: str) -> str:
    """``make <targets>`` in firmware_bridge/firmware; return its stdout (e.g. avr-size).

    Raises:
        AssertionError: the build failed (the compiler output is in the message).
    """
    proc = subprocess.run(
        ["make", "--no-print-directory", "-C", str(FIRMWARE_DIR), *targets],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"make {' '.join(targets)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


class DeviceSession:
    """A running firmware process and a pyserial connection to its pty.

    Args:
        argv: the command; its first stdout line must be ``port: PATH``.
        startup_s: how long to wait for that line, s.
    """

    def __init__(self, argv: list[str], startup_s: float = 10.0) -> None:
        import serial

        self.argv = argv
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        self.serial = None
        try:
            line = self._first_line(startup_s)
            assert line.startswith("port: "), f"{argv[0]} printed {line!r}, not 'port: PATH'"
            self.port = line.split(": ", 1)[1].strip()
            # exclusive (flock): a pty number is reused as soon as it is freed, and another
            # test's reconnecting link (which also locks) must not open it and steal bytes
            self.serial = serial.Serial(self.port, 115200, timeout=0.005, exclusive=True)
            self.serial.reset_input_buffer()
        except BaseException:
            self.close()
            raise
        self.last_sent_t = 0.0  #: time.monotonic() of the last COMMAND written by command_for
        self.deframer = Deframer()
        self.seq = 0
        self.frames: list[tuple[float, Frame]] = []  #: everything received, (t_monotonic, frame)
        self.cursor = 0  #: wait_for() looks at self.frames[cursor:] only
        self.max_stall_s = 0.0  #: longest gap between two of our reads/writes, s
        self._last_touch = time.monotonic()
        self._token = 0x5000

    def _first_line(self, timeout_s: float) -> str:
        import selectors

        sel = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout_s):
            raise AssertionError(f"{self.argv[0]} printed no port line within {timeout_s} s")
        return self.proc.stdout.readline()

    def _touch(self) -> None:
        """Track how long this process went without serving the link (a host stall)."""
        now = time.monotonic()
        self.max_stall_s = max(self.max_stall_s, now - self._last_touch)
        self._last_touch = now

    # ---------------------------------------------------------------- sending
    def send(self, message: Message) -> int:
        """Encode ``message`` with the next seq and write it; return the seq."""
        self._touch()
        seq = self.seq
        self.seq = (self.seq + 1) & 0xFFFF
        self.serial.write(encode_wire(message, seq))
        return seq

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (corrupted frames, garbage)."""
        self.serial.write(data)

    def corrupted_wire(self, message: Message) -> tuple[int, bytes]:
        """A frame for ``message`` with one payload bit flipped after the CRC was computed.

        The COBS encoding and delimiter are valid, so the receiver gets as far as the CRC.
        Returns (seq, wire bytes).
        """
        seq = self.seq
        self.seq = (self.seq + 1) & 0xFFFF
        frame = bytearray(encode_frame(message, seq))
        frame[4] ^= 0x04  # first payload byte
        return seq, cobs.encode(bytes(frame)) + b"\x00"

    # ---------------------------------------------------------------- receiving
    def poll(self, duration_s: float) -> list[Frame]:
        """Read for ``duration_s`` seconds; return the frames received."""
        out: list[Frame] = []
        end = time.monotonic() + duration_s
        while True:
            self._touch()
            data = self.serial.read(self.serial.in_waiting or 1)
            if data:
                now = time.monotonic()
                for frame in self.deframer.feed(data):
                    self.frames.append((now, frame))
                    out.append(frame)
            if time.monotonic() >= end:
                return out

    def skip_received(self) -> None:
        """Read what has arrived and move the cursor past it (forget stale frames)."""
        self.poll(0.0)
        self.cursor = len(self.frames)

    def wait_for(
        self, predicate: Callable[[Frame], bool], timeout_s: float, what: str
    ) -> tuple[float, Frame]:
        """First frame at or after the cursor satisfying ``predicate``, reading as needed.

        Moves the cursor past the match. Returns (arrival time.monotonic(), frame).

        Raises:
            AssertionError: nothing matched within ``timeout_s`` (names ``what``).
        """
        end = time.monotonic() + timeout_s
        while True:
            for i in range(self.cursor, len(self.frames)):
                t, frame = self.frames[i]
                if predicate(frame):
                    self.cursor = i + 1
                    return t, frame
            self.cursor = len(self.frames)
            if time.monotonic() >= end:
                raise AssertionError(f"no {what} within {timeout_s} s from {self.argv[0]}")
            self.poll(0.002)

    def sync(self) -> float:
        """PING with a fresh token and wait for its PONG: everything sent before has been
        processed by the device. Returns the round-trip time, s."""
        self._token += 1
        token = self._token
        t0 = time.monotonic()
        self.send(Ping(token))
        t1, _ = self.wait_for(
            lambda f: isinstance(f.message, Pong) and f.message.token == token, 1.0, "PONG"
        )
        return t1 - t0

    def current_status(self, message: Message) -> Status:
        """Send ``message`` (ARM or ESTOP: the device replies STATUS), then a PING; return
        the last STATUS received before the PONG.

        The firmware sends a pending STATUS before a pending PONG, so that STATUS reflects
        the device after it processed ``message`` - a 1 Hz STATUS emitted just before
        could otherwise pass for the reply.
        """
        self.skip_received()
        start = self.cursor
        self.send(message)
        self.sync()
        statuses = [
            f.message for _, f in self.frames[start : self.cursor] if isinstance(f.message, Status)
        ]
        assert statuses, f"no STATUS after {type(message).__name__} from {self.argv[0]}"
        return statuses[-1]

    def observation(self, timeout_s: float = 1.0) -> ObservationMsg:
        """The next OBSERVATION that arrives from now on (older ones are skipped)."""
        self.skip_received()
        _, frame = self.wait_for(lambda f: f.type == MsgType.OBSERVATION, timeout_s, "OBSERVATION")
        assert isinstance(frame.message, ObservationMsg)
        return frame.message

    def arm(self) -> Status:
        """Send ARM; return the device's STATUS after it (asserts state ARMED)."""
        status = self.current_status(Arm())
        assert status.state == STATE_ARMED, status
        return status

    def handshake(self) -> tuple[Identity, list[Channel]]:
        """HELLO -> IDENTITY + n_obs + n_act CHANNEL frames."""
        self.skip_received()
        self.send(Hello(1))
        _, frame = self.wait_for(lambda f: f.type == MsgType.IDENTITY, 1.0, "IDENTITY")
        identity = frame.message
        assert isinstance(identity, Identity)
        channels: list[Channel] = []
        while len(channels) < identity.n_obs + identity.n_act:
            _, frame = self.wait_for(lambda f: f.type == MsgType.CHANNEL, 1.0, "CHANNEL")
            assert isinstance(frame.message, Channel)
            channels.append(frame.message)
        return identity, channels

    def command_for(self, values: tuple[float, ...], duration_s: float) -> int:
        """Send one COMMAND per control period for ``duration_s``; return the last seq."""
        seq = -1
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            seq = self.send(Command(values))
            self.last_sent_t = time.monotonic()
            self.poll(PERIOD_US * 1e-6)
        return seq

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def reopen(self) -> None:
        """Close the pty and open it again, as a host that reconnects does."""
        import serial

        self.serial.close()
        self.serial = serial.Serial(self.port, 115200, timeout=0.005, exclusive=True)
        self.serial.reset_input_buffer()
        self.deframer = Deframer()

    def close(self) -> str:
        """Stop the process (SIGTERM, then SIGKILL); return its stderr."""
        if self.serial is not None:
            self.serial.close()
            self.serial = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        assert self.proc.stderr is not None
        return self.proc.stderr.read()


def readbacks(obs: ObservationMsg) -> tuple[float, float]:
    """(pwm_d6_rb, motor_d5_rb) of an observation."""
    return obs.values[2], obs.values[3]


def close_to(a: tuple[float, ...], b: tuple[float, ...], tol: float = READBACK_TOL) -> bool:
    return all(math.isclose(x, y, abs_tol=tol) for x, y in zip(a, b, strict=True))


#: A gap this long in serving the link (half the watchdog timeout) means the test process
#: was starved of CPU, which can trip the device watchdog behind the test's back.
STALL_LIMIT_S = 0.05
MAX_ATTEMPTS = 3


def stall_tolerant(body: Callable[[Any, DeviceSession], None]) -> Callable[..., None]:
    """Make a behaviour check a test that runs it on a fresh device, retried (up to
    MAX_ATTEMPTS) only when it failed AND this process demonstrably stalled for more than
    STALL_LIMIT_S during the attempt (a loaded machine); any other failure is reported
    at once. The test requests the ``device_factory`` fixture of its class.
    """

    def test(self: Any, device_factory: Callable[[], DeviceSession]) -> None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            session = device_factory()
            try:
                body(self, session)
                return
            except AssertionError:
                if session.max_stall_s < STALL_LIMIT_S or attempt == MAX_ATTEMPTS:
                    raise
                warnings.warn(
                    f"{body.__name__}: host stalled {session.max_stall_s * 1e3:.0f} ms "
                    f"(> {STALL_LIMIT_S * 1e3:.0f} ms) during attempt {attempt}; retrying",
                    stacklevel=1,
                )
            finally:
                stderr = session.close()
                assert "CRASHED" not in stderr, stderr

    test.__name__ = body.__name__
    test.__qualname__ = body.__qualname__
    test.__doc__ = body.__doc__
    return test


class DeviceBehaviour:
    """Protocol behaviour every build of the reference firmware must show.

    Subclasses provide a ``device_factory`` fixture returning a callable that starts a
    :class:`DeviceSession` (each test closes its sessions), and may set
    ``timing_slack_s`` (tolerance for wall-clock checks, s; the device-clock checks are
    strict).
    """

    timing_slack_s = 0.5

    @stall_tolerant
    def test_handshake_announces_the_schema(self, device: DeviceSession) -> None:
        identity, channels = device.handshake()
        assert identity.protocol_version == 1
        assert (identity.n_obs, identity.n_act) == (N_OBS, N_ACT)
        assert identity.control_period_us == PERIOD_US
        assert identity.watchdog_timeout_ms == WATCHDOG_MS
        assert "ref-fw" in identity.device_id
        got = [(c.kind, c.index, c.name, c.unit, c.low, c.high, c.safe) for c in channels]
        assert got == [
            (0, 0, "adc_a0", "V", 0.0, 5.0, 0.0),
            (0, 1, "adc_a1", "V", 0.0, 5.0, 0.0),
            (0, 2, "pwm_d6_rb", "duty", 0.0, 1.0, 0.0),
            (0, 3, "motor_d5_rb", "1", -1.0, 1.0, 0.0),
            (1, 0, "pwm_d6", "duty", 0.0, 1.0, 0.0),
            (1, 1, "motor_d5", "1", -1.0, 1.0, 0.0),
        ]

    @stall_tolerant
    def test_observations_stream_at_the_control_period_while_disarmed(
        self, device: DeviceSession
    ) -> None:
        device.observation()
        frames = device.poll(0.5)
        obs = [f.message for f in frames if isinstance(f.message, ObservationMsg)]
        assert len(obs) >= 20, f"{len(obs)} observations in 0.5 s at a 10 ms period"
        # one observation per period of the device clock, never a burst (a starved host
        # build skips missed periods rather than catching up)
        span_us = obs[-1].device_time_us - obs[0].device_time_us
        assert len(obs) - 1 <= span_us / PERIOD_US + 1, (span_us, len(obs))
        dts = [b.device_time_us - a.device_time_us for a, b in itertools.pairwise(obs)]
        median = sorted(dts)[len(dts) // 2]
        assert abs(median - PERIOD_US) <= 100, f"median device period {median} µs"
        assert all(o.state == STATE_DISARMED for o in obs)
        assert all(len(o.values) == N_OBS for o in obs)
        assert close_to(readbacks(obs[-1]), SAFE_READBACK), "safe action after reset"
        assert math.isclose(obs[-1].values[1], 3.3, abs_tol=0.01), "adc_a1 reads 3.3 V"
        # frame seq numbers of the device increase by one per frame
        seqs = [f.seq for f in frames]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))

    @stall_tolerant
    def test_commands_are_acked_clamped_and_move_the_plant(self, device: DeviceSession) -> None:
        status = device.arm()
        assert (status.state, status.fault) == (STATE_ARMED, FAULT_NONE)
        last = device.command_for((0.6, -0.5), 0.25)
        obs = device.wait_for(
            lambda f: isinstance(f.message, ObservationMsg) and f.message.ack_seq == last,
            0.5,
            f"OBSERVATION acking COMMAND seq {last}",
        )[1].message
        assert isinstance(obs, ObservationMsg) and obs.state == STATE_ARMED
        assert close_to(readbacks(obs), (0.6, -0.5))
        # out-of-range values are clamped to the channel limits
        last = device.command_for((7.5, -3.0), 0.1)
        obs = device.wait_for(
            lambda f: isinstance(f.message, ObservationMsg) and f.message.ack_seq == last,
            0.5,
            f"OBSERVATION acking COMMAND seq {last}",
        )[1].message
        assert close_to(readbacks(obs), (1.0, -1.0))
        # the RC plant on A0 follows 5 V * duty (tau 50 ms): after 0.4 s at duty 0.8 -> ~4 V
        last = device.command_for((0.8, 0.0), 0.4)
        obs = device.observation()
        assert 3.6 < obs.values[0] < 4.1, f"adc_a0 = {obs.values[0]} V after 0.4 s at duty 0.8"

    @stall_tolerant
    def test_corrupted_frame_is_dropped_and_counted(self, device: DeviceSession) -> None:
        device.arm()
        device.command_for((0.2, 0.0), 0.05)
        before = device.arm()  # STATUS with the counters now
        seq, wire = device.corrupted_wire(Command((0.9, 0.9)))
        device.send_raw(wire)
        device.command_for((0.2, 0.0), 0.05)
        after = device.arm()
        assert after.crc_errors == before.crc_errors + 1
        assert after.dropped_frames == before.dropped_frames
        obs = device.observation()
        assert obs.ack_seq != seq
        assert close_to(readbacks(obs), (0.2, 0.0)), "the corrupted command was not applied"

    @stall_tolerant
    def test_invalid_vectors_garbage_and_oversize_are_dropped_then_resync(
        self, device: DeviceSession
    ) -> None:
        """Every ``invalid`` frame of test_vectors.json, garbage and an oversize run."""
        vectors = json.loads(VECTORS_JSON.read_text())["invalid"]
        assert vectors, "test_vectors.json has no invalid frames"
        before = device.arm()
        for v in vectors:
            device.send_raw(bytes.fromhex(v["wire_hex"]))
        device.send_raw(b"\x13\x37\xff\x00")  # garbage: COBS block runs past the end
        device.send_raw(bytes(range(1, 256)) * 2 + b"\x00")  # 510 bytes: oversize
        device.send_raw(encode_wire(Ping(99), 500) + b"\x00" * 3)  # extra 0x00: idle filler
        _, pong = device.wait_for(lambda f: isinstance(f.message, Pong), 1.0, "PONG after junk")
        assert isinstance(pong.message, Pong) and pong.message.token == 99
        after = device.arm()
        n_crc = sum(v["reason"] == "crc" for v in vectors)
        assert after.crc_errors == before.crc_errors + n_crc
        assert after.dropped_frames == before.dropped_frames + len(vectors) - n_crc + 2
        assert after.state == STATE_ARMED

    @stall_tolerant
    def test_non_finite_command_is_rejected(self, device: DeviceSession) -> None:
        device.arm()
        last = device.command_for((0.4, 0.25), 0.05)
        before = device.arm()
        device.send(Command((math.nan, 0.0)))
        device.send(Command((0.1, math.inf)))
        _, frame = device.wait_for(
            lambda f: isinstance(f.message, Status) and f.message.fault == FAULT_BAD_COMMAND,
            1.0,
            "STATUS with fault 3 (bad command)",
        )
        status = frame.message
        assert isinstance(status, Status)
        assert status.state == STATE_ARMED, "a bad command does not change the state"
        assert status.last_cmd_seq == last
        assert close_to(readbacks(device.observation()), (0.4, 0.25)), "previous action kept"
        after = device.arm()  # clears the latched fault, reports the counters
        assert after.fault == FAULT_NONE
        assert after.dropped_frames == before.dropped_frames + 2

    @stall_tolerant
    def test_watchdog_trips_within_its_timeout_and_stays_safe_until_arm(
        self, device: DeviceSession
    ) -> None:
        device.arm()
        last = device.command_for((0.7, 0.5), 0.3)
        t_last_sent = device.last_sent_t
        _t_ack, ack = device.wait_for(
            lambda f: isinstance(f.message, ObservationMsg) and f.message.ack_seq == last,
            0.5,
            "ack of the last command",
        )
        assert isinstance(ack.message, ObservationMsg)
        t_trip, frame = device.wait_for(
            lambda f: isinstance(f.message, Status) and f.message.state == STATE_WATCHDOG,
            1.0,
            "STATUS(WATCHDOG) after the host went silent",
        )
        trip = frame.message
        assert isinstance(trip, Status) and trip.fault == FAULT_WATCHDOG
        timeout_s = WATCHDOG_MS / 1000
        # device clock: the last command was applied after the observation before its ack
        # (which did not acknowledge it yet) and by the ack; the two are one period apart
        # unless the device's own tick ran late (a loaded machine delays the host build too)
        ack_us = ack.message.device_time_us
        before_us = max(
            f.message.device_time_us
            for _, f in device.frames
            if isinstance(f.message, ObservationMsg) and f.message.device_time_us < ack_us
        )
        dev_s = (trip.device_time_us - ack_us) * 1e-6
        dev_before_s = (trip.device_time_us - before_us) * 1e-6
        recent = [
            (
                f.type,
                getattr(f.message, "device_time_us", None),
                getattr(f.message, "ack_seq", None),
            )
            for _, f in device.frames[-40:]
        ]
        assert timeout_s - 0.001 <= dev_before_s and dev_s <= timeout_s + 0.002, (
            dev_before_s,
            dev_s,
            last,
            recent,
        )
        # wall clock, as seen by the host: not early (the simavr harness may compress up to
        # 5 ms of lag); late only by link latency and scheduling (generous bound: a loaded
        # machine may stall either process)
        wall_s = t_trip - t_last_sent
        assert timeout_s - 0.006 <= wall_s <= timeout_s + self.timing_slack_s, wall_s
        # safe action, and commands do not re-arm
        device.command_for((0.9, 0.9), 0.1)
        obs = device.observation()
        assert obs.state == STATE_WATCHDOG
        assert close_to(readbacks(obs), SAFE_READBACK)
        assert obs.ack_seq == last
        # explicit ARM re-arms: fault cleared, commands applied again
        status = device.arm()
        assert status.fault == FAULT_NONE
        last = device.command_for((0.3, -0.25), 0.1)
        obs = device.wait_for(
            lambda f: isinstance(f.message, ObservationMsg) and f.message.ack_seq == last,
            0.5,
            "ack after re-arm",
        )[1].message
        assert isinstance(obs, ObservationMsg) and obs.state == STATE_ARMED
        assert close_to(readbacks(obs), (0.3, -0.25))

    @stall_tolerant
    def test_host_estop_applies_the_safe_action_until_arm(self, device: DeviceSession) -> None:
        device.arm()
        device.command_for((1.0, 1.0), 0.05)
        device.send(Estop(0))
        _, frame = device.wait_for(
            lambda f: isinstance(f.message, Status) and f.message.state == STATE_ESTOP,
            1.0,
            "STATUS(ESTOP)",
        )
        assert isinstance(frame.message, Status) and frame.message.fault == FAULT_ESTOP
        device.command_for((1.0, 1.0), 0.05)
        obs = device.observation()
        assert obs.state == STATE_ESTOP and close_to(readbacks(obs), SAFE_READBACK)
        device.arm()
        device.command_for((1.0, 1.0), 0.05)
        assert close_to(readbacks(device.observation()), (1.0, 1.0))

    @stall_tolerant
    def test_estop_button_is_reported_as_device_estop(self, device: DeviceSession) -> None:
        device.arm()
        device.command_for((0.5, 0.5), 0.05)
        device.signal(signal.SIGUSR1)
        _, frame = device.wait_for(lambda f: isinstance(f.message, Estop), 1.0, "ESTOP frame")
        assert isinstance(frame.message, Estop) and frame.message.source == 1
        status = device.wait_for(
            lambda f: isinstance(f.message, Status) and f.message.state == STATE_ESTOP,
            1.0,
            "STATUS(ESTOP) after the button",
        )[1].message
        assert isinstance(status, Status) and status.fault == FAULT_ESTOP_LATCHED
        assert close_to(readbacks(device.observation()), SAFE_READBACK)

    @stall_tolerant
    def test_button_estop_latch_survives_arm_host_estop_and_reconnect(
        self, device: DeviceSession
    ) -> None:
        device.arm()
        device.command_for((0.5, 0.5), 0.05)
        device.signal(signal.SIGUSR1)
        device.wait_for(
            lambda f: isinstance(f.message, Status) and f.message.fault == FAULT_ESTOP_LATCHED,
            1.0,
            "STATUS(ESTOP, latched) after the button",
        )
        time.sleep(0.1)  # the button is released again (the harness holds it 50 ms)
        for _ in range(3):  # ARM is refused: the reply STATUS still says latched
            status = device.current_status(Arm())
            assert (status.state, status.fault) == (STATE_ESTOP, FAULT_ESTOP_LATCHED)
        # a host e-stop on top does not turn the latch into a host-clearable fault 2
        status = device.current_status(Estop(0))
        assert (status.state, status.fault) == (STATE_ESTOP, FAULT_ESTOP_LATCHED)
        device.command_for((1.0, 1.0), 0.05)
        obs = device.observation()
        assert obs.state == STATE_ESTOP and close_to(readbacks(obs), SAFE_READBACK)
        # a host that reconnects sees the latch in the STATUS that ends the handshake
        device.reopen()
        device.handshake()
        _, frame = device.wait_for(
            lambda f: isinstance(f.message, Status), 0.5, "STATUS after the handshake"
        )
        assert isinstance(frame.message, Status)
        assert (frame.message.state, frame.message.fault) == (STATE_ESTOP, FAULT_ESTOP_LATCHED)
        status = device.current_status(Arm())
        assert (status.state, status.fault) == (STATE_ESTOP, FAULT_ESTOP_LATCHED)
        assert close_to(readbacks(device.observation()), SAFE_READBACK)

    @stall_tolerant
    def test_handshake_ends_with_status(self, device: DeviceSession) -> None:
        device.arm()
        device.handshake()
        _, frame = device.wait_for(
            lambda f: isinstance(f.message, Status), 0.5, "STATUS after the handshake"
        )
        assert isinstance(frame.message, Status)
        assert (frame.message.state, frame.message.fault) == (STATE_ARMED, FAULT_NONE)

    @stall_tolerant
    def test_ping_is_answered_with_pong(self, device: DeviceSession) -> None:
        device.observation()
        for token in (0, 1, 0xDEADBEEF, 0xFFFFFFFF, 12345):
            device.send(Ping(token))
            device.wait_for(  # raises when no PONG with this token comes back
                lambda f, tok=token: isinstance(f.message, Pong) and f.message.token == tok,
                0.5,
                f"PONG {token:#x}",
            )
