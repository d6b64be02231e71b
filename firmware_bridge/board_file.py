"""Board files: one TOML file per board, read and checked into a typed
:class:`~liquidnode.firmware_bridge.board.Board`.

A board file says what the firmware runs on and what it announces in its handshake::

    [board]
    id = "avr-atmega328p ref-fw 0.1"   # IDENTITY device id, ASCII, <= 32 chars
    mcu = "atmega328p"                  # the only MCU the AVR HAL supports
    clock_hz = 16_000_000               # F_CPU; the HAL's timers assume 16 MHz
    baud = 115200                       # UART bit/s
    control_period_us = 10_000          # OBSERVATION period, µs
    watchdog_ms = 100                   # host COMMAND timeout (protocol watchdog), ms
    hw_watchdog_ms = 120                # MCU hardware watchdog, ms (15..2000, AVR steps)

    [estop]                   # optional: the device's own e-stop (latches, see PROTOCOL.md)
    pin = "D2"                # to ground, internal pull-up: pressed = low
    clear_pin = "D7"          # optional local clear button (to ground); without it only
                              # a power cycle clears the latch

    [i2c]                     # optional: TWI master on A4/A5
    clock_hz = 400_000
    init = [{ address = 0x68, register = 0x6B, value = 0x00 }]   # writes at start-up

    [[obs]]                   # observation channels, in vector order
    name = "adc_a0"           # ASCII, <= 32 chars, unique among the observations
    unit = "V"                # ASCII, <= 16 chars
    range = [0.0, 5.0]        # announced limits (informative for observations)
    peripheral = { kind = "adc", channel = 0 }
    scale = 0.0048828125      # value = raw * scale + offset (here 5 V / 1024 counts)

    [[act]]                   # action channels, in vector order
    name = "pwm_d6"
    unit = "duty"
    range = [0.0, 1.0]        # the device clamps every command to it
    safe = 0.0                # applied from reset on, on watchdog and e-stop
    peripheral = { kind = "pwm", pin = "D6" }   # range maps linearly to 0..100 % duty

Peripherals (fields beside ``kind``):

- ``adc`` (obs): ``channel`` 0..7; raw = counts 0..1023 (AVcc reference).
- ``pwm_readback`` (obs): ``of`` = an ``act`` channel of kind ``pwm``; the value is that
  channel's, read back from its 8-bit compare register (in the action's units).
- ``digital`` (obs): ``pin``, ``pull_up`` (false), ``active_low`` (false); raw = 0 or 1.
- ``encoder`` (obs): ``pin_a``, ``pin_b`` (pin-change interrupts, quadrature x4); raw =
  counts (int32).
- ``i2c`` (obs): ``address`` 0..127, ``register`` 0..255, ``bytes`` 1 or 2, ``signed``
  (true), ``byte_order`` ("big"); raw = the register's integer, NaN when the bus fails.
- ``pwm`` (act): ``pin`` ``D6`` (OC0A) or ``D5`` (OC0B), Timer0 phase-correct 490 Hz;
  duty = (value - low) / (high - low).
- ``digital`` (act): ``pin``; high when value > (low + high) / 2.

Pins are Arduino names (``D0``..``D13``, ``A0``..``A5``) or AVR names (``PD6``). D0/D1 (UART)
are reserved, A4/A5 too when ``[i2c]`` is present; a pin can be used once. Every error is a
:class:`BoardFileError` whose message names the file, the line and the field.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from typing import Any

from liquidnode.controller.errors import LiquidNodeError
from liquidnode.firmware_bridge.board import (
    HW_WATCHDOG_STEPS_MS,
    I2C_PINS,
    MAX_ACT,
    MAX_OBS,
    PWM_PINS,
    RESERVED_PINS,
    Board,
    BoardChannel,
    I2cInit,
    Peripheral,
    pin_name,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Folder of the board files shipped with liquidnode.
BOARDS_DIR = Path(__file__).resolve().parent / "boards"


class BoardFileError(LiquidNodeError):
    """A board file is unreadable or inconsistent; the message names file, line and field."""


def _line_index(text: str) -> dict[tuple[Any, ...], int]:
    """Map key paths (``("obs", 2, "range")``) to the line (1-based) that sets them."""
    lines: dict[tuple[Any, ...], int] = {}
    counts: dict[str, int] = {}
    table: tuple[Any, ...] = ()
    for no, raw in enumerate(text.splitlines(), start=1):
        s = raw.split("#", 1)[0].strip()
        if m := re.fullmatch(r"\[\[\s*([\w.-]+)\s*\]\]", s):
            name = m.group(1)
            counts[name] = counts.get(name, -1) + 1
            table = (*name.split("."), counts[name])
            lines[table] = no
        elif m := re.fullmatch(r"\[\s*([\w.-]+)\s*\]", s):
            parts = m.group(1).split(".")
            head = parts[0]
            table = (head, counts[head], *parts[1:]) if head in counts else tuple(parts)
            lines[table] = no
        elif m := re.match(r"([\w.-]+)\s*=", s):
            key = (*table, *m.group(1).split("."))
            lines[key] = no
    return lines


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               list: "an array"}  # fmt: skip


class _Reader:
    """Typed field access that raises BoardFileError naming file, line and field."""

    def __init__(self, path: Path, lines: dict[tuple[Any, ...], int]) -> None:
        self.path = path
        self.lines = lines

    def line(self, where: tuple[Any, ...]) -> int:
        for n in range(len(where), 0, -1):
            if where[:n] in self.lines:
                return self.lines[where[:n]]
        return 1

    def error(self, where: tuple[Any, ...], message: str) -> BoardFileError:
        name = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where).lstrip(".")
        return BoardFileError(f"{self.path}:{self.line(where)}: {name}: {message}")

    def get(
        self,
        table: dict[str, Any],
        where: tuple[Any, ...],
        key: str,
        kind: type,
        default: Any = ...,
    ) -> Any:
        at = (*where, key)
        if key not in table:
            if default is ...:
                raise self.error(at, f"missing ({_TYPE_NAMES[kind]})")
            return default
        value = table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(at, f"{value!r} is not {_TYPE_NAMES[kind]}")
        # past the check above, a float value means kind is float, a str value kind is str
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(at, f"{value!r} is not finite")
        if isinstance(value, str) and not value.isascii():
            raise self.error(at, f"{value!r} is not ASCII")
        return value

    def unknown(self, table: dict[str, Any], where: tuple[Any, ...], known: set[str]) -> None:
        for key in table:
            if key not in known:
                raise self.error(
                    (*where, key), f"unknown field (known: {', '.join(sorted(known))})"
                )


_PERIPHERALS: dict[tuple[str, str], dict[str, tuple[type, Any]]] = {
    ("obs", "adc"): {"channel": (int, ...)},
    ("obs", "pwm_readback"): {"of": (str, ...)},
    ("obs", "digital"): {"pin": (str, ...), "pull_up": (bool, False), "active_low": (bool, False)},
    ("obs", "encoder"): {"pin_a": (str, ...), "pin_b": (str, ...)},
    ("obs", "i2c"): {
        "address": (int, ...),
        "register": (int, ...),
        "bytes": (int, 2),
        "signed": (bool, True),
        "byte_order": (str, "big"),
    },
    ("act", "pwm"): {"pin": (str, ...)},
    ("act", "digital"): {"pin": (str, ...)},
}


def _peripheral(r: _Reader, raw: Any, where: tuple[Any, ...], kind: str) -> Peripheral:
    if not isinstance(raw, dict):
        raise r.error(where, 'must be a table, e.g. { kind = "adc", channel = 0 }')
    pkind = r.get(raw, where, "kind", str)
    spec = _PERIPHERALS.get((kind, pkind))
    if spec is None:
        kinds = sorted(k for c, k in _PERIPHERALS if c == kind)
        raise r.error(
            (*where, "kind"), f"{pkind!r} is not an {kind} peripheral ({', '.join(kinds)})"
        )
    r.unknown(raw, where, {"kind", *spec})
    values = {k: r.get(raw, where, k, t, d) for k, (t, d) in spec.items()}
    for key in ("pin", "pin_a", "pin_b"):
        if key in values:
            pin = pin_name(values[key])
            if pin is None:
                raise r.error((*where, key), f"{values[key]!r} is not a pin (D0..D13, A0..A5, PB0)")
            values[key] = pin
    if pkind == "adc" and not 0 <= values["channel"] <= 7:
        raise r.error((*where, "channel"), f"{values['channel']} is not an ADC channel 0..7")
    if pkind == "pwm" and values["pin"] not in PWM_PINS:
        raise r.error(
            (*where, "pin"),
            f"{values['pin']} has no free PWM: use D6 or D5 (Timer0; Timer1 is the clock, "
            "Timer2 the wake-up tick)",
        )
    if pkind == "i2c":
        if not 0 <= values["address"] <= 127:
            raise r.error((*where, "address"), f"{values['address']} is not a 7-bit address")
        if not 0 <= values["register"] <= 255:
            raise r.error((*where, "register"), f"{values['register']} is not 0..255")
        if values["bytes"] not in (1, 2):
            raise r.error((*where, "bytes"), f"{values['bytes']}: 1 or 2")
        if values["byte_order"] not in ("big", "little"):
            raise r.error((*where, "byte_order"), f"{values['byte_order']!r}: 'big' or 'little'")
    return Peripheral(pkind, values)


def _channel(r: _Reader, raw: Any, kind: str, index: int) -> BoardChannel:
    where = (kind, index)
    if not isinstance(raw, dict):
        raise r.error(where, "must be a table")
    known = {"name", "unit", "range", "peripheral", "scale", "offset"}
    if kind == "act":
        known.add("safe")
    r.unknown(raw, where, known)
    name = r.get(raw, where, "name", str)
    if not 0 < len(name) <= 32:
        raise r.error((*where, "name"), f"{name!r}: 1..32 characters")
    unit = r.get(raw, where, "unit", str)
    if len(unit) > 16:
        raise r.error((*where, "unit"), f"{unit!r}: at most 16 characters")
    rng = raw.get("range")
    if not (isinstance(rng, list) and len(rng) == 2):
        raise r.error((*where, "range"), f"{rng!r} is not [low, high]")
    low, high = (r.get({"range": v}, where, "range", float) for v in rng)
    if not low < high:
        raise r.error((*where, "range"), f"[{low}, {high}]: need low < high")
    safe = r.get(raw, where, "safe", float) if kind == "act" else 0.0
    if not low <= safe <= high:
        raise r.error((*where, "safe"), f"{safe} is outside the range [{low}, {high}]")
    periph = _peripheral(r, raw.get("peripheral"), (*where, "peripheral"), kind)
    scale = r.get(raw, where, "scale", float, 1.0)
    offset = r.get(raw, where, "offset", float, 0.0)
    if kind == "act" and ("scale" in raw or "offset" in raw):
        raise r.error((*where, "scale"), "actions map their range to the output; no scale/offset")
    return BoardChannel(
        kind, index, name, unit, low, high, safe, periph, scale, offset, r.line(where)
    )


def load_board(path: str | Path) -> Board:
    """Read and check a board file.

    Raises:
        BoardFileError: unreadable TOML, a missing/unknown/wrong field, a pin used twice or
            reserved, a PWM pin without a free timer, too many channels.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise BoardFileError(f"cannot read board file {path}: {exc.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BoardFileError(f"{path}: not valid TOML: {exc}") from None
    r = _Reader(path, _line_index(text))
    r.unknown(raw, (), {"board", "estop", "i2c", "obs", "act"})
    b = raw.get("board")
    if not isinstance(b, dict):
        raise r.error(("board",), "missing [board] table")
    r.unknown(b, ("board",), {"id", "mcu", "clock_hz", "baud", "control_period_us",
                              "watchdog_ms", "hw_watchdog_ms"})  # fmt: skip
    w = ("board",)
    device_id = r.get(b, w, "id", str)
    if not 0 < len(device_id) <= 32:
        raise r.error((*w, "id"), f"{device_id!r}: 1..32 characters")
    mcu = r.get(b, w, "mcu", str)
    if mcu != "atmega328p":
        raise r.error((*w, "mcu"), f"{mcu!r}: the AVR HAL supports 'atmega328p' only")
    clock_hz = r.get(b, w, "clock_hz", int)
    if clock_hz != 16_000_000:
        raise r.error((*w, "clock_hz"), f"{clock_hz}: the AVR HAL's timers need 16000000")
    baud = r.get(b, w, "baud", int)
    if not 1200 <= baud <= 1_000_000:
        raise r.error((*w, "baud"), f"{baud} is not 1200..1000000")
    period = r.get(b, w, "control_period_us", int)
    if not 1000 <= period <= 1_000_000:
        raise r.error((*w, "control_period_us"), f"{period} is not 1000..1000000 µs")
    wd = r.get(b, w, "watchdog_ms", int)
    if not 1 <= wd <= 65535 or wd * 1000 < 2 * period:
        raise r.error((*w, "watchdog_ms"), f"{wd}: 1..65535 and at least 2 control periods")
    hw = r.get(b, w, "hw_watchdog_ms", int, 120)
    if hw not in HW_WATCHDOG_STEPS_MS:
        steps = ", ".join(map(str, HW_WATCHDOG_STEPS_MS))
        raise r.error((*w, "hw_watchdog_ms"), f"{hw}: one of {steps}")
    estop_pin = clear_pin = None
    if "estop" in raw:
        e = raw["estop"]
        r.unknown(e, ("estop",), {"pin", "clear_pin"})
        estop_pin = pin_name(r.get(e, ("estop",), "pin", str)) or _bad_pin(r, e, "pin")
        if "clear_pin" in e:
            clear_pin = pin_name(r.get(e, ("estop",), "clear_pin", str)) or _bad_pin(
                r, e, "clear_pin"
            )
    i2c_hz, i2c_init = None, []
    if "i2c" in raw:
        i = raw["i2c"]
        r.unknown(i, ("i2c",), {"clock_hz", "init"})
        i2c_hz = r.get(i, ("i2c",), "clock_hz", int, 100_000)
        if not 10_000 <= i2c_hz <= 400_000:
            raise r.error(("i2c", "clock_hz"), f"{i2c_hz} is not 10000..400000")
        for k, item in enumerate(r.get(i, ("i2c",), "init", list, [])):
            at = ("i2c", "init")
            if not isinstance(item, dict):
                raise r.error(at, f"init[{k}] is not {{ address, register, value }}")
            vals = [r.get(item, at, f, int) for f in ("address", "register", "value")]
            if not (0 <= vals[0] <= 127 and 0 <= vals[1] <= 255 and 0 <= vals[2] <= 255):
                raise r.error(at, f"init[{k}] = {vals}: address 0..127, register/value 0..255")
            i2c_init.append(I2cInit(*vals))
    chans: dict[str, list[BoardChannel]] = {}
    for kind, limit in (("obs", MAX_OBS), ("act", MAX_ACT)):
        items = raw.get(kind, [])
        if not isinstance(items, list) or not items:
            raise r.error((kind,), f"need at least one [[{kind}]] channel")
        if len(items) > limit:
            raise r.error((kind, limit), f"{len(items)} channels; the firmware takes {limit}")
        chans[kind] = [_channel(r, c, kind, k) for k, c in enumerate(items)]
    obs, act = tuple(chans["obs"]), tuple(chans["act"])
    board = Board(path, device_id, mcu, clock_hz, baud, period, wd, hw, estop_pin, clear_pin,
                  i2c_hz, tuple(i2c_init), obs, act, r.lines)  # fmt: skip
    _check_wiring(r, board)
    return board


def _bad_pin(r: _Reader, table: dict[str, Any], key: str) -> str:
    raise r.error(("estop", key), f"{table[key]!r} is not a pin (D0..D13, A0..A5, PB0)")


def _check_wiring(r: _Reader, board: Board) -> None:
    """Names unique per kind, each pin used once, readbacks of existing PWM actions."""
    used: dict[str, str] = dict(RESERVED_PINS)
    if board.i2c_hz is not None:
        used.update(I2C_PINS)

    def claim(pin: str, who: str, where: tuple[Any, ...]) -> None:
        if pin in used:
            raise r.error(where, f"pin {pin} is already used by {used[pin]}")
        used[pin] = who

    if board.estop_pin:
        claim(board.estop_pin, "the e-stop", ("estop", "pin"))
    if board.clear_pin:
        claim(board.clear_pin, "the e-stop clear button", ("estop", "clear_pin"))
    names: set[tuple[str, str]] = set()
    acts = {c.name: c for c in board.act}
    for c in (*board.obs, *board.act):
        where = (c.kind, c.index, "peripheral")
        if (c.kind, c.name) in names:
            raise r.error((c.kind, c.index, "name"), f"{c.name!r} names another {c.kind} channel")
        names.add((c.kind, c.name))
        p = c.peripheral
        if p.kind == "adc":
            if p.fields["channel"] < 6:
                claim(f"PC{p.fields['channel']}", c.name, (*where, "channel"))
        elif p.kind == "encoder":
            claim(p.fields["pin_a"], c.name, (*where, "pin_a"))
            claim(p.fields["pin_b"], c.name, (*where, "pin_b"))
        elif p.kind == "i2c":
            if board.i2c_hz is None:
                raise r.error(where, "an i2c channel needs an [i2c] table")
        elif p.kind == "pwm_readback":
            target = acts.get(p.fields["of"])
            if target is None or target.peripheral.kind != "pwm":
                raise r.error((*where, "of"), f"{p.fields['of']!r} is not a pwm action channel")
        elif "pin" in p.fields:
            claim(p.fields["pin"], c.name, (*where, "pin"))
