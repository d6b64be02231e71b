"""``liquidnode board``: check, build, flash a board file, or print the schema it announces.

- ``board check FILE``: reads and checks the board file (errors name file, line and field);
  prints its channels.
- ``board build FILE [--out DIR]``: generates ``board.h``, ``board.c``, ``board_io_avr.c``
  into DIR and builds ``fw_avr.elf`` + ``fw_avr.hex`` there with the reference firmware's
  Makefile (avr-gcc); prints flash/RAM sizes.
- ``board flash FILE --port PORT``: builds, then writes the ``.hex`` with avrdude
  (``-c arduino -b 115200`` for an Uno's Optiboot; ``--programmer``/``--baud`` for others;
  ``--print-command`` prints the avrdude command instead of running it).
- ``board schema FILE [--json]``: the handshake the built firmware announces: IDENTITY fields
  and every CHANNEL (limits as the device's f32).

``DIR`` defaults to ``./build/board-<file stem>``. Exit codes: 0 ok, 2 a bad board file or a
missing tool, 3 the compiler or avrdude failed.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liquidnode.cli.arguments import Subparsers
from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.shutdown import EXIT_RUN_FAULT

if TYPE_CHECKING:
    from liquidnode.firmware_bridge.board import Board


def _firmware_dir() -> Path:
    """The reference firmware's sources (the package's data, or the source tree)."""
    from liquidnode import firmware_bridge

    return Path(firmware_bridge.__file__).resolve().parent / "firmware"


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Register ``board``."""
    p = subparsers.add_parser(
        "board",
        help="board files: check, build and flash firmware for your own board",
        description=(
            "A board file (TOML) names the MCU, clock, baud rate, control period, watchdogs, "
            "the e-stop pins and every channel with its unit, range, safe value, peripheral "
            "and scaling (see firmware_bridge/boards/uno_demo.toml). 'check' validates it, "
            "'build' generates the firmware's board table and wiring and compiles it, 'flash' "
            "writes it to the board with avrdude, 'schema' prints what the firmware will "
            "announce in its handshake."
        ),
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    check = sub.add_parser("check", help="validate a board file")
    check.add_argument("file", metavar="FILE", help="board file (.toml)")
    build = sub.add_parser("build", help="generate the board's C files and build the firmware")
    build.add_argument("file", metavar="FILE", help="board file (.toml)")
    build.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="folder for the generated files and the .elf/.hex (default: build/board-STEM)",
    )
    flash = sub.add_parser("flash", help="build, then flash the firmware with avrdude")
    flash.add_argument("file", metavar="FILE", help="board file (.toml)")
    flash.add_argument(
        "--port", required=True, metavar="PORT", help="serial port, e.g. /dev/ttyACM0"
    )
    flash.add_argument("--out", metavar="DIR", default=None, help="as for 'build'")
    flash.add_argument(
        "--programmer", default="arduino", help="avrdude programmer id (-c); Uno: arduino"
    )
    flash.add_argument("--baud", type=int, default=115200, help="programmer baud rate (-b)")
    flash.add_argument(
        "--print-command",
        action="store_true",
        help="print the avrdude command line instead of running it",
    )
    schema = sub.add_parser("schema", help="print the schema the firmware announces")
    schema.add_argument("file", metavar="FILE", help="board file (.toml)")
    schema.add_argument("--json", action="store_true", help="print it as one JSON object")
    for q, what in ((check, "the check and the schema"), (build, "the build's files and sizes"),
                    (flash, "the build and the avrdude command")):  # fmt: skip
        q.add_argument("--json", action="store_true", help=f"print {what} as one JSON object")
    for q in (check, build, flash, schema):
        q.set_defaults(run=run)
    p.set_defaults(run=run)
    return p


def avrdude_command(hex_path: Path, port: str, programmer: str, baud: int) -> list[str]:
    """The avrdude command that writes ``hex_path`` to an ATmega328P on ``port``.

    ``-D`` keeps the chip erase out (a bootloader such as Optiboot erases page by page).
    """
    return [
        "avrdude",
        "-p",
        "m328p",
        "-c",
        programmer,
        "-P",
        port,
        "-b",
        str(baud),
        "-D",
        "-U",
        f"flash:w:{hex_path}:i",
    ]


def build(board: Board, out: Path) -> dict[str, Any]:
    """Generate the board's C files into ``out`` and build the AVR image there.

    Returns ``{"elf", "hex", "flash_bytes", "ram_bytes", "files"}``.

    Raises:
        LiquidNodeError: make or avr-gcc missing, or the build failed (compiler output).
    """
    from liquidnode.firmware_bridge.board_codegen import generate, make_args

    missing = [t for t in ("make", "avr-gcc", "avr-objcopy", "avr-size") if not shutil.which(t)]
    if missing:
        raise LiquidNodeError(
            f"{', '.join(missing)} not found; install the AVR toolchain "
            "(Debian: gcc-avr binutils-avr avr-libc make; scripts/install-system-deps.sh)"
        )
    files = generate(board, out)
    proc = subprocess.run(
        ["make", "--no-print-directory", "-C", str(_firmware_dir()), "avr", *make_args(board, out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise _ToolFailedError(f"firmware build failed:\n{proc.stdout}{proc.stderr}".rstrip())
    program = re.search(r"Program:\s+(\d+) bytes", proc.stdout)
    data = re.search(r"Data:\s+(\d+) bytes", proc.stdout)
    return {
        "elf": out / "fw_avr.elf",
        "hex": out / "fw_avr.hex",
        "flash_bytes": int(program.group(1)) if program else None,
        "ram_bytes": int(data.group(1)) if data else None,
        "files": files,
    }


class _ToolFailedError(Exception):
    """The compiler or avrdude failed (exit 3, not a user error)."""


def _schema_text(schema: dict[str, Any]) -> str:
    lines = [
        f"device {schema['device_id']!r}: protocol v{schema['protocol_version']}, "
        f"{schema['n_obs']} observations, {schema['n_act']} actions, period "
        f"{schema['control_period_us']} µs, watchdog {schema['watchdog_timeout_ms']} ms",
        f"{'kind':4} {'idx':>3}  {'name':<20} {'unit':<8} {'low':>10} {'high':>10} {'safe':>8}",
    ]
    for c in schema["channels"]:
        safe = f"{c['safe']:8g}" if c["kind"] == "act" else f"{'-':>8}"
        lines.append(
            f"{c['kind']:4} {c['index']:>3}  {c['name']:<20} {c['unit']:<8} "
            f"{c['low']:>10g} {c['high']:>10g} {safe}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``liquidnode board ACTION``."""
    from liquidnode.firmware_bridge.board_file import load_board

    board = load_board(args.file)
    if args.action == "check":
        if args.json:
            print(json.dumps({"file": str(args.file), "ok": True, "schema": board.schema()}))
            return 0
        print(f"{args.file}: ok")
        print(_schema_text(board.schema()))
        return 0
    if args.action == "schema":
        if args.json:
            print(json.dumps(board.schema(), indent=2))
        else:
            print(_schema_text(board.schema()))
        return 0
    out = Path(args.out) if args.out else Path("build") / f"board-{Path(args.file).stem}"
    try:
        if args.action == "flash" and args.print_command:
            cmd = avrdude_command(out / "fw_avr.hex", args.port, args.programmer, args.baud)
            print(json.dumps({"command": cmd}) if args.json else " ".join(cmd))
            return 0
        result = build(board, out)
        report: dict[str, Any] = {k: str(v) for k, v in result.items() if k in ("elf", "hex")}
        report.update(
            flash_bytes=result["flash_bytes"],
            ram_bytes=result["ram_bytes"],
            files=[str(f) for f in result["files"]],
        )
        if not args.json:
            print(f"generated: {', '.join(report['files'])}")
            print(
                f"built: {result['elf']} and {result['hex']} (flash {result['flash_bytes']} B "
                f"of 32768, static RAM {result['ram_bytes']} B of 2048)"
            )
        if args.action == "flash":
            if not shutil.which("avrdude"):
                raise LiquidNodeError("avrdude not found (Debian: apt-get install avrdude)")
            cmd = avrdude_command(result["hex"], args.port, args.programmer, args.baud)
            if not args.json:
                print(" ".join(cmd), flush=True)
            # avrdude reports on stderr; with --json stdout carries only the one object
            proc = subprocess.run(
                cmd, check=False, stdout=subprocess.PIPE if args.json else None, text=True
            )
            if args.json and proc.stdout:
                print(proc.stdout, end="", file=sys.stderr)
            if proc.returncode != 0:
                raise _ToolFailedError(f"avrdude failed writing {result['hex']} to {args.port}")
            report.update(port=args.port, command=cmd, flashed=True)
            if not args.json:
                print(f"flashed {args.port}")
        if args.json:
            print(json.dumps(report))
    except _ToolFailedError as exc:
        print(f"liquidnode board {args.action}: error: {exc}", file=sys.stderr)
        return EXIT_RUN_FAULT
    return 0
