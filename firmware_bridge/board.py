"""A board: what the firmware runs on, how its channels are wired and what it announces.

:class:`Board` holds a checked board file: the MCU and its clocks, the watchdogs, the e-stop
pins, the I2C bus and the observation and action channels (:class:`BoardChannel`), each wired
to a :class:`Peripheral`. :mod:`liquidnode.firmware_bridge.board_file` reads a board file into
one and documents the file format and the peripheral kinds. Pins are AVR names (``"PD6"``);
:func:`pin_name` turns Arduino names (``"D6"``, ``"A0"``) into them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from liquidnode.controller.plant import PlantSpec

#: Channel limits of the reference firmware (device.h: DEVICE_MAX_OBS / DEVICE_MAX_ACT).
MAX_OBS, MAX_ACT = 16, 8
#: Hardware watchdog periods the ATmega328P offers, ms.
HW_WATCHDOG_STEPS_MS = (15, 30, 60, 120, 250, 500, 1000, 2000)
#: Timer0 PWM outputs: pin -> compare register.
PWM_PINS = {"PD6": "OCR0A", "PD5": "OCR0B"}
#: Pins the firmware itself uses (UART).
RESERVED_PINS = {"PD0": "UART RX", "PD1": "UART TX"}
#: Pins the TWI bus takes when the board has an ``[i2c]`` table.
I2C_PINS = {"PC4": "I2C SDA", "PC5": "I2C SCL"}

_ARDUINO = {f"D{i}": f"PD{i}" for i in range(8)}
_ARDUINO.update({f"D{i}": f"PB{i - 8}" for i in range(8, 14)})
_ARDUINO.update({f"A{i}": f"PC{i}" for i in range(6)})


@dataclass(frozen=True)
class Peripheral:
    """What a channel is wired to: ``kind`` and its fields (the table in :mod:`.board_file`)."""

    kind: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class BoardChannel:
    """One observation or action channel.

    Attributes:
        kind: ``"obs"`` or ``"act"``.
        index: position in its vector.
        name, unit: ASCII, as announced in CHANNEL.
        low, high: limits, channel units (actions are clamped to them on the device).
        safe: the safe value (actions), 0 for observations.
        peripheral: the wiring.
        scale, offset: value = raw * scale + offset (observations of kind adc, digital,
            encoder, i2c).
        line: line of the channel's table in the file.
    """

    kind: str
    index: int
    name: str
    unit: str
    low: float
    high: float
    safe: float
    peripheral: Peripheral
    scale: float
    offset: float
    line: int


@dataclass(frozen=True)
class I2cInit:
    """One register write at start-up: ``address`` (7 bit), ``register``, ``value``."""

    address: int
    register: int
    value: int


@dataclass(frozen=True)
class Board:
    """A checked board file. Times in µs/ms as named; ``clock_hz`` and ``baud`` in Hz/bit/s."""

    path: Path
    device_id: str
    mcu: str
    clock_hz: int
    baud: int
    control_period_us: int
    watchdog_ms: int
    hw_watchdog_ms: int
    estop_pin: str | None
    clear_pin: str | None
    i2c_hz: int | None
    i2c_init: tuple[I2cInit, ...]
    obs: tuple[BoardChannel, ...]
    act: tuple[BoardChannel, ...]
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict, repr=False, compare=False)

    def schema(self) -> dict[str, Any]:
        """The handshake this board announces (IDENTITY + CHANNEL frames, limits as f32)."""
        f32 = lambda x: float(np.float32(x))  # noqa: E731
        return {
            "protocol_version": 1,
            "device_id": self.device_id,
            "n_obs": len(self.obs),
            "n_act": len(self.act),
            "control_period_us": self.control_period_us,
            "watchdog_timeout_ms": self.watchdog_ms,
            "channels": [
                {
                    "kind": c.kind,
                    "index": c.index,
                    "name": c.name,
                    "unit": c.unit,
                    "low": f32(c.low),
                    "high": f32(c.high),
                    "safe": f32(c.safe) if c.kind == "act" else 0.0,
                }
                for c in (*self.obs, *self.act)
            ],
        }

    def plant_spec(self) -> PlantSpec:
        """The :class:`PlantSpec` a host builds from this board's handshake (what ``deploy``
        checks a policy against)."""
        from liquidnode.firmware_bridge.handshake import build_spec
        from liquidnode.firmware_bridge.protocol import Channel, Identity

        s = self.schema()
        identity = Identity(1, s["n_obs"], s["n_act"], s["control_period_us"],
                            s["watchdog_timeout_ms"], s["device_id"])  # fmt: skip
        channels = {
            (int(c["kind"] == "act"), c["index"]): Channel(
                int(c["kind"] == "act"),
                c["index"],
                c["low"],
                c["high"],
                c["safe"],
                c["name"],
                c["unit"],
            )
            for c in s["channels"]
        }
        return build_spec(identity, channels)


def pin_name(text: str) -> str | None:
    """``"D6"``/``"A0"``/``"PD6"`` -> the AVR name (``"PD6"``), or None if not a pin."""
    t = text.strip().upper()
    if t in _ARDUINO:
        return _ARDUINO[t]
    if re.fullmatch(r"P[BCD][0-7]", t) and not (t[1] == "C" and t[2] in "67"):
        return t
    return None
