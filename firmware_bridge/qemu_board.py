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
import select
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

from liquidnode.controller.errors import LiquidNodeError

#: How long QEMU may take to print its pty line, s.
START_TIMEOUT_S = 20.0
#: The machine: ARM MPS2 with the AN386 (Cortex-M4) image.
MACHINE = "mps2-an386"


class QemuBoard:
    """``elf`` running on QEMU's mps2-an386.

    Raises:
        LiquidNodeError: from :meth:`start` when qemu-system-arm is missing or does not start.
    """

    def __init__(self, elf: str | Path) -> None:
        self.elf = Path(elf)
        self.port = ""
        self.summary = ""
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> str:
        """Start QEMU; returns the pty of the board's UART0."""
        qemu = shutil.which("qemu-system-arm")
        if qemu is None:
            raise LiquidNodeError(
                "qemu-system-arm not found "
                "(Debian: qemu-system-arm; scripts/install-system-deps.sh)"
            )
        cmd = [qemu, "-M", MACHINE, "-nographic", "-monitor", "none", "-serial", "pty",
               "-icount", "shift=0,sleep=on", "-kernel", str(self.elf)]  # fmt: skip
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self._proc = proc
        assert proc.stdout is not None and proc.stderr is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            # the pty line comes on stdout or stderr, depending on QEMU's version and stdin
            ready, _, _ = select.select([proc.stdout, proc.stderr], [], [], 0.2)
            for stream in ready:
                found = re.search(r"redirected to (/dev/\S+)", stream.readline())
                if found:
                    self.port = found.group(1)
                    return self.port
            if proc.poll() is not None:
                break
        self.close()
        raise LiquidNodeError(f"qemu-system-arm did not start on {self.elf}: {self.summary}")

    def close(self) -> None:
        """Stop QEMU (SIGTERM, then SIGKILL after 5 s). Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
        try:
            _, err = proc.communicate(timeout=5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        lines = [line for line in (err or "").splitlines() if line.strip()]
        self.summary = lines[-1] if lines else ""

    def __enter__(self) -> QemuBoard:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
