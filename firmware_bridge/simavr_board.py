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

import select
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

from liquidnode.controller.errors import LiquidNodeError
from liquidnode.firmware_bridge.onboard_build import FIRMWARE_DIR

#: The harness binary that ``make simavr-harness`` builds.
HARNESS = FIRMWARE_DIR / "build" / "simavr_harness"
#: How long the harness may take to print its port line, s.
START_TIMEOUT_S = 20.0


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


class SimavrBoard:
    """The firmware ``elf`` running in simavr.

    Args:
        elf: the AVR image.
        args: extra harness options (default ``--no-plant``: the ADC inputs unconnected).

    Raises:
        LiquidNodeError: from :meth:`start` when the harness cannot be built or started.
    """

    def __init__(self, elf: str | Path, args: tuple[str, ...] = ("--no-plant",)) -> None:
        self.elf = Path(elf)
        self.args = args
        self.port = ""
        self.summary = ""
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> str:
        """Start the emulator; returns its pty path."""
        harness = build_harness()
        proc = subprocess.Popen(
            [str(harness), *self.args, str(self.elf)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._proc = proc
        assert proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if ready:
                line = proc.stdout.readline()
                if line.startswith("port: "):
                    self.port = line.split(":", 1)[1].strip()
                    return self.port
            if proc.poll() is not None:
                break
        self.close()
        raise LiquidNodeError(f"simavr harness did not start on {self.elf}: {self.summary}")

    def close(self) -> None:
        """Stop the emulator (SIGTERM, then SIGKILL after 5 s). Idempotent."""
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

    def __enter__(self) -> SimavrBoard:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
