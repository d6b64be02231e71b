"""EmulatorProcess: the start-wait, port parse, stop and summary that the boards share.

The emulator here is a Python child that prints its port line like the simavr harness does,
so the lifecycle is tested without an emulator installed.
"""

from __future__ import annotations

import sys

import pytest

from liquidnode.controller.errors import LiquidNodeError
from liquidnode.firmware_bridge.emulator_process import EmulatorProcess


class ScriptEmulator(EmulatorProcess):
    """A Python ``script`` in place of an emulator; its ``elf`` is only named in errors."""

    name = "script emulator"

    def __init__(self, script: str, port_on_stderr: bool = False) -> None:
        super().__init__("fake.elf")
        self.script = script
        self.port_on_stderr = port_on_stderr

    def command(self) -> list[str]:
        return [sys.executable, "-c", self.script]

    def port_from_line(self, line: str) -> str | None:
        return line.split(":", 1)[1].strip() if line.startswith("port: ") else None


SERVES = (
    "import sys, time\n"
    "print('port: /dev/pts/77', flush=True)\n"
    "print('first\\n\\nlast words  \\n', file=sys.stderr, flush=True)\n"
    "time.sleep(60)\n"
)


def test_start_returns_the_announced_port_and_close_keeps_the_last_stderr_line() -> None:
    with ScriptEmulator(SERVES) as emu:
        assert emu.port == "/dev/pts/77"
        assert emu.summary == ""
        proc = emu._proc
        assert proc is not None and proc.poll() is None
    assert proc.poll() is not None
    assert emu.summary == "last words  "
    emu.close()  # idempotent
    assert emu.summary == "last words  "


def test_the_port_line_is_read_from_stderr_only_when_the_board_says_so() -> None:
    script = "import sys, time\nprint('port: /dev/pts/5', file=sys.stderr, flush=True)\n"
    with ScriptEmulator(script + "time.sleep(60)\n", port_on_stderr=True) as emu:
        assert emu.port == "/dev/pts/5"
    with pytest.raises(LiquidNodeError, match=r"script emulator did not start on fake\.elf"):
        ScriptEmulator(script).start()


def test_an_emulator_that_exits_without_a_port_raises_with_its_last_stderr_line() -> None:
    emu = ScriptEmulator("import sys\nprint('no such elf', file=sys.stderr)\nsys.exit(3)\n")
    with pytest.raises(LiquidNodeError) as info:
        emu.start()
    assert str(info.value) == "script emulator did not start on fake.elf: no such elf"
    assert emu.port == ""
    assert emu._proc is None
