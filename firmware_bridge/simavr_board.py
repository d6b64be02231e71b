"""An emulated ATmega328P board: the AVR firmware in simavr with its UART on a pty.

:class:`SimavrBoard` builds ``firmware/simavr_harness.c`` when needed (``make
simavr-harness``; libsimavr-dev, libelf-dev), starts it on an ELF and gives the pty it
bridges the emulated USART0 to (``port``), so that a host speaks to it as to a real Uno. The
emulator runs at real time (paced on the wall clock, cycle-exact inside); its ADC inputs are
left unconnected (``--no-plant``) unless told otherwise. Leaving the ``with`` block (or
:meth:`close`) stops it with SIGTERM; :attr:`summary` is the harness's last stderr line
(emulated and wall time, lag, bytes).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from liquidnode.controller.errors import LiquidNodeError
from liquidnode.firmware_bridge.emulator_process import EmulatorProcess
from liquidnode.firmware_bridge.onboard_build import FIRMWARE_DIR

#: The harness binary that ``make simavr-harness`` builds.
HARNESS = FIRMWARE_DIR / "build" / "simavr_harness"


def build_harness() -> Path:
    """Build the simavr harness if it is missing; returns its path.

    Raises:
        LiquidNodeError: make or the simavr headers are missing, or the build failed.
    """
    if HARNESS.exists():
        return HARNESS
    if not shutil.which("make"):
        raise LiquidNodeError("make not found (scripts/install-system-deps.sh)")
    proc = subprocess.run(
        ["make", "--no-print-directory", "-C", str(FIRMWARE_DIR), "simavr-harness"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not HARNESS.exists():
        raise LiquidNodeError(
            "cannot build the simavr harness (needs libsimavr-dev, libelf-dev; "
            f"scripts/install-system-deps.sh):\n{proc.stdout}{proc.stderr}".rstrip()
        )
    return HARNESS


class SimavrBoard(EmulatorProcess):
    """The firmware ``elf`` running in simavr.

    Args:
        elf: the AVR image.
        args: extra harness options (default ``--no-plant``: the ADC inputs unconnected).

    Raises:
        LiquidNodeError: from :meth:`start` when the harness cannot be built or started.
    """

    name = "simavr harness"

    def __init__(self, elf: str | Path, args: tuple[str, ...] = ("--no-plant",)) -> None:
        super().__init__(elf)
        self.args = args

    def command(self) -> list[str]:
        """The harness (built by :func:`build_harness`) with :attr:`args` on :attr:`elf`."""
        return [str(build_harness()), *self.args, str(self.elf)]

    def port_from_line(self, line: str) -> str | None:
        """The pty of the harness's ``port: /dev/pts/N`` line."""
        return line.split(":", 1)[1].strip() if line.startswith("port: ") else None
