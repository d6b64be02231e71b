"""The LTC synapse layer in fixed point: the C helpers against their integer definition, and
the AVR assembler loop against the C loop (simavr)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from liquidnode.controller.export.c_source import FLASH_MACROS
from liquidnode.controller.export.host_build import WARN_FLAGS, compiler
from liquidnode.controller.export.q15_arith import HELPERS as ARITH
from liquidnode.controller.export.q15_synapses import (
    EPS_SIGMOID11,
    HELPERS,
    records,
    rows_helper,
    sigmoid_q11,
)

N_IN, N_OUT = 6, 3


def _source(body: str, helpers: str, avr: bool) -> str:
    head = "#include <stdint.h>\n" + ("" if avr else "#include <stdio.h>\n")
    if avr:
        head += "#include <avr/pgmspace.h>\n"
    return head + FLASH_MACROS + ARITH["ln_tanh_lut"] + helpers + body


def _run_host(tmp_path, src: str) -> np.ndarray:
    (tmp_path / "t.c").write_text(src)
    exe = tmp_path / "t"
    subprocess.run(
        [compiler(), *WARN_FLAGS, "-O2", "-o", str(exe), str(tmp_path / "t.c")], check=True
    )
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return np.array(out.split(), np.int64)


def test_sigmoid_q11_matches_its_replica(tmp_path):
    # every input the helper sees: the C gives exactly the replica, on which EPS is measured
    body = """int main(void) {
    int32_t u;
    for (u = -32767L; u <= 32767L; ++u) printf("%d\\n", ln_sigmoid_q11((int16_t)u));
    return 0;
}
"""
    got = _run_host(tmp_path, _source(body, HELPERS["ln_sigmoid_q11"], False))
    u = np.arange(-32767, 32768)
    assert np.array_equal(got, sigmoid_q11(u))
    err = np.max(np.abs(got / 32768.0 - 1.0 / (1.0 + np.exp(-u / 2048.0))))
    assert err <= EPS_SIGMOID11 < 5e-5


def _layer(sh: int, q7: bool, seed: int):
    """Random records (gains, inputs and offsets over their whole ranges, so that some
    arguments saturate) and the sums their integer definition gives."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-32767, 32768, (N_IN, N_OUT))
    x = rng.integers(-32767, 32768, N_IN)
    x[0], a[0, 0] = 0, 0  # a zero argument
    b_lim = ((1 << 30) >> sh) - 1
    b = rng.integers(-b_lim, b_lim + 1, (N_IN, N_OUT))
    b[1] = rng.integers(-3, 4, N_OUT)
    a[2], x[2], b[2] = 32767, 32767, b_lim  # the largest argument: saturates for sh <= 15
    wmax = 127 if q7 else 10000
    we, w = (rng.integers(-wmax, wmax + 1, (N_IN, N_OUT)) for _ in range(2))
    big = b << sh
    v = a * x[:, None] + big
    mag = np.minimum((np.abs(v) + ((1 << sh) >> 1)) >> sh, 32767)
    g = sigmoid_q11(np.where(v < 0, -mag, mag))
    init_n, init_d = rng.integers(-1000, 1000, N_OUT), rng.integers(0, 1000, N_OUT)
    expected = np.concatenate([init_n + (g * we).sum(0), init_d + (g * w).sum(0)])
    assert np.any(mag == 32767) or sh > 15  # the saturation is exercised
    return records(a, big, we, w, q7), x, init_n, init_d, expected


def _program(sh: int, q7: bool, seed: int, avr: bool) -> tuple[str, np.ndarray]:
    rec, x, init_n, init_d, expected = _layer(sh, q7, seed)
    name, helper = rows_helper(sh, q7)

    def arr(v: np.ndarray) -> str:
        return ", ".join(f"{int(k)}" for k in np.asarray(v).reshape(-1))

    out = f"volatile int32_t ln_out[{2 * N_OUT}];\n" if avr else ""
    body = f"""static const int16_t rec[{rec.size}] LN_FLASH = {{ {arr(rec)} }};
static int16_t x[{N_IN}] = {{ {arr(x)} }};
static int32_t num[{N_OUT}] = {{ {arr(init_n)} }};
static int32_t den[{N_OUT}] = {{ {arr(init_d)} }};
{out}int main(void) {{
    int k;
    {name}(rec, x, {N_IN}u, {N_OUT}u, num, den, num, den);
    for (k = 0; k < {N_OUT}; ++k) {{
"""
    if avr:
        body += f"        ln_out[k] = num[k];\n        ln_out[{N_OUT} + k] = den[k];\n"
        body += '    }\n    for (;;) { __asm__ volatile("sleep"); }\n}\n'
    else:
        body += (
            f'        printf("%ld\\n", (long)num[k]);\n    }}\n    for (k = 0; k < {N_OUT}; ++k)'
        )
        body += ' printf("%ld\\n", (long)den[k]);\n    return 0;\n}\n'
    helpers = HELPERS["ln_sigmoid_q11"] + helper
    return _source(body, helpers, avr), expected


@pytest.mark.parametrize("q7", [False, True])
@pytest.mark.parametrize("sh", [4, 10, 12, 13, 16, 17, 20])
def test_synapse_rows_match_their_integer_definition(sh, q7, tmp_path):
    src, expected = _program(sh, q7, sh, avr=False)
    assert np.array_equal(_run_host(tmp_path, src), expected)


RUNNER = r"""
#include <stdio.h>
#include <stdlib.h>
#include "sim_avr.h"
#include "sim_elf.h"

int main(int argc, char **argv) {
    elf_firmware_t fw = {0};
    avr_t *avr;
    unsigned long addr, i;
    int n, state;
    if (argc != 4 || elf_read_firmware(argv[1], &fw) != 0) return 2;
    avr = avr_make_mcu_by_name("atmega328p");
    if (!avr) return 2;
    avr_init(avr);
    avr->frequency = 16000000;
    avr_load_firmware(avr, &fw);
    addr = strtoul(argv[2], NULL, 0);
    n = atoi(argv[3]);
    do {
        state = avr_run(avr);
    } while (state != cpu_Sleeping && state != cpu_Done && state != cpu_Crashed);
    for (i = 0; i < (unsigned long)n; ++i) {
        const unsigned char *p = avr->data + addr + 4 * i;
        printf("%ld\n", (long)(int32_t)((uint32_t)p[0] | ((uint32_t)p[1] << 8) |
                                        ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24)));
    }
    return state == cpu_Crashed;
}
"""


@pytest.mark.avr
@pytest.mark.parametrize("q7", [False, True])
@pytest.mark.parametrize("sh", [10, 12, 13, 16, 17])
def test_avr_synapse_loop_equals_the_definition(sh, q7, tmp_path):
    # the assembler loop (10 <= sh <= 17), in simavr, on records that saturate some arguments
    if shutil.which("avr-gcc") is None:
        pytest.fail("avr-gcc missing: run scripts/install-system-deps.sh")
    runner = tmp_path / "runner"
    (tmp_path / "runner.c").write_text(RUNNER)
    cmd = ["cc", "-O2", "-std=gnu99", "-I/usr/include/simavr", "-o", str(runner)]
    subprocess.run([*cmd, str(tmp_path / "runner.c"), "-lsimavr", "-lelf"], check=True)
    src, expected = _program(sh, q7, sh, avr=True)
    assert "__asm__ volatile(" in src
    (tmp_path / "t.c").write_text(src)
    elf = tmp_path / "t.elf"
    cmd = ["avr-gcc", "-mmcu=atmega328p", *WARN_FLAGS, "-Os", "-o", str(elf)]
    subprocess.run([*cmd, str(tmp_path / "t.c")], check=True)
    nm = subprocess.run(["avr-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    addr = next(int(ln.split()[0], 16) & 0xFFFF for ln in nm.splitlines() if ln.endswith("ln_out"))
    out = subprocess.run(
        [str(runner), str(elf), str(addr), str(2 * N_OUT)], capture_output=True, text=True
    ).stdout
    got = np.array(out.split()[-2 * N_OUT :], np.int64)  # after libsimavr's "Loaded ..." lines
    assert np.array_equal(got, expected)


@pytest.mark.avr
@pytest.mark.parametrize("opt", ["-O1", "-O2", "-O3", "-Os"])
@pytest.mark.parametrize("precision", ["q15", "q7"])
def test_the_ltc_step_compiles_for_the_avr_at_every_optimisation(opt, precision, tmp_path):
    # the synapse loop holds 10 registers of its own besides 8 scratch ones and X, Z
    from liquidnode.controller.export import export_policy
    from tests.controller.export.cases import SHIPPED

    if shutil.which("avr-gcc") is None:
        pytest.fail("avr-gcc missing: run scripts/install-system-deps.sh")
    export_policy(SHIPPED["InvertedPendulum-v5-ltc"](), tmp_path, "c", precision, prefix="pol")
    assert "ln_synapse_rows" in (tmp_path / "pol.c").read_text()
    cmd = ["avr-gcc", "-mmcu=atmega328p", *WARN_FLAGS, opt, "-c", "-o", str(tmp_path / "p.o")]
    proc = subprocess.run([*cmd, str(tmp_path / "pol.c")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
