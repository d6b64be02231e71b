"""The generated C compiles with -Werror for the AVR (weights in flash) and the Cortex-M4F."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from liquidnode.controller.export import export_policy
from liquidnode.controller.export.host_build import WARN_FLAGS
from tests.controller.export.cases import ALL, SHIPPED

MAIN = """\
#include "{p}.h"
static {p}_state s;
volatile float sensor[{P}_OBS_DIM];
volatile float actuator[{P}_ACT_DIM];
int main(void) {{
    float obs[{P}_OBS_DIM], act[{P}_ACT_DIM];
    unsigned int i;
    {p}_reset(&s);
    for (;;) {{
        for (i = 0; i < {P}_OBS_DIM; ++i) obs[i] = sensor[i];
        {p}_step(&s, obs, 0.04f, act);
        for (i = 0; i < {P}_ACT_DIM; ++i) actuator[i] = act[i];
    }}
}}
"""


def _build_avr(tmp_path, policy, precision):
    export_policy(policy, tmp_path, "c", precision, prefix="pol")
    (tmp_path / "main.c").write_text(MAIN.format(p="pol", P="POL"))
    elf = tmp_path / "pol.elf"
    cmd = [
        "avr-gcc",
        "-mmcu=atmega328p",
        *WARN_FLAGS,
        "-Os",
        "-o",
        str(elf),
        str(tmp_path / "main.c"),
        str(tmp_path / "pol.c"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    size = subprocess.run(
        ["avr-size", "-A", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    sections = {ln.split()[0]: int(ln.split()[1]) for ln in size.splitlines() if ln.startswith(".")}
    flash = sections.get(".text", 0) + sections.get(".data", 0)
    ram = sections.get(".data", 0) + sections.get(".bss", 0)
    return flash, ram


@pytest.mark.avr
@pytest.mark.parametrize(
    ("name", "precision"),
    [
        ("InvertedPendulum-v5-cfc", "f32"),
        ("InvertedPendulum-v5-ncp", "f32"),
        ("InvertedPendulum-v5-ltc", "f32"),
        ("InvertedPendulum-v5-cfc", "q15"),
        ("InvertedPendulum-v5-ncp", "q15"),
        ("InvertedPendulum-v5-cfc", "q7"),
        ("InvertedPendulum-v5-ncp", "q7"),
        ("InvertedPendulum-v5-ltc", "q15"),
    ],
)
def test_avr_gcc_builds_the_shipped_pendulum_policy(name, precision, tmp_path):
    if shutil.which("avr-gcc") is None:
        pytest.fail("avr-gcc missing: run scripts/install-system-deps.sh")
    flash, ram = _build_avr(tmp_path, SHIPPED[name](), precision)
    print(f"{name} {precision} on ATmega328P: flash {flash} B, RAM {ram} B")
    assert flash <= 32 * 1024 and ram <= 2048
    assert ram > 2 * SHIPPED[name]().state_dim  # the state struct is in .bss


@pytest.mark.avr
@pytest.mark.parametrize("precision", ["q15", "q7"])  # (its 128-unit backbone: too big in f32)
def test_avr_gcc_builds_a_policy_with_an_action_low_pass(precision, tmp_path):
    if shutil.which("avr-gcc") is None:
        pytest.fail("avr-gcc missing: run scripts/install-system-deps.sh")
    flash, ram = _build_avr(tmp_path, ALL["cfc-latency-feedback-low-pass"](), precision)
    assert flash <= 32 * 1024 and ram <= 2048


@pytest.mark.parametrize(
    ("name", "precision"),
    [
        ("InvertedPendulum-v5-cfc", "f32"),
        ("cfc-no_gate-gelu-2layers", "f32"),
        ("wired_cfc-pure", "f32"),
        ("ltc-ncp", "f32"),
        ("InvertedPendulum-v5-ncp", "q15"),
        ("lstm", "q15"),
        ("gru", "q15"),
        ("mlp-memoryless", "q15"),
        ("mlp-3-frames-relu", "f32"),
        ("ltc-ncp", "q15"),
        ("ltc-ncp", "q7"),
        ("wired_cfc-pure", "q15"),
        ("cfc-low-pass", "f32"),
        ("gru-feedback-low-pass", "q15"),
    ],
)
def test_arm_none_eabi_gcc_builds_for_cortex_m4f(name, precision, tmp_path):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.fail("arm-none-eabi-gcc missing: run scripts/install-system-deps.sh")
    export_policy(ALL[name](), tmp_path, "c", precision, prefix="pol")
    cmd = [
        "arm-none-eabi-gcc",
        "-mcpu=cortex-m4",
        "-mthumb",
        "-mfloat-abi=hard",
        "-mfpu=fpv4-sp-d16",
        *WARN_FLAGS,
        "-O2",
        "-c",
        "-o",
        str(tmp_path / "pol.o"),
        str(tmp_path / "pol.c"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.avr
@pytest.mark.parametrize(
    ("cell", "precision", "fixed_dt"),
    [
        ("ncp", "q15", False),
        ("ncp", "q7", False),
        ("ncp", "f32", False),
        ("ltc", "q15", False),
        ("ltc", "q7", False),
        ("cfc", "q7", False),
        ("cfc", "q7", True),
        ("ncp", "q15", True),
    ],
)
def test_avr_step_in_simavr_equals_the_host_build(cell, precision, fixed_dt):
    # the AVR-only code (PROGMEM reads, the assembler inner products, the byte-moving shifts,
    # avr-libc float, the LTC's assembler synapse loop and 16 x 16-bit ts products) gives the
    # action the same generated C gives on the host; the cycles are printed (measured, -Os:
    # NCP pendulum q15 55k cycles, q7 44k, f32 366k; LTC q15 341k, q7 303k; CfC q7 with its
    # byte backbone 74.5k, and specialised for its period 62.2k)
    import json
    import sys

    root = Path(__file__).resolve().parents[3]
    policy = root / "policies" / f"InvertedPendulum-v5-{cell}.safetensors"
    cmd = [
        sys.executable,
        str(root / "scripts" / "avr_step_cycles.py"),
        str(policy),
        "--precision",
        precision,
        "--steps",
        "3",
        "--json",
        *(["--fixed-dt"] if fixed_dt else []),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    print(result)
    assert result["cycles_per_step"]["p50"] > 1000
    assert result["max_abs_action_vs_host"] <= (1e-6 if precision == "f32" else 0.0)
