"""The float32 export built for the Cortex-M4F (its assembler dense layers and tanh) gives the
host build's bits: every cell type, stepped on QEMU's mps2-an386, results via semihosting."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from liquidnode.controller.export import export_policy
from liquidnode.controller.export.c_source import FLASH_MACROS, c_float
from liquidnode.controller.export.check import sequence
from liquidnode.controller.export.f32_kernels import HELPERS, TANH_SCALE, tanh_reference
from liquidnode.controller.export.host_build import WARN_FLAGS, CompiledPolicy
from tests.controller.export.cases import RANDOM, SHIPPED

LD = Path(__file__).resolve().parents[3] / "firmware_bridge" / "firmware" / "cm4.ld"
CFLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-O2")
STEPS = 40

# Reset handler (copy .data, zero .bss, enable the FPU), semihosting output and exit.
RUNTIME = """\
#include <stdint.h>
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void Reset_Handler(void);
__attribute__((section(".isr_vector"), used)) static void (*const vectors[2])(void) = {
    (void (*)(void))(uintptr_t)&_estack, Reset_Handler};
static int sh_call(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
/* one line: '=', then the bits of n floats in hex */
void put_bits(const float *v, unsigned int n);
void put_bits(const float *v, unsigned int n) {
    static char line[8 * 64 + 2];
    unsigned int k, j, m = 1;
    line[0] = '=';
    for (k = 0; k < n; ++k) {
        uint32_t b;
        __builtin_memcpy(&b, &v[k], 4);
        for (j = 0; j < 8; ++j) {
            const unsigned int d = (b >> (28 - 4 * j)) & 15u;
            line[m++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        }
        if (m >= 8 * 64) { line[m] = 0; sh_call(0x04, line); m = 0; }
    }
    line[m++] = 10;
    line[m] = 0;
    sh_call(0x04, line);
}
void Reset_Handler(void) {
    uint32_t *src = &_sidata, *dst;
    for (dst = &_sdata; dst < &_edata;) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20; /* CPACR: CP10, CP11 full access */
    __asm__ volatile("dsb\\n\\tisb");
    main();
    sh_call(0x18, (const void *)0x20026); /* ADP_Stopped_ApplicationExit */
    for (;;) {
    }
}
"""


def _tools() -> None:
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} missing: run scripts/install-system-deps.sh")


def _floats(values: np.ndarray) -> str:
    return ", ".join(c_float(v) for v in np.asarray(values, np.float32).ravel())


def _run_m4f(tmp_path: Path, sources: list[Path]) -> list[np.ndarray]:
    """Build ``sources`` with the runtime for the M4F, run on QEMU; each printed line's bits
    as float32."""
    _tools()
    (tmp_path / "rt.c").write_text(RUNTIME)
    elf = tmp_path / "t.elf"
    cmd = [
        "arm-none-eabi-gcc",
        *CFLAGS,
        *WARN_FLAGS,
        f"-I{tmp_path}",
        "-nostartfiles",
        "--specs=nano.specs",
        "--specs=nosys.specs",
        "-Wl,--gc-sections",
        f"-T{LD}",
        "-o",
        str(elf),
        str(tmp_path / "rt.c"),
        *map(str, sources),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    qemu = [
        "qemu-system-arm", "-M", "mps2-an386", "-display", "none", "-monitor", "none",
        "-serial", "null", "-semihosting-config", "enable=on,target=native",
        "-kernel", str(elf),
    ]  # fmt: skip
    run = subprocess.run(
        qemu, capture_output=True, text=True, check=False, timeout=120, stdin=subprocess.DEVNULL
    )
    assert run.returncode == 0, run.stderr
    # QEMU writes the semihosting console to stderr when its output is not a terminal
    text = run.stdout + run.stderr
    rows = [ln.strip()[1:] for ln in text.splitlines() if ln.startswith("=")]
    assert rows and all(len(r) % 8 == 0 for r in rows), text[:400]
    return [
        np.array([int(r[k : k + 8], 16) for k in range(0, len(r), 8)], np.uint32).view(np.float32)
        for r in rows
    ]


@pytest.mark.parametrize("name", [*sorted(RANDOM), "InvertedDoublePendulum-v5-cfc"])
def test_m4f_step_gives_the_host_builds_bits(name, tmp_path):
    policy = {**RANDOM, **SHIPPED}[name]()
    export_policy(policy, tmp_path, "c", "f32", prefix="pol")
    obs, dt = sequence(policy, STEPS, seed=2)
    (tmp_path / "main.c").write_text(
        f"""#include "pol.h"
void put_bits(const float *v, unsigned int n);
static const float obs[{obs.size}] = {{{_floats(obs)}}};
static const float dt[{STEPS}] = {{{_floats(dt)}}};
static pol_state s;
int main(void) {{
    float act[POL_ACT_DIM], h[POL_STATE_DIM + 1];
    unsigned int k;
    pol_reset(&s);
    for (k = 0; k < {STEPS}u; ++k) {{
        pol_step(&s, obs + k * POL_OBS_DIM, dt[k], act);
        pol_state_read(&s, h);
        put_bits(act, POL_ACT_DIM);
        put_bits(h, POL_STATE_DIM);
    }}
    return 0;
}}
"""
    )
    got = _run_m4f(tmp_path, [tmp_path / "main.c", tmp_path / "pol.c"])
    host = CompiledPolicy(tmp_path, "pol", policy.obs_dim, policy.act_dim, policy.state_dim)
    act, states = host.run(obs, dt)
    assert len(got) == 2 * STEPS
    dev_act, dev_state = np.array(got[0::2]), np.array(got[1::2])
    assert np.abs(act).max() > 0.0
    np.testing.assert_array_equal(dev_act.view(np.uint32), act.view(np.uint32))
    np.testing.assert_array_equal(dev_state.view(np.uint32), states.view(np.uint32))


def test_m4f_tanh_gives_the_tables_bits(tmp_path):
    x = np.concatenate(
        [
            np.linspace(-10.0, 10.0, 2001),
            np.arange(-70, 71) / TANH_SCALE,
            [0.0, -0.0, 1e-45, -1e-45, 1e-38, 2.0**31, -(2.0**31), 3e9, -3e9, 4.8e37, -4.8e37],
        ]
    ).astype(np.float32)
    (tmp_path / "main.c").write_text(
        f"""#include <stdint.h>
{FLASH_MACROS}
{HELPERS["ln_m4f"]}
{HELPERS["ln_tanh"]}
void put_bits(const float *v, unsigned int n);
static const float x[{x.size}] = {{{_floats(x)}}};
static float y[{x.size}];
int main(void) {{
    unsigned int k;
    for (k = 0; k < {x.size}u; ++k) y[k] = ln_tanh(x[k]);
    put_bits(y, {x.size}u);
    return 0;
}}
"""
    )
    got = np.concatenate(list(_run_m4f(tmp_path, [tmp_path / "main.c"])))
    want = tanh_reference(x * np.float32(TANH_SCALE))
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
