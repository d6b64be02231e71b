"""The float32 export's tanh/sigmoid table: its error bound, and the C giving the table's bits."""

from __future__ import annotations

import ctypes
import subprocess

import numpy as np
import pytest

from liquidnode.controller.export.c_source import FLASH_MACROS
from liquidnode.controller.export.f32_kernels import (
    HELPERS,
    TANH_MAX_ERROR,
    TANH_SCALE,
    tanh_reference,
    tanh_table,
)
from liquidnode.controller.export.host_build import WARN_FLAGS, compiler

HARNESS = """\
#include <stdint.h>
{flash}
{m4f}
{tanh}
{sigmoid}
void run_tanh(const float *x, float *y, int n) {{
    int k;
    for (k = 0; k < n; ++k) y[k] = ln_tanh(x[k]);
}}
void run_sigmoid(const float *x, float *y, int n) {{
    int k;
    for (k = 0; k < n; ++k) y[k] = ln_sigmoid(x[k]);
}}
"""


def _grid() -> np.ndarray:
    """Dense over the table's span, fine near 0, both sides of every row boundary."""
    edges = np.arange(-70, 71, dtype=np.float64) / TANH_SCALE
    near = np.concatenate(
        [
            edges,
            np.nextafter(edges.astype(np.float32), np.float32(np.inf)),
            np.nextafter(edges.astype(np.float32), np.float32(-np.inf)),
        ]
    )
    small = np.geomspace(1e-30, 1.0, 20_001)
    return np.concatenate([np.linspace(-12.0, 12.0, 1_000_001), small, -small, near]).astype(
        np.float32
    )


def test_table_tanh_is_within_its_stated_error_everywhere():
    x = _grid()
    got = tanh_reference(x * np.float32(TANH_SCALE)).astype(np.float64)
    err = np.abs(got - np.tanh(x.astype(np.float64)))
    assert err.max() <= TANH_MAX_ERROR
    assert tanh_reference(np.float32([0.0]))[0] == 0.0
    big = np.float32([9.2, 50.0, 1e6, 3e9, 4.8e37])
    np.testing.assert_array_equal(tanh_reference(big * np.float32(TANH_SCALE)), 1.0)
    np.testing.assert_array_equal(tanh_reference(-big * np.float32(TANH_SCALE)), -1.0)


def test_table_rows_join_up():
    # each row's polynomial at the end of its interval meets the next row's start (to 1e-7)
    t = tanh_table().astype(np.float64)
    for j in range(65, 126):
        end = np.polyval(t[j, 5::-1], 1.0)
        assert abs(end - t[j + 1, 0]) <= 1.5e-7, j


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("tanh")
    src = d / "tanh.c"
    src.write_text(
        HARNESS.format(
            flash=FLASH_MACROS,
            m4f=HELPERS["ln_m4f"],
            tanh=HELPERS["ln_tanh"],
            sigmoid=HELPERS["ln_sigmoid"],
        )
    )
    so = d / "tanh.so"
    cmd = [compiler(), *WARN_FLAGS, "-O2", "-fPIC", "-shared", "-o", str(so), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return ctypes.CDLL(str(so))


def _call(lib, name: str, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, np.float32)
    y = np.empty_like(x)
    fp = ctypes.POINTER(ctypes.c_float)
    getattr(lib, name)(x.ctypes.data_as(fp), y.ctypes.data_as(fp), ctypes.c_int(x.size))
    return y


SPECIAL = np.float32([0.0, -0.0, 1e-45, -1e-45, 1e-38, 2.0**31, -(2.0**31), 3e9, -3e9, 4.8e37])


def test_c_tanh_gives_the_tables_bits(lib):
    x = np.concatenate([_grid(), SPECIAL, np.float32([np.nan, np.inf, -np.inf])])
    got = _call(lib, "run_tanh", x)
    want = tanh_reference(x * np.float32(TANH_SCALE))
    np.testing.assert_array_equal(got.view(np.uint32)[:-3], want.view(np.uint32)[:-3])
    assert np.isnan(got[-3:]).all()  # NaN in, NaN out; beyond +-4.8e37 (7 x overflows): NaN


def test_c_sigmoid_is_within_the_table_error(lib):
    x = np.concatenate([_grid() * np.float32(2.0), SPECIAL])
    got = _call(lib, "run_sigmoid", x).astype(np.float64)
    with np.errstate(over="ignore"):
        want = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    assert np.max(np.abs(got - want)) <= TANH_MAX_ERROR / 2 + 6e-8
    assert got.min() >= 0.0 and got.max() <= 1.0
