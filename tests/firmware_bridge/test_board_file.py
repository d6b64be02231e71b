"""Board files: loading and checking (errors name file, line and field), code generation,
the generated demo board against the hand-written one in simavr, and ``liquidnode board``."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from liquidnode.cli import main
from liquidnode.firmware_bridge.board_codegen import cfloat, generate, make_args
from liquidnode.firmware_bridge.board_file import BOARDS_DIR, BoardFileError, load_board
from tests.firmware_bridge.firmware_session import (
    BUILD_DIR,
    FIRMWARE_DIR,
    DeviceBehaviour,
    DeviceSession,
    build_firmware,
    require_simavr,
    require_tools,
)

UNO = BOARDS_DIR / "uno_demo.toml"
BALANCER = BOARDS_DIR / "balancer.toml"
HARNESS = BUILD_DIR / "simavr_harness"


def test_shipped_boards_load() -> None:
    uno = load_board(UNO)
    assert [c.name for c in uno.obs] == ["adc_a0", "adc_a1", "pwm_d6_rb", "motor_d5_rb"]
    assert [(c.name, c.low, c.high, c.safe) for c in uno.act] == [
        ("pwm_d6", 0.0, 1.0, 0.0),
        ("motor_d5", -1.0, 1.0, 0.0),
    ]
    assert (uno.control_period_us, uno.watchdog_ms, uno.estop_pin) == (10_000, 100, "PD2")
    bal = load_board(BALANCER)
    kinds = [c.peripheral.kind for c in bal.obs]
    assert kinds == ["i2c", "i2c", "i2c", "encoder", "encoder", "adc"]
    assert bal.clear_pin == "PD7" and len(bal.i2c_init) == 3


GOOD = UNO.read_text()


def _bad(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(BoardFileError) as exc:
        load_board(path)
    return str(exc.value)


def _line_of(text: str, needle: str, nth: int = 0) -> int:
    return [i for i, ln in enumerate(text.splitlines(), 1) if needle in ln][nth]


@pytest.mark.parametrize(
    ("old", "new", "field", "needle", "nth", "says"),
    [
        ('pin = "D6"', 'pin = "D9"', "act[0].peripheral.pin", 'pin = "D9"', 0, "no free PWM"),
        ("safe = 0.0", "safe = 2.0", "act[0].safe", "safe = 2.0", 0, "outside the range"),
        ('unit = "V"', "unit = 5", "obs[0].unit", "unit = 5", 0, "not a string"),
        (
            "control_period_us = 10_000",
            "control_period_us = 10",
            "board.control_period_us",
            "control_period_us",
            0,
            "1000..1000000",
        ),
        (
            "hw_watchdog_ms = 120",
            "hw_watchdog_ms = 100",
            "board.hw_watchdog_ms",
            "hw_watchdog_ms",
            0,
            "one of 15",
        ),
        ('name = "adc_a1"', 'name = "adc_a0"', "obs[1].name", 'name = "adc_a0"', 1, "another obs"),
        ('pin = "D2"', 'pin = "D5"', "act[1].peripheral.pin", 'pin = "D5"', 1, "already used"),
        (
            'kind = "adc", channel = 1',
            'kind = "adcx", channel = 1',
            "obs[1].peripheral.kind",
            "adcx",
            0,
            "not an obs peripheral",
        ),
        ('of = "motor_d5"', 'of = "motor"', "obs[3].peripheral.of", 'of = "motor"', 0, "not a pwm"),
        ('mcu = "atmega328p"', 'mcu = "atmega2560"', "board.mcu", "atmega2560", 0, "only"),
        ("scale = 0.0048828125  ", "scales = 1.0  ", "obs[0].scales", "scales", 0, "unknown"),
    ],
)
def test_errors_name_the_field_and_its_line(
    tmp_path: Path, old: str, new: str, field: str, needle: str, nth: int, says: str
) -> None:
    assert old in GOOD, old
    text = GOOD.replace(old, new, 1)
    message = _bad(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'bad.toml'}:{_line_of(text, needle, nth)}: {field}:")
    assert says in message


def test_missing_table_and_bad_toml(tmp_path: Path) -> None:
    assert "missing [board] table" in _bad(tmp_path, "[[obs]]\nname = 'x'\n")
    assert "not valid TOML" in _bad(tmp_path, "[board\n")
    no_act = GOOD[: GOOD.index("[[act]]")]
    assert "act: need at least one [[act]] channel" in _bad(tmp_path, no_act)
    i2c = GOOD.replace(
        'peripheral = { kind = "adc", channel = 1 }',
        'peripheral = { kind = "i2c", address = 0x68, register = 0x3B }',
    )
    assert "obs[1].peripheral: an i2c channel needs an [i2c] table" in _bad(tmp_path, i2c)


def test_cfloat_literals_are_exact_float32() -> None:
    assert cfloat(5.0) == "5.0f" and cfloat(-1.0) == "-1.0f"
    assert cfloat(0.1) == f"{0.10000000149011612!r}f"  # the float32 nearest 0.1, exactly


def test_generated_tables_and_static_checks(tmp_path: Path) -> None:
    files = generate(load_board(BALANCER), tmp_path)
    assert [f.name for f in files] == ["board.h", "board.c", "board_io_avr.c"]
    h = (tmp_path / "board.h").read_text()
    assert "#define BOARD_N_OBS 6u" in h and "DEVICE_MAX_OBS) ? 1 : -1]" in h
    c = (tmp_path / "board.c").read_text()
    assert '{"motor_left", "1", -1.0f, 1.0f, 0.0f},' in c
    io = (tmp_path / "board_io_avr.c").read_text()
    assert "ISR(PCINT1_vect)" in io and "ISR(PCINT2_vect)" in io
    assert "i2c_write_reg(104, 107, 0);" in io


# ---------------------------------------------------------------- builds


@pytest.fixture(scope="module")
def generated_uno(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """uno_demo.toml generated and built for the AVR; also the harness and today's build."""
    require_tools("make", "cc", "avr-gcc", "avr-objcopy", "avr-size")
    require_simavr()
    build_firmware("avr", "simavr-harness")
    out = tmp_path_factory.mktemp("uno_gen")
    board = load_board(UNO)
    generate(board, out)
    build_firmware("avr", *make_args(board, out))
    return out / "fw_avr.elf"


def test_the_balancer_builds_for_the_atmega328p(tmp_path: Path) -> None:
    require_tools("make", "avr-gcc", "avr-objcopy", "avr-size")
    board = load_board(BALANCER)
    generate(board, tmp_path)
    out = build_firmware("avr", *make_args(board, tmp_path))
    program = int(re.search(r"Program:\s+(\d+) bytes", out).group(1))
    data = int(re.search(r"Data:\s+(\d+) bytes", out).group(1))
    assert (tmp_path / "fw_avr.hex").stat().st_size > 0
    assert program <= 32 * 1024 - 512 and data <= 2048 - 512, (program, data)


def _announced(elf: Path) -> dict:
    session = DeviceSession([str(HARNESS), str(elf)])
    try:
        identity, channels = session.handshake()
    finally:
        session.close()
    return {
        "protocol_version": identity.protocol_version,
        "device_id": identity.device_id,
        "n_obs": identity.n_obs,
        "n_act": identity.n_act,
        "control_period_us": identity.control_period_us,
        "watchdog_timeout_ms": identity.watchdog_timeout_ms,
        "channels": [
            {
                "kind": "obs" if c.kind == 0 else "act",
                "index": c.index,
                "name": c.name,
                "unit": c.unit,
                "low": c.low,
                "high": c.high,
                "safe": c.safe,
            }
            for c in channels
        ],
    }


def test_generated_demo_board_announces_todays_schema_and_board_schema(generated_uno: Path) -> None:
    """The handshake of the build generated from uno_demo.toml equals that of the
    hand-written demo board (firmware/board.c) and what ``board schema`` prints."""
    generated = _announced(generated_uno)
    assert generated == _announced(BUILD_DIR / "fw_avr.elf")
    assert generated == load_board(UNO).schema()


class TestGeneratedDemoBoardInSimavr(DeviceBehaviour):
    """The whole device behaviour suite against the firmware generated from uno_demo.toml."""

    @pytest.fixture
    def device_factory(self, generated_uno: Path) -> Callable[[], DeviceSession]:
        return lambda: DeviceSession([str(HARNESS), str(generated_uno)])


# ---------------------------------------------------------------- CLI


def test_cli_schema_json_and_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["board", "schema", str(UNO), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == load_board(UNO).schema()
    assert main(["board", "check", str(BALANCER)]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "wheel_right" in out and "rad" in out


def test_cli_check_reports_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "b.toml"
    bad.write_text(GOOD.replace("baud = 115200", 'baud = "fast"'))
    assert main(["board", "check", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"liquidnode board: error: {bad}:{_line_of(GOOD, 'baud = ')}: board.baud: "
        "'fast' is not an integer"
    )


def test_cli_build_prints_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_tools("make", "avr-gcc", "avr-objcopy", "avr-size")
    assert main(["board", "build", str(UNO), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"flash \d+ B of 32768, static RAM \d+ B of 2048", out), out
    assert (tmp_path / "fw_avr.elf").exists() and (tmp_path / "fw_avr.hex").exists()
    assert main(["board", "build", str(UNO), "--out", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["hex"] == str(tmp_path / "fw_avr.hex") and 1000 < report["flash_bytes"] < 32768
    assert [Path(f).name for f in report["files"]] == ["board.h", "board.c", "board_io_avr.c"]


def test_flash_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``board flash --print-command`` and ``make flash`` build the same avrdude call."""
    argv = ["board", "flash", str(UNO), "--port", "/dev/ttyACM7", "--out", str(tmp_path)]
    assert main([*argv, "--print-command"]) == 0
    printed = capsys.readouterr().out.strip()
    hex_path = tmp_path / "fw_avr.hex"
    assert printed == (
        f"avrdude -p m328p -c arduino -P /dev/ttyACM7 -b 115200 -D -U flash:w:{hex_path}:i"
    )
    require_tools("make", "avr-gcc", "avr-objcopy")
    proc = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(FIRMWARE_DIR),
            "flash",
            "PORT=/dev/ttyACM7",
            "AVRDUDE=echo avrdude",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "avrdude -p m328p -c arduino -P /dev/ttyACM7 -b 115200 -D -U flash:w:build/fw_avr.hex:i"
        in (proc.stdout)
    )
    proc = subprocess.run(
        ["make", "--no-print-directory", "-C", str(FIRMWARE_DIR), "flash"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0 and "set PORT" in proc.stderr


def test_static_checks_stop_a_build_whose_table_overflows_the_buffers(tmp_path: Path) -> None:
    """The generated board.h checks its sizes against device.h at compile time."""
    require_tools("make", "avr-gcc", "avr-objcopy", "avr-size")
    board = load_board(BALANCER)
    generate(board, tmp_path)
    header = tmp_path / "board.h"
    header.write_text(
        header.read_text().replace("#define BOARD_N_OBS 6u", "#define BOARD_N_OBS 17u")
    )
    proc = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(FIRMWARE_DIR),
            "avr",
            *make_args(board, tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "board_obs_fit" in proc.stderr


def test_board_flash_writes_the_image_through_avrdude(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``board flash`` builds and runs avrdude against an emulated Uno bootloader on a pty;
    the bootloader's flash then holds exactly the built image (avrdude verified it too)."""
    require_tools("make", "avr-gcc", "avr-objcopy", "avr-size", "avrdude")
    from tests.firmware_bridge.stk500_bootloader import Stk500Bootloader

    boot = Stk500Bootloader()
    try:
        code = main(
            ["board", "flash", str(UNO), "--port", boot.port, "--out", str(tmp_path), "--json"]
        )
    finally:
        boot.close()
    assert code == 0
    report = json.loads(capsys.readouterr().out)  # stdout holds the one object
    assert report["flashed"] is True and report["port"] == boot.port
    image = tmp_path / "fw_avr.bin"
    subprocess.run(
        ["avr-objcopy", "-I", "ihex", "-O", "binary", str(tmp_path / "fw_avr.hex"), str(image)],
        check=True,
    )
    data = image.read_bytes()
    assert len(data) > 1000 and bytes(boot.flash[: len(data)]) == data
    assert set(boot.flash[len(data) + 256 :]) == {0xFF}  # nothing written past the image
    assert 0x64 in boot.commands and 0x74 in boot.commands  # pages written, then read back
