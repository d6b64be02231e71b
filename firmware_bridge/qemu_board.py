"""An emulated Cortex-M4F board: the ``make cm4`` firmware in QEMU's mps2-an386 machine.

:class:`QemuBoard` starts ``qemu-system-arm -M mps2-an386`` on a ``fw_cm4.elf`` with its
UART0 on a pty (``port``) and ``-icount shift=0,sleep=on``: virtual time advances 1 ns per
instruction while the CPU runs and follows real time while it sleeps, so the firmware's
SysTick counts instructions (``firmware/hal_cm4.c``: one 25 MHz tick = 40 instructions) and
its control period is about real time. Leaving the ``with`` block (or :meth:`close`) stops
it. Needs ``qemu-system-arm`` (Debian: qemu-system-arm; scripts/install-system-deps.sh).
"""

from __future__ import annotations

import re
import shutil
import subprocess

from liquidnode.controller.errors import LiquidNodeError
from liquidnode.firmware_bridge.emulator_process import EmulatorProcess

#: The machine: ARM MPS2 with the AN386 (Cortex-M4) image.
MACHINE = "mps2-an386"


class QemuBoard(EmulatorProcess):
    """``elf`` running on QEMU's mps2-an386.

    Raises:
        LiquidNodeError: from :meth:`start` when qemu-system-arm is missing or does not start.
    """

    name = "qemu-system-arm"
    # the pty line comes on stdout or stderr, depending on QEMU's version and stdin
    port_on_stderr = True
    stdin = subprocess.DEVNULL

    def command(self) -> list[str]:
        """``qemu-system-arm`` on :data:`MACHINE` with UART0 on a pty and instruction counting."""
        qemu = shutil.which("qemu-system-arm")
        if qemu is None:
            raise LiquidNodeError(
                "qemu-system-arm not found "
                "(Debian: qemu-system-arm; scripts/install-system-deps.sh)"
            )
        return [qemu, "-M", MACHINE, "-nographic", "-monitor", "none", "-serial", "pty",
                "-icount", "shift=0,sleep=on", "-kernel", str(self.elf)]  # fmt: skip

    def port_from_line(self, line: str) -> str | None:
        """The pty of QEMU's ``char device redirected to /dev/pts/N`` line."""
        found = re.search(r"redirected to (/dev/\S+)", line)
        return found.group(1) if found else None
