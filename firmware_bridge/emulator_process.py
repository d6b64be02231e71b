"""An emulator child process that announces the pty of the board it emulates.

:class:`EmulatorProcess` is what :class:`~liquidnode.firmware_bridge.qemu_board.QemuBoard`
and :class:`~liquidnode.firmware_bridge.simavr_board.SimavrBoard` share: start the emulator,
read its output lines until one names the pty (``port``), stop it with SIGTERM (SIGKILL after
5 s) and keep its last non-blank stderr line as :attr:`~EmulatorProcess.summary`. It is a
context manager: entering starts it, leaving stops it. A subclass gives the command line
(:meth:`~EmulatorProcess.command`) and the parser of the port line
(:meth:`~EmulatorProcess.port_from_line`).
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from liquidnode.controller.errors import LiquidNodeError

#: How long the emulator may take to print its port line, s.
START_TIMEOUT_S = 20.0
#: How long :meth:`EmulatorProcess.close` waits after SIGTERM before SIGKILL, s.
STOP_TIMEOUT_S = 5.0
#: The most bytes one read of the emulator's output takes.
_CHUNK_BYTES = 65536

_E = TypeVar("_E", bound="EmulatorProcess")


class EmulatorProcess:
    """An emulator running ``elf`` whose serial port is a pty.

    Attributes:
        elf: the firmware image the emulator runs.
        port: the pty path, set by :meth:`start` ("" before).
        summary: the emulator's last non-blank stderr line, set by :meth:`close` ("" before).

    Raises:
        LiquidNodeError: from :meth:`start` when the emulator exits or prints no port line
            within :data:`START_TIMEOUT_S`.
    """

    #: The emulator's name in error messages.
    name = "emulator"
    #: Whether the port line may come on stderr as well as stdout.
    port_on_stderr = False
    #: The child's stdin: ``None`` inherits this process's, ``subprocess.DEVNULL`` closes it.
    stdin: int | None = None

    def __init__(self, elf: str | Path) -> None:
        self.elf = Path(elf)
        self.port = ""
        self.summary = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr_read = b""  # stderr that start read while waiting for the port line

    def command(self) -> list[str]:
        """The emulator's command line (program first).

        Raises:
            LiquidNodeError: the emulator is not installed or cannot be built.
        """
        raise NotImplementedError

    def port_from_line(self, line: str) -> str | None:
        """The pty path that ``line`` (one output line) announces, or ``None``."""
        raise NotImplementedError

    def start(self) -> str:
        """Start the emulator; returns its pty path.

        The output is read in raw chunks as it arrives and split into lines here, so a port
        line that comes in the same write as earlier lines is seen at once.

        Raises:
            LiquidNodeError: from :meth:`command`, or the emulator did not announce its port.
        """
        proc = subprocess.Popen(
            self.command(),
            stdin=self.stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._proc = proc
        self._stderr_read = b""
        assert proc.stdout is not None and proc.stderr is not None
        err_fd = proc.stderr.fileno()
        # bytes read from each watched pipe and not yet ended by a newline
        partial = {proc.stdout.fileno(): b""}
        if self.port_on_stderr:
            partial[err_fd] = b""
        deadline = time.monotonic() + START_TIMEOUT_S
        while partial and time.monotonic() < deadline:
            ready, _, _ = select.select(list(partial), [], [], 0.2)
            for fd in ready:
                chunk = os.read(fd, _CHUNK_BYTES)
                if fd == err_fd:
                    self._stderr_read += chunk
                if chunk:
                    *lines, partial[fd] = (partial[fd] + chunk).split(b"\n")
                else:  # end of file: what is left is the last line
                    rest = partial.pop(fd)
                    lines = [rest] if rest else []
                for line in lines:
                    port = self.port_from_line(line.decode(errors="replace") + "\n")
                    if port:
                        self.port = port
                        return self.port
            if not ready and proc.poll() is not None:
                break  # exited and everything it wrote has been read
        self.close()
        raise LiquidNodeError(f"{self.name} did not start on {self.elf}: {self.summary}")

    def close(self) -> None:
        """Stop the emulator (SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT_S`). Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
        try:
            _, err = proc.communicate(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        text = (self._stderr_read + (err or b"")).decode(errors="replace")
        self._stderr_read = b""
        lines = [line for line in text.splitlines() if line.strip()]
        self.summary = lines[-1] if lines else ""

    def __enter__(self: _E) -> _E:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
