"""The HELLO -> IDENTITY + CHANNEL handshake and the schema check, host side.

:func:`handshake` sends HELLO (repeated every 0.25 s, since the device may have missed it)
and collects the device's IDENTITY, its n_obs + n_act CHANNEL frames and the STATUS that
ends the handshake (state and latched fault: a latched e-stop, a hardware-watchdog restart),
ignoring the OBSERVATIONs it streams meanwhile. It refuses an incompatible protocol version and a
malformed schema with a :class:`~controller.errors.LinkError` naming the offending value, and
builds the :class:`~controller.plant.PlantSpec` the loop and the safety layer use.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from liquidnode.controller.errors import LinkError
from liquidnode.controller.plant import PlantSpec
from liquidnode.firmware_bridge.link import SerialLink
from liquidnode.firmware_bridge.protocol import (
    PROTOCOL_VERSION,
    Channel,
    ChannelKind,
    Hello,
    Identity,
    PolicyInfo,
    Status,
)

#: HELLO is repeated at this interval until IDENTITY arrives, s.
HELLO_RETRY_S = 0.25
#: Control periods a host accepts, µs (10 kHz .. 0.5 Hz): the link-loss timeout is 5 periods,
#: so a longer period would leave a lost robot unnoticed for more than 10 s.
CONTROL_PERIOD_US_RANGE = (100, 2_000_000)
#: Watchdog timeouts a host accepts, ms: a device that would stay on its last command for
#: longer than 10 s without a host is refused.
WATCHDOG_MS_RANGE = (1, 10_000)


@dataclass(frozen=True)
class DeviceInfo:
    """What the handshake learned: the IDENTITY, the CHANNEL frames and the derived spec."""

    identity: Identity
    channels: tuple[Channel, ...]
    spec: PlantSpec
    status: Status | None = None  #: the STATUS that ends the handshake (None: none came)
    #: the POLICY frame of a device that runs its own policy (None: an I/O device)
    policy: PolicyInfo | None = None


def _version_error(port: str, version: int) -> LinkError:
    return LinkError(
        f"device on {port!r} speaks protocol version {version}; this host speaks "
        f"version {PROTOCOL_VERSION} (update the firmware or liquidnode)"
    )


def handshake(link: SerialLink, timeout_s: float = 2.0) -> DeviceInfo:
    """Run the handshake on an open link.

    Raises:
        LinkError: no IDENTITY/CHANNELs within ``timeout_s``, another protocol version, or
            an inconsistent schema.
    """
    deadline = time.monotonic() + timeout_s
    identity: Identity | None = None
    channels: dict[tuple[int, int], Channel] = {}
    status: Status | None = None
    policy: PolicyInfo | None = None
    status_until: float | None = None  # after the channels: wait this long for STATUS
    next_hello = 0.0
    while True:
        now = time.monotonic()
        complete = identity is not None and len(channels) == identity.n_obs + identity.n_act
        if complete and identity is not None:
            if status is not None:
                break
            if status_until is None:
                status_until = now + HELLO_RETRY_S
            elif now > status_until:
                break
        elif now > deadline:
            got = "no IDENTITY" if identity is None else f"{len(channels)} CHANNEL frames"
            raise LinkError(
                f"no handshake answer from {link.port!r} within {timeout_s:.1f} s ({got}); "
                f"is a liquidnode protocol v{PROTOCOL_VERSION} device on that port?"
            )
        if not complete and now >= next_hello:
            link.send(Hello(PROTOCOL_VERSION))
            next_hello = now + HELLO_RETRY_S
        item = link.recv(min(0.05, max(0.0, (status_until or deadline) - now)))
        if item is None:
            continue
        frame = item.frame
        if frame.message is None:
            raise _version_error(link.port, frame.version)
        msg = frame.message
        if isinstance(msg, Identity):
            if msg.protocol_version != PROTOCOL_VERSION:
                raise _version_error(link.port, msg.protocol_version)
            identity, channels, status, status_until, policy = msg, {}, None, None, None
        elif isinstance(msg, Channel) and identity is not None:
            channels[(msg.kind, msg.index)] = msg
        elif isinstance(msg, PolicyInfo) and identity is not None:
            policy = msg
        elif isinstance(msg, Status) and status_until is not None:
            status = msg
    spec = build_spec(identity, channels)
    return DeviceInfo(identity, tuple(channels.values()), spec, status, policy)


def build_spec(identity: Identity, channels: dict[tuple[int, int], Channel]) -> PlantSpec:
    """Check the CHANNEL set against IDENTITY and build the plant spec.

    Raises:
        LinkError: missing channel, limits reversed or not finite, safe action outside them,
            a control period outside :data:`CONTROL_PERIOD_US_RANGE` or a watchdog timeout
            outside :data:`WATCHDOG_MS_RANGE`.
    """
    name = identity.device_id
    obs: list[Channel] = []
    act: list[Channel] = []
    for kind, n, out in (
        (ChannelKind.OBSERVATION, identity.n_obs, obs),
        (ChannelKind.ACTION, identity.n_act, act),
    ):
        for i in range(n):
            ch = channels.get((int(kind), i))
            if ch is None:
                raise LinkError(f"device {name!r} announced no CHANNEL for {kind.name} {i}")
            out.append(ch)
    lo, hi = CONTROL_PERIOD_US_RANGE
    if not lo <= identity.control_period_us <= hi:
        raise LinkError(
            f"device {name!r} announced a control period of {identity.control_period_us} µs; "
            f"this host accepts {lo}..{hi} µs"
        )
    lo, hi = WATCHDOG_MS_RANGE
    if not lo <= identity.watchdog_timeout_ms <= hi:
        raise LinkError(
            f"device {name!r} announced a watchdog timeout of {identity.watchdog_timeout_ms} ms; "
            f"this host accepts {lo}..{hi} ms"
        )
    low = np.array([c.low for c in act], dtype=np.float64)
    high = np.array([c.high for c in act], dtype=np.float64)
    safe = np.array([c.safe for c in act], dtype=np.float64)
    for c in act:
        if not (math.isfinite(c.low) and math.isfinite(c.high) and c.low <= c.high):
            raise LinkError(
                f"device {name!r} action channel {c.index} ({c.name}) has limits "
                f"[{c.low}, {c.high}]; need finite low <= high"
            )
        if not c.low <= c.safe <= c.high:
            raise LinkError(
                f"device {name!r} action channel {c.index} ({c.name}) safe value {c.safe} "
                f"is outside [{c.low}, {c.high}]"
            )
    return PlantSpec(
        name=name,
        obs_names=tuple(c.name for c in obs),
        obs_units=tuple(c.unit for c in obs),
        act_names=tuple(c.name for c in act),
        act_units=tuple(c.unit for c in act),
        action_low=low,
        action_high=high,
        safe_action=safe,
        control_period_s=identity.control_period_us / 1e6,
        info={
            "device_id": name,
            "protocol_version": identity.protocol_version,
            "watchdog_timeout_ms": identity.watchdog_timeout_ms,
            "control_period_us": identity.control_period_us,
        },
    )
