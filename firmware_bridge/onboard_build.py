"""Build the firmware with a policy inside: export, board tables, ``make avr POLICY_DIR=...``.

:func:`build_policy_firmware` exports a policy file to C (``--precision f32``, ``q15`` or
``q7``, prefix ``policy``), generates the board's C files from its board file, and builds the
ATmega328P image with the policy linked in (``firmware/policy_task.c``). With ``hil=True``
the firmware reads its observation from the host's SENSORS frames (hardware in the loop);
with ``standalone=True`` it arms at power-on and needs no host. The image, its flash and
static RAM use (avr-size, bytes) and the folders come back as a :class:`PolicyFirmware`.

:data:`ENV_BOARDS` names the board file of each env that has one (the channels and action
range of the env), so that ``liquidnode hil --env ID`` finds it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from liquidnode.controller.errors import LiquidNodeError

#: The reference firmware's sources.
FIRMWARE_DIR = Path(__file__).resolve().parent / "firmware"
#: The shipped board files.
BOARDS_DIR = Path(__file__).resolve().parent / "boards"
#: Board file per env id: channels in the env's order and units, the env's action range.
ENV_BOARDS = {
    "InvertedPendulum-v5": BOARDS_DIR / "inverted_pendulum.toml",
    "InvertedDoublePendulum-v5": BOARDS_DIR / "inverted_double_pendulum.toml",
}
#: Tools the AVR build needs.
AVR_TOOLS = ("make", "avr-gcc", "avr-objcopy", "avr-size")
#: Tools the Cortex-M4 build needs.
CM4_TOOLS = ("make", "arm-none-eabi-gcc", "arm-none-eabi-size")
#: Build targets: ``avr`` (ATmega328P, 16 MHz) and ``cm4`` (Cortex-M4F on QEMU's
#: mps2-an386; its step counts are instructions, its clock the nominal 168 MHz).
TARGETS = ("avr", "cm4")
#: The clock a ``cm4`` build reports (instructions -> µs at a 168 MHz Cortex-M4F).
CM4_CLOCK_HZ = 168_000_000


@dataclass(frozen=True)
class PolicyFirmware:
    """A built firmware image with a policy inside.

    Attributes:
        target: ``"avr"`` or ``"cm4"``.
        elf, hex: the image (``fw_avr.elf``, ``fw_avr.hex``; ``fw_cm4.elf`` and no hex).
        export_dir: the exported C policy (``policy.h``, ``policy.c``).
        precision: ``"f32"``, ``"q15"`` or ``"q7"``.
        hil: True when the observation comes from the host's SENSORS frames.
        flash_bytes: program memory used (.text + .data), bytes.
        ram_bytes: static RAM used (.data + .bss + .noinit), bytes; the stack comes on top.
        clock_hz: the MCU clock of the board, Hz.
        control_period_us: the policy's control period on the device, µs.
    """

    target: str
    elf: Path
    hex: Path | None
    export_dir: Path
    precision: str
    hil: bool
    flash_bytes: int
    ram_bytes: int
    clock_hz: int
    control_period_us: int


def board_for_env(env_id: str) -> Path:
    """The shipped board file of ``env_id``.

    Raises:
        LiquidNodeError: no board file for that env (pass one with ``--board``).
    """
    try:
        return ENV_BOARDS[env_id]
    except KeyError:
        known = ", ".join(sorted(ENV_BOARDS))
        raise LiquidNodeError(
            f"no board file for env {env_id!r} (shipped: {known}); pass one with --board FILE"
        ) from None


def build_policy_firmware(
    policy_path: str | Path,
    out_dir: str | Path,
    *,
    precision: str = "q15",
    board_path: str | Path | None = None,
    hil: bool = False,
    standalone: bool = False,
    target: str = "avr",
    policy_opt: str = "-Os",
    fixed_dt: bool = True,
) -> PolicyFirmware:
    """Export ``policy_path`` and build the AVR firmware around it into ``out_dir``.

    Args:
        policy_path: a policy file (.safetensors).
        out_dir: output folder (created): ``policy/`` (export), ``board/`` (generated board
            files) and the image.
        precision: the export's arithmetic (``f32``, ``q15``, ``q7``).
        board_path: the board file; None: the shipped board of the policy's env.
        hil: read the observation from SENSORS frames (hardware in the loop).
        standalone: arm at power-on, no host needed.
        target: ``"avr"`` (the board's MCU, an ATmega328P) or ``"cm4"`` (Cortex-M4F for
            QEMU's mps2-an386, ``-O2``; the board file gives only the channels and periods).
        policy_opt: avr-gcc optimisation of the policy's own file (AVR; the rest is ``-Os``):
            ``-O2`` gives a faster step for more flash.
        fixed_dt: a fixed-point CfC / wired CfC export is specialised for the device's
            control period (the firmware steps the policy at that period only): its time
            gate is folded (``export_policy(fixed_dt=...)``); False keeps the general step.

    Raises:
        LiquidNodeError: a missing tool, a policy that does not fit the board (sizes), or a
            failed build (the compiler's output).
    """
    from liquidnode.controller.export import export_policy, lower
    from liquidnode.controller.export.fixed_point import has_time_gate
    from liquidnode.controller.policy import Policy
    from liquidnode.firmware_bridge.board_codegen import generate, make_args
    from liquidnode.firmware_bridge.board_file import load_board

    if target not in TARGETS:
        raise LiquidNodeError(f"unknown target {target!r}, expected one of {TARGETS}")
    missing = [t for t in (AVR_TOOLS if target == "avr" else CM4_TOOLS) if not shutil.which(t)]
    if missing:
        raise LiquidNodeError(
            f"{', '.join(missing)} not found; install the {target} toolchain (Debian: gcc-avr "
            "binutils-avr avr-libc gcc-arm-none-eabi libnewlib-arm-none-eabi make; "
            "scripts/install-system-deps.sh)"
        )
    policy = Policy.load(policy_path)
    if board_path is None:
        board_path = board_for_env(policy.metadata.env_id or "?")
    board = load_board(board_path)
    if (len(board.obs), len(board.act)) != (policy.obs_dim, policy.act_dim):
        raise LiquidNodeError(
            f"policy {policy_path} has {policy.obs_dim} observations and {policy.act_dim} "
            f"actions, board {board.path.name} {len(board.obs)} and {len(board.act)}"
        )
    out = Path(out_dir).resolve()
    export_dir, board_dir = out / "policy", out / "board"
    export_dir.mkdir(parents=True, exist_ok=True)
    rate = policy.metadata.control_rate_hz
    period_us = round(1e6 / rate) if rate else board.control_period_us
    fold = fixed_dt and precision in ("q15", "q7") and has_time_gate(lower(policy))
    fixed = period_us / 1e6 if fold else None
    export_policy(policy, export_dir, "c", precision, prefix="policy", fixed_dt=fixed)
    generate(board, board_dir)
    args = [a for a in make_args(board, board_dir) if not a.startswith(("BUILD=", "CONTROL_"))]
    args += [
        f"BUILD={out}",
        f"CONTROL_PERIOD_US={period_us}u",
        f"POLICY_DIR={export_dir}",
        f"HIL={int(hil)}",
        f"STANDALONE={int(standalone)}",
        f"POLICY_OPT={policy_opt}",
    ]
    elf = out / f"fw_{target}.elf"
    elf.unlink(missing_ok=True)  # make would keep an image of other flags
    proc = subprocess.run(
        ["make", "--no-print-directory", "-C", str(FIRMWARE_DIR), target, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise LiquidNodeError(f"firmware build failed:\n{proc.stdout}{proc.stderr}".rstrip())
    if target == "avr":
        program = re.search(r"Program:\s+(\d+) bytes", proc.stdout)
        data = re.search(r"Data:\s+(\d+) bytes", proc.stdout)
        sizes = None if program is None or data is None else (program.group(1), data.group(1))
    else:  # arm-none-eabi-size (Berkeley): text data bss
        row = re.search(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s", proc.stdout, re.M)
        sizes = None if row is None else (
            int(row.group(1)) + int(row.group(2)), int(row.group(2)) + int(row.group(3))
        )  # fmt: skip
    if sizes is None:
        raise LiquidNodeError(f"no sizes in the build's output:\n{proc.stdout}")
    return PolicyFirmware(
        target=target,
        elf=elf,
        hex=out / "fw_avr.hex" if target == "avr" else None,
        export_dir=export_dir,
        precision=precision,
        hil=hil,
        flash_bytes=int(sizes[0]),
        ram_bytes=int(sizes[1]),
        clock_hz=board.clock_hz if target == "avr" else CM4_CLOCK_HZ,
        control_period_us=period_us,
    )
