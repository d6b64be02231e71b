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


# stderr first: it is in the pipe before the port line, so close always finds it
SERVES = (
    "import sys, time\n"
    "print('first\\n\\nlast words  \\n', file=sys.stderr, flush=True)\n"
    "print('port: /dev/pts/77', flush=True)\n"
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


def test_a_port_line_in_the_same_write_as_earlier_lines_is_found() -> None:
    # One write puts a banner, a blank line and the port line in the pipe together, then the
    # emulator says nothing more: the port must come from what was already read.
    one_write = (
        "import os, sys, time\n"
        "os.write(1, b'simulator 1.0\\n\\nloading fake.elf\\nport: /dev/pts/9\\n')\n"
        "time.sleep(60)\n"
    )
    with ScriptEmulator(one_write) as emu:
        assert emu.port == "/dev/pts/9"
        proc = emu._proc
    assert proc is not None and proc.poll() is not None


def test_stderr_read_while_starting_still_gives_the_summary() -> None:
    # The port line and later stderr lines come in one write on stderr: what start read ahead
    # counts for the summary that close keeps.
    script = (
        "import os, time\n"
        "os.write(2, b'booting\\nport: /dev/pts/4\\nready\\nhalf a li')\n"
        "time.sleep(60)\n"
    )
    with ScriptEmulator(script, port_on_stderr=True) as emu:
        assert emu.port == "/dev/pts/4"
    assert emu.summary == "half a li"
