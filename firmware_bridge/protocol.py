"""Wire protocol v1: message types, payload layouts, frame encode/decode.

The authoritative description is ``firmware_bridge/PROTOCOL.md`` (datasheet tables per frame);
this module implements exactly that. A decoded frame is::

    | offset | size | field   | notes                                              |
    | 0      | 1    | version | protocol version, PROTOCOL_VERSION = 1             |
    | 1      | 1    | type    | MsgType                                            |
    | 2      | 2    | seq     | u16 per-sender sequence number, wraps at 65536     |
    | 4      | N    | payload | 0 <= N <= 240, layout per type (classes below)     |
    | 4+N    | 2    | crc     | CRC-16/CCITT-FALSE over bytes 0..3+N, little-endian |

All multi-byte fields are little-endian; floats are IEEE-754 binary32. On the wire a frame is
COBS-encoded and followed by one 0x00 (:func:`encode_wire`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Union

import numpy as np

from liquidnode.firmware_bridge import cobs
from liquidnode.firmware_bridge.crc import crc16_ccitt_false

PROTOCOL_VERSION = 1
HEADER_LEN = 4
CRC_LEN = 2
MIN_FRAME = HEADER_LEN + CRC_LEN  # 6 bytes: empty payload
MAX_PAYLOAD = 240
MAX_FRAME = HEADER_LEN + MAX_PAYLOAD + CRC_LEN  # 246 bytes decoded
MAX_ENCODED = cobs.max_encoded_len(MAX_FRAME)  # 247 bytes COBS, without the delimiter
MAX_WIRE = MAX_ENCODED + 1  # 248 bytes with the 0x00 delimiter
MAX_ID_LEN = 32
MAX_NAME_LEN = 32
MAX_UNIT_LEN = 16


class MsgType(IntEnum):
    """Message type byte (offset 1)."""

    HELLO = 0x01  # host -> device
    IDENTITY = 0x02  # device -> host, reply to HELLO
    CHANNEL = 0x03  # device -> host, one per channel after IDENTITY
    OBSERVATION = 0x10  # device -> host, every control period
    COMMAND = 0x11  # host -> device
    PING = 0x12  # host -> device
    PONG = 0x13  # device -> host
    ESTOP = 0x14  # either direction
    ARM = 0x15  # host -> device
    STATUS = 0x16  # device -> host
    POLICY = 0x17  # device -> host, handshake of a device that runs its own policy
    SENSORS = 0x18  # host -> device, hardware in the loop: the simulated sensor values
    TELEMETRY = 0x19  # device -> host, one per on-device policy tick
    DISARM = 0x1A  # host -> device


class DeviceState(IntEnum):
    """Device state (OBSERVATION.state, STATUS.state)."""

    DISARMED = 0
    ARMED = 1
    WATCHDOG = 2
    ESTOP = 3


class Fault(IntEnum):
    """Latched fault code (STATUS.fault)."""

    NONE = 0
    WATCHDOG = 1  # no valid COMMAND within watchdog_timeout_ms
    ESTOP = 2  # an ESTOP frame or button
    BAD_COMMAND = 3  # a COMMAND with a non-finite value was rejected
    TERMINATED = 4  # the plant ended its episode (virtual robot: pendulum fell)
    ESTOP_LATCHED = 5  # the device's own e-stop input latched it; only a local reset clears it
    WATCHDOG_RESET = 6  # the MCU was restarted by its hardware watchdog (reported until ARM)


class ChannelKind(IntEnum):
    """CHANNEL.kind."""

    OBSERVATION = 0
    ACTION = 1


class FrameError(ValueError):
    """A frame was malformed; ``reason`` is one of the drop counters' keys."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _f32(values: tuple[float, ...]) -> bytes:
    with np.errstate(over="ignore"):
        return np.asarray(values, dtype=np.float64).astype("<f4").tobytes()


def _f32_list(data: bytes) -> tuple[float, ...]:
    return tuple(float(v) for v in np.frombuffer(data, dtype="<f4"))


def _ascii(data: bytes) -> str:
    return data.decode("ascii", errors="replace")


#: How the unit signs of liquidnode's simulations are spelled on the ASCII wire.
_ASCII_UNITS = {"·": "*", "²": "^2", "³": "^3", "°": "deg", "µ": "u"}


def ascii_text(text: str) -> str:
    """``text`` as it travels in a CHANNEL frame: ``"N·m"`` -> ``"N*m"``, ``"m/s²"`` ->
    ``"m/s^2"``; any other non-ASCII character becomes ``?``."""
    for sign, spelled in _ASCII_UNITS.items():
        text = text.replace(sign, spelled)
    return text.encode("ascii", errors="replace").decode("ascii")


# ---------------------------------------------------------------- messages


@dataclass(frozen=True)
class Hello:
    """HELLO (0x01), host -> device. Payload 1 byte: u8 host_protocol_version."""

    host_version: int = PROTOCOL_VERSION
    TYPE = MsgType.HELLO

    def payload(self) -> bytes:
        return struct.pack("<B", self.host_version)


@dataclass(frozen=True)
class Identity:
    """IDENTITY (0x02), device -> host. Payload 10 + id_len bytes.

    ``u8 protocol_version, u8 n_obs, u8 n_act, u32 control_period_us,
    u16 watchdog_timeout_ms, u8 id_len, id[id_len]`` (ASCII, id_len <= 32).
    """

    protocol_version: int
    n_obs: int
    n_act: int
    control_period_us: int
    watchdog_timeout_ms: int
    device_id: str
    TYPE = MsgType.IDENTITY

    def payload(self) -> bytes:
        ident = self.device_id.encode("ascii", errors="replace")[:MAX_ID_LEN]
        head = struct.pack(
            "<BBBIHB",
            self.protocol_version,
            self.n_obs,
            self.n_act,
            self.control_period_us,
            self.watchdog_timeout_ms,
            len(ident),
        )
        return head + ident


@dataclass(frozen=True)
class Channel:
    """CHANNEL (0x03), device -> host. Payload 16 + name_len + unit_len bytes.

    ``u8 kind, u8 index, f32 low, f32 high, f32 safe, u8 name_len, name, u8 unit_len, unit``.
    """

    kind: int
    index: int
    low: float
    high: float
    safe: float
    name: str
    unit: str
    TYPE = MsgType.CHANNEL

    def payload(self) -> bytes:
        name = ascii_text(self.name).encode("ascii")[:MAX_NAME_LEN]
        unit = ascii_text(self.unit).encode("ascii")[:MAX_UNIT_LEN]
        return (
            struct.pack("<BB", self.kind, self.index)
            + _f32((self.low, self.high, self.safe))
            + struct.pack("<B", len(name))
            + name
            + struct.pack("<B", len(unit))
            + unit
        )


@dataclass(frozen=True)
class ObservationMsg:
    """OBSERVATION (0x10), device -> host. Payload 7 + 4 * n_obs bytes.

    ``u32 device_time_us, u16 ack_seq, u8 state, f32 values[n_obs]``.
    """

    device_time_us: int
    ack_seq: int
    state: int
    values: tuple[float, ...]
    TYPE = MsgType.OBSERVATION

    def payload(self) -> bytes:
        head = struct.pack("<IHB", self.device_time_us & 0xFFFFFFFF, self.ack_seq, self.state)
        return head + _f32(self.values)


@dataclass(frozen=True)
class Command:
    """COMMAND (0x11), host -> device. Payload 4 * n_act bytes: ``f32 values[n_act]``."""

    values: tuple[float, ...]
    TYPE = MsgType.COMMAND

    def payload(self) -> bytes:
        return _f32(self.values)


@dataclass(frozen=True)
class Ping:
    """PING (0x12), host -> device. Payload 4 bytes: ``u32 token``."""

    token: int
    TYPE = MsgType.PING

    def payload(self) -> bytes:
        return struct.pack("<I", self.token)


@dataclass(frozen=True)
class Pong:
    """PONG (0x13), device -> host. Payload 4 bytes: ``u32 token`` (echo of the PING)."""

    token: int
    TYPE = MsgType.PONG

    def payload(self) -> bytes:
        return struct.pack("<I", self.token)


@dataclass(frozen=True)
class Estop:
    """ESTOP (0x14), either direction. Payload 1 byte: ``u8 source`` (0 host, 1 device)."""

    source: int = 0
    TYPE = MsgType.ESTOP

    def payload(self) -> bytes:
        return struct.pack("<B", self.source)


@dataclass(frozen=True)
class Arm:
    """ARM (0x15), host -> device. Empty payload."""

    TYPE = MsgType.ARM

    def payload(self) -> bytes:
        return b""


@dataclass(frozen=True)
class Status:
    """STATUS (0x16), device -> host. Payload 16 bytes.

    ``u8 state, u8 fault, u32 crc_errors, u32 dropped_frames, u16 last_cmd_seq,
    u32 device_time_us``.
    """

    state: int
    fault: int
    crc_errors: int
    dropped_frames: int
    last_cmd_seq: int
    device_time_us: int
    TYPE = MsgType.STATUS

    def payload(self) -> bytes:
        return struct.pack(
            "<BBIIHI",
            self.state,
            self.fault,
            self.crc_errors & 0xFFFFFFFF,
            self.dropped_frames & 0xFFFFFFFF,
            self.last_cmd_seq,
            self.device_time_us & 0xFFFFFFFF,
        )


class Precision(IntEnum):
    """POLICY.precision: the arithmetic of the policy on the device."""

    F32 = 0
    Q15 = 1
    Q7 = 2


class SensorSource(IntEnum):
    """POLICY.sensor_source: where the on-device policy reads its observation."""

    BOARD = 0  # the board's sensors
    HOST = 1  # SENSORS frames from the host (hardware in the loop)


@dataclass(frozen=True)
class PolicyInfo:
    """POLICY (0x17), device -> host, after the CHANNEL frames of a device that runs an
    exported policy. Payload 9 + name_len bytes.

    ``u8 precision (Precision), u8 sensor_source (SensorSource), u16 state_dim,
    u32 clock_hz (CPU clock, Hz: cycles -> seconds), u8 name_len, name`` (ASCII, <= 32).
    """

    precision: int
    sensor_source: int
    state_dim: int
    clock_hz: int
    name: str
    TYPE = MsgType.POLICY

    def payload(self) -> bytes:
        name = self.name.encode("ascii", errors="replace")[:MAX_NAME_LEN]
        head = struct.pack(
            "<BBHIB", self.precision, self.sensor_source, self.state_dim, self.clock_hz, len(name)
        )
        return head + name


@dataclass(frozen=True)
class Sensors:
    """SENSORS (0x18), host -> device. Payload 4 * n_obs bytes: ``f32 values[n_obs]``, the
    observation the device's next policy step reads (units and order of the observation
    CHANNEL frames); the frame's seq comes back as ``Telemetry.sensor_seq``."""

    values: tuple[float, ...]
    TYPE = MsgType.SENSORS

    def payload(self) -> bytes:
        return _f32(self.values)


@dataclass(frozen=True)
class Telemetry:
    """TELEMETRY (0x19), device -> host, one per on-device policy tick.
    Payload 13 + 4 * n_obs + 8 * n_act bytes.

    ``u32 device_time_us, u16 sensor_seq, u8 state, u32 step_cycles, u16 state_digest,
    f32 obs[n_obs], f32 policy_action[n_act], f32 applied[n_act]``: the observation the step
    read, the policy's output (env units, before the clamp), what the actuators got (clamped,
    or the safe action outside ARMED). ``step_cycles`` is 0 when no step ran (not ARMED).
    ``state_digest`` is the CRC-16/CCITT-FALSE of the hidden state as little-endian f32 (the
    layout of ``Policy.state``). ``sensor_seq`` is the seq of the SENSORS frame read (0 when
    the device reads its own sensors).
    """

    device_time_us: int
    sensor_seq: int
    state: int
    step_cycles: int
    state_digest: int
    obs: tuple[float, ...]
    policy_action: tuple[float, ...]
    applied: tuple[float, ...]
    TYPE = MsgType.TELEMETRY

    def payload(self) -> bytes:
        head = struct.pack(
            "<IHBIH",
            self.device_time_us & 0xFFFFFFFF,
            self.sensor_seq,
            self.state,
            self.step_cycles & 0xFFFFFFFF,
            self.state_digest,
        )
        return head + _f32(self.obs) + _f32(self.policy_action) + _f32(self.applied)

    @staticmethod
    def sizes(n: int, n_obs: int) -> int:
        """n_act of a TELEMETRY payload of ``n`` bytes with ``n_obs`` observations; -1 if
        no n_act >= 1 fits."""
        rest = n - 13 - 4 * n_obs
        return rest // 8 if rest >= 8 and rest % 8 == 0 else -1


@dataclass(frozen=True)
class Disarm:
    """DISARM (0x1A), host -> device. Empty payload: the device applies its safe action and
    goes DISARMED (a latched device e-stop stays)."""

    TYPE = MsgType.DISARM

    def payload(self) -> bytes:
        return b""


def state_digest(state: np.ndarray) -> int:
    """TELEMETRY.state_digest of a hidden state: CRC-16/CCITT-FALSE of its f32 LE bytes."""
    return crc16_ccitt_false(np.asarray(state, dtype="<f4").tobytes())


def decode_telemetry(p: bytes, n_obs: int) -> Telemetry:
    """Split a TELEMETRY payload whose observation count is known (from IDENTITY).

    Raises:
        FrameError: reason ``"bad_length"``.
    """
    n_act = Telemetry.sizes(len(p), n_obs)
    _need(n_act >= 1, "TELEMETRY", len(p), f"expected 13 + 4 * {n_obs} + 8 * n_act")
    time_us, seq, state, cycles, digest = struct.unpack_from("<IHBIH", p)
    values = _f32_list(p[13:])
    return Telemetry(
        time_us,
        seq,
        state,
        cycles,
        digest,
        values[:n_obs],
        values[n_obs : n_obs + n_act],
        values[n_obs + n_act :],
    )


Message = Union[  # noqa: UP007 - runtime alias
    Hello,
    Identity,
    Channel,
    ObservationMsg,
    Command,
    Ping,
    Pong,
    Estop,
    Arm,
    Status,
    PolicyInfo,
    Sensors,
    Telemetry,
    Disarm,
]


@dataclass(frozen=True)
class Frame:
    """A decoded, CRC-checked frame.

    Attributes:
        version: protocol version byte (offset 0).
        seq: sender's u16 sequence number.
        message: the decoded message; for a frame of another protocol version, None.
        type: the raw type byte.
        payload: the raw payload bytes.
    """

    version: int
    seq: int
    message: Message | None
    type: int
    payload: bytes


# ---------------------------------------------------------------- decode


def _need(cond: bool, type_name: str, n: int, what: str) -> None:
    if not cond:
        raise FrameError("bad_length", f"{type_name} payload of {n} bytes: {what}")


def decode_payload(msg_type: int, p: bytes) -> Message:
    """Decode a version-1 payload of type ``msg_type``.

    Raises:
        FrameError: reason ``"unknown_type"`` or ``"bad_length"``.
    """
    n = len(p)
    try:
        t = MsgType(msg_type)
    except ValueError:
        raise FrameError("unknown_type", f"unknown message type 0x{msg_type:02x}") from None
    name = t.name
    if t is MsgType.HELLO:
        _need(n == 1, name, n, "expected 1")
        return Hello(p[0])
    if t is MsgType.IDENTITY:
        _need(n >= 10 and n == 10 + p[9], name, n, "expected 10 + id_len")
        ver, n_obs, n_act, period, wd, _ = struct.unpack_from("<BBBIHB", p)
        return Identity(ver, n_obs, n_act, period, wd, _ascii(p[10:]))
    if t is MsgType.CHANNEL:
        _need(n >= 16, name, n, "expected >= 16")
        name_len = p[14]
        _need(n >= 16 + name_len, name, n, f"name_len {name_len} runs past the end")
        unit_len = p[15 + name_len]
        _need(n == 16 + name_len + unit_len, name, n, "expected 16 + name_len + unit_len")
        kind, index = p[0], p[1]
        low, high, safe = _f32_list(p[2:14])
        return Channel(
            kind,
            index,
            low,
            high,
            safe,
            _ascii(p[15 : 15 + name_len]),
            _ascii(p[16 + name_len :]),
        )
    if t is MsgType.OBSERVATION:
        _need(n >= 11 and (n - 7) % 4 == 0, name, n, "expected 7 + 4 * n_obs, n_obs >= 1")
        time_us, ack, state = struct.unpack_from("<IHB", p)
        return ObservationMsg(time_us, ack, state, _f32_list(p[7:]))
    if t is MsgType.COMMAND:
        _need(n >= 4 and n % 4 == 0, name, n, "expected 4 * n_act, n_act >= 1")
        return Command(_f32_list(p))
    if t in (MsgType.PING, MsgType.PONG):
        _need(n == 4, name, n, "expected 4")
        token = struct.unpack("<I", p)[0]
        return Ping(token) if t is MsgType.PING else Pong(token)
    if t is MsgType.ESTOP:
        _need(n == 1, name, n, "expected 1")
        return Estop(p[0])
    if t is MsgType.ARM:
        _need(n == 0, name, n, "expected 0")
        return Arm()
    if t is MsgType.POLICY:
        _need(n >= 9 and n == 9 + p[8], name, n, "expected 9 + name_len")
        prec, source, state_dim, clock, _ = struct.unpack_from("<BBHIB", p)
        return PolicyInfo(prec, source, state_dim, clock, _ascii(p[9:]))
    if t is MsgType.SENSORS:
        _need(n >= 4 and n % 4 == 0, name, n, "expected 4 * n_obs, n_obs >= 1")
        return Sensors(_f32_list(p))
    if t is MsgType.TELEMETRY:
        # The split of obs and actions needs n_obs (IDENTITY): decode_telemetry(). Here
        # the values stay together in ``obs`` and the actions empty.
        _need(n >= 21 and (n - 13) % 4 == 0, name, n, "expected 13 + 4 * n_obs + 8 * n_act")
        time_us, seq, state, cycles, digest = struct.unpack_from("<IHBIH", p)
        return Telemetry(time_us, seq, state, cycles, digest, _f32_list(p[13:]), (), ())
    if t is MsgType.DISARM:
        _need(n == 0, name, n, "expected 0")
        return Disarm()
    _need(n == 16, name, n, "expected 16")
    return Status(*struct.unpack("<BBIIHI", p))


def decode_frame(frame: bytes | bytearray | memoryview) -> Frame:
    """Check and decode one COBS-decoded frame (header + payload + CRC).

    A frame whose version byte is not :data:`PROTOCOL_VERSION` is returned with
    ``message=None`` (its CRC checked), so that a host can report an incompatible device.

    Raises:
        FrameError: reason ``"oversize"``, ``"short"``, ``"crc"``, ``"unknown_type"`` or
            ``"bad_length"``.
    """
    f = bytes(frame)
    if len(f) > MAX_FRAME:
        raise FrameError("oversize", f"frame of {len(f)} bytes > {MAX_FRAME}")
    if len(f) < MIN_FRAME:
        raise FrameError("short", f"frame of {len(f)} bytes < {MIN_FRAME}")
    body, (crc,) = f[:-CRC_LEN], struct.unpack("<H", f[-CRC_LEN:])
    actual = crc16_ccitt_false(body)
    if actual != crc:
        raise FrameError("crc", f"CRC 0x{crc:04x} != computed 0x{actual:04x}")
    version, msg_type, seq = struct.unpack_from("<BBH", body)
    payload = body[HEADER_LEN:]
    if version != PROTOCOL_VERSION:
        return Frame(version, seq, None, msg_type, payload)
    return Frame(version, seq, decode_payload(msg_type, payload), msg_type, payload)


# ---------------------------------------------------------------- encode


def encode_frame(message: Message, seq: int, version: int = PROTOCOL_VERSION) -> bytes:
    """Build the decoded frame bytes (header + payload + CRC) of ``message``.

    Raises:
        ValueError: payload longer than :data:`MAX_PAYLOAD`.
    """
    payload = message.payload()
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(
            f"{message.TYPE.name} payload of {len(payload)} bytes > {MAX_PAYLOAD} bytes"
        )
    body = struct.pack("<BBH", version, int(message.TYPE), seq & 0xFFFF) + payload
    return body + struct.pack("<H", crc16_ccitt_false(body))


def encode_wire(message: Message, seq: int, version: int = PROTOCOL_VERSION) -> bytes:
    """Build the on-the-wire bytes of ``message``: COBS(frame) followed by 0x00."""
    return cobs.encode(encode_frame(message, seq, version)) + b"\x00"
