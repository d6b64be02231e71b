"""An emulated Arduino bootloader (Optiboot's STK500 v1 subset) on a pty, for flash tests.

:class:`Stk500Bootloader` opens a pseudo-terminal and answers what ``avrdude -c arduino``
sends: GET_SYNC, GET_PARAMETER, SET_DEVICE(_EXT), ENTER/LEAVE_PROGMODE, READ_SIGN (an
ATmega328P, 1E 95 0F), LOAD_ADDRESS (word address), PROG_PAGE and READ_PAGE (flash), and
UNIVERSAL (answers 0). ``flash`` holds what was written (32 KiB, erased = 0xFF), so a test
can compare it with the image avrdude was given.
"""

from __future__ import annotations

import os
import select
import threading
import tty

INSYNC, OK, NOSYNC, CRC_EOP = 0x14, 0x10, 0x15, 0x20
SIGNATURE = bytes((0x1E, 0x95, 0x0F))  #: ATmega328P
FLASH_BYTES = 32 * 1024


class Stk500Bootloader:
    """A bootloader that serves one pty until :meth:`close`; ``port`` is its path."""

    def __init__(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self.flash = bytearray(b"\xff" * FLASH_BYTES)
        self.commands: list[int] = []  #: command bytes received, in order
        self._buf = bytearray()
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _need(self, n: int) -> None:
        while len(self._buf) < n:
            ready, _, _ = select.select([self._master], [], [], 0.1)
            if self._stop:
                raise EOFError
            if ready:
                self._buf.extend(os.read(self._master, 4096))

    def _reply(self, *parts: bytes | int) -> None:
        out = bytearray([INSYNC])
        for p in parts:
            out.extend(p if isinstance(p, bytes) else bytes([p]))
        out.append(OK)
        os.write(self._master, bytes(out))

    def _serve(self) -> None:
        addr = 0
        try:
            while True:
                self._need(1)
                cmd = self._buf[0]
                if cmd == 0x45:  # SET_DEVICE_EXT: length byte counts itself
                    self._need(2)
                    n = self._buf[1]
                elif cmd == 0x64:  # PROG_PAGE: size (BE), memory type, data
                    self._need(3)
                    n = 3 + ((self._buf[1] << 8) | self._buf[2])
                else:
                    n = {0x41: 1, 0x42: 20, 0x55: 2, 0x56: 4, 0x74: 3}.get(cmd, 0)
                self._need(n + 2)
                args, eop = bytes(self._buf[1 : 1 + n]), self._buf[1 + n]
                del self._buf[: n + 2]
                self.commands.append(cmd)
                if eop != CRC_EOP:
                    os.write(self._master, bytes([NOSYNC]))
                elif cmd == 0x41:  # GET_PARAMETER: hardware 2, software 4.4 (Optiboot)
                    self._reply({0x80: 2, 0x81: 4, 0x82: 4}.get(args[0], 3))
                elif cmd == 0x75:
                    self._reply(SIGNATURE)
                elif cmd == 0x55:
                    addr = (args[0] | args[1] << 8) * 2
                    self._reply()
                elif cmd == 0x64:
                    size = (args[0] << 8) | args[1]
                    self.flash[addr : addr + size] = args[3 : 3 + size]
                    self._reply()
                elif cmd == 0x74:
                    size = (args[0] << 8) | args[1]
                    self._reply(bytes(self.flash[addr : addr + size]))
                elif cmd == 0x56:
                    self._reply(0)
                else:  # GET_SYNC, SET_DEVICE(_EXT), ENTER/LEAVE_PROGMODE
                    self._reply()
        except (EOFError, OSError):
            return

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        os.close(self._master)
        os.close(self._slave)
