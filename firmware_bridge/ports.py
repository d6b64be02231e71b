"""Serial ports on this machine, with a guess of the board behind each, and port kinds.

:func:`list_ports` asks pyserial (``serial.tools.list_ports``) for the serial ports and
guesses the board from the USB vendor/product id (:data:`KNOWN_USB`). :func:`is_virtual_port`
tells a pty or a pyserial URL (``socket://``, ``loop://``) from a real port: a real USB port
of an Uno-class board resets the MCU when it is opened (DTR pulses the reset pin), and the
bootloader then listens for about a second before the firmware starts, so the host waits
(:data:`BOOT_WAIT_S`) before its first HELLO.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: Seconds to wait after opening a real port before the handshake: an Uno's auto-reset
#: plus Optiboot's wait for an upload (about 1 s) plus the firmware's start.
BOOT_WAIT_S = 2.0

#: (USB vendor id, product id) -> what is usually behind it.
KNOWN_USB: dict[tuple[int, int], str] = {
    (0x2341, 0x0043): "Arduino Uno R3 (ATmega16U2 USB)",
    (0x2341, 0x0001): "Arduino Uno (ATmega8U2 USB)",
    (0x2341, 0x0243): "Arduino Uno R3 (ATmega16U2 USB)",
    (0x2A03, 0x0043): "Arduino Uno (arduino.org)",
    (0x2341, 0x0010): "Arduino Mega 2560",
    (0x2341, 0x0042): "Arduino Mega 2560 R3",
    (0x2341, 0x8036): "Arduino Leonardo (no auto-reset firmware support)",
    (0x2341, 0x0058): "Arduino Nano Every (ATmega4809, not supported by the AVR HAL)",
    (0x1A86, 0x7523): "CH340 USB serial: Uno/Nano clone",
    (0x1A86, 0x55D4): "CH9102 USB serial: Uno/Nano clone",
    (0x0403, 0x6001): "FTDI FT232R USB serial: Nano, Duemilanove, FTDI cable",
    (0x0403, 0x6015): "FTDI FT231X USB serial",
    (0x10C4, 0xEA60): "CP210x USB serial: clone or ESP32 board",
    (0x067B, 0x2303): "Prolific PL2303 USB serial adapter",
}


@dataclass(frozen=True)
class PortInfo:
    """One serial port.

    Attributes:
        device: the path to pass to ``deploy --port`` (``/dev/ttyACM0``, ``COM3``).
        description: pyserial's description of it.
        vid, pid: USB vendor and product id (None for a non-USB port).
        serial_number: the USB serial number, if any.
        board: the guess from :data:`KNOWN_USB` (None when unknown).
    """

    device: str
    description: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    board: str | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; ``usb`` is ``"vvvv:pppp"`` in hex or None."""
        out = asdict(self)
        out["usb"] = f"{self.vid:04x}:{self.pid:04x}" if self.vid is not None else None
        return out


def guess_board(vid: int | None, pid: int | None) -> str | None:
    """What is probably behind USB id ``vid:pid`` (None when unknown)."""
    if vid is None or pid is None:
        return None
    return KNOWN_USB.get((vid, pid))


def list_ports(include_non_usb: bool = False) -> list[PortInfo]:
    """The serial ports pyserial finds, USB ones first (sorted by device path).

    Args:
        include_non_usb: also list ports without a USB id (on-board UARTs such as
            ``/dev/ttyS0``, which are rarely a microcontroller).
    """
    from serial.tools import list_ports as lp

    out = []
    for p in lp.comports():
        if p.vid is None and not include_non_usb:
            continue
        out.append(
            PortInfo(
                device=p.device,
                description=p.description or "",
                vid=p.vid,
                pid=p.pid,
                serial_number=p.serial_number,
                board=guess_board(p.vid, p.pid),
            )
        )
    return sorted(out, key=lambda q: (q.vid is None, q.device))


def is_virtual_port(port: str) -> bool:
    """True for a pty (``/dev/pts/N``, ``/dev/ptmx``-style) or a pyserial URL (``x://``):
    nothing resets when it opens, so no bootloader wait is needed."""
    return "://" in port or port.startswith(("/dev/pts/", "/dev/pty", "/dev/tty.pty"))
