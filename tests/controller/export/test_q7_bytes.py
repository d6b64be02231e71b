"""The q7 byte layers: the generated C helpers against their integer definitions."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from liquidnode.controller.export import ExportError
from liquidnode.controller.export.c_source import FLASH_MACROS
from liquidnode.controller.export.host_build import WARN_FLAGS, compiler
from liquidnode.controller.export.q7_bytes import EPS_TANH8, offset_weights, tanh_u8
from liquidnode.controller.export.q7_bytes import HELPERS as BYTE_HELPERS
from liquidnode.controller.export.q15_arith import HELPERS, sigmoid_q, tanh_q


def _run_c(tmp_path, body: str, helpers: str) -> np.ndarray:
    src = tmp_path / "t.c"
    src.write_text("#include <stdint.h>\n#include <stdio.h>\n" + FLASH_MACROS + helpers + body)
    exe = tmp_path / "t"
    subprocess.run([compiler(), *WARN_FLAGS, "-O2", "-o", str(exe), str(src)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return np.array(out.split(), np.int64)


def test_table_helpers_match_their_replicas(tmp_path):
    # every input the helpers can see (and beyond their saturation): the C gives exactly the
    # Python replicas, on which EPS_TANH and EPS_TANH8 are measured
    helpers = (
        "".join(HELPERS[h] for h in ("ln_tanh_lut", "ln_tanh_q12", "ln_tanh_q13", "ln_sigmoid_q"))
        + BYTE_HELPERS["ln_tanh_u8"]
    )
    body = """int main(void) {
    int32_t u;
    for (u = -70000L; u <= 70000L; ++u)
        printf("%d %d %d %d\\n", ln_tanh_q12(u), ln_tanh_q13(u), ln_sigmoid_q(u),
               ln_tanh_u8(u));
    return 0;
}
"""
    got = _run_c(tmp_path, body, helpers).reshape(-1, 4)
    u = np.arange(-70000, 70001)
    assert np.array_equal(got[:, 0], tanh_q(u, 12))
    assert np.array_equal(got[:, 1], tanh_q(u, 13))
    assert np.array_equal(got[:, 2], sigmoid_q(u))
    assert np.array_equal(got[:, 3], tanh_u8(u))
    assert np.max(np.abs((got[:, 3] - 128) / 127.0 - np.tanh(u / 128.0))) <= EPS_TANH8 < 0.0045


@pytest.mark.parametrize(("n_w", "n_b", "n_out"), [(0, 64, 48), (3, 12, 7), (4, 16, 3)])
def test_byte_dense_layer_is_exact(n_w, n_b, n_out, tmp_path):
    # the stream layout (blocks of 4 rows, duplicated word weights, constants) and the offset
    # binary give acc = (acc) + b + W [x | a] exactly
    rng = np.random.default_rng(n_w + n_b + n_out)
    wq = rng.integers(-127, 128, (n_out, n_w + n_b))
    bq = rng.integers(-(2**20), 2**20, n_out)
    x = rng.integers(-20000, 20001, n_w)
    a = rng.integers(-127, 128, n_b)
    old = rng.integers(-(2**20), 2**20, n_out)
    stream = offset_weights(wq, bq, n_w, 20000.0)
    raw = np.concatenate([x.astype("<i2").view(np.uint8), (a + 128).astype(np.uint8)])
    body = f"""static const uint8_t w[{stream.size}] = {{{", ".join(map(str, stream))}}};
static uint8_t in[{raw.size}] = {{{", ".join(map(str, raw))}}};
int main(void) {{
    int32_t acc[{n_out}] = {{{", ".join(f"{v}L" for v in old)}}};
    uint8_t add, r;
    for (add = 0; add < 2u; ++add) {{
        int32_t out[{n_out}];
        for (r = 0; r < {n_out}u; ++r) out[r] = acc[r];
        ln_dense_u8(w, in, {n_w}u, {n_b}u, {n_out}u, out, add);
        for (r = 0; r < {n_out}u; ++r) printf("%ld\\n", (long)out[r]);
    }}
    return 0;
}}
"""
    got = _run_c(tmp_path, body, BYTE_HELPERS["ln_dense_u8"]).reshape(2, n_out)
    exact = bq + wq[:, :n_w] @ x + wq[:, n_w:] @ a
    assert np.array_equal(got[0], exact)
    assert np.array_equal(got[1], old + exact)


def test_byte_dense_layer_refuses_sums_beyond_24_bits():
    wq = np.full((4, 8), 127)
    with pytest.raises(ExportError, match="24 bits"):
        offset_weights(wq, None, 4, 32767.0)  # 4 x 127 x 32767 > 2^23
    offset_weights(wq, None, 0)  # bytes alone: 8 x 127 x 255 fits


@pytest.mark.parametrize("opt", ["-O1", "-O2", "-O3", "-Os"])
def test_the_byte_loop_compiles_for_the_avr_at_every_optimisation(opt, tmp_path):
    # the assembler loop holds 28 registers: inlined into the step (-O1, -O3) it would not
    # find them, so it is kept a function of its own
    import shutil

    from liquidnode.controller.export import export_policy
    from tests.controller.export.cases import SHIPPED

    if shutil.which("avr-gcc") is None:
        pytest.fail("avr-gcc missing: run scripts/install-system-deps.sh")
    policy = SHIPPED["InvertedPendulum-v5-cfc"]()
    export_policy(policy, tmp_path, "c", "q7", prefix="pol", fixed_dt=0.04)
    assert "ln_dense_u8(" in (tmp_path / "pol.c").read_text()
    cmd = ["avr-gcc", "-mmcu=atmega328p", *WARN_FLAGS, opt, "-c", "-o", str(tmp_path / "p.o")]
    proc = subprocess.run([*cmd, str(tmp_path / "pol.c")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
