"""The C floor: a plain C CfC step compiled at bench time (``cc -O2``) and called via ctypes.

It is the reference for how fast the CfC-64 step can be on this machine: the runtime is held
to within 2x of it. :func:`build_floor` compiles ``cfc_floor.c`` for the given sizes into a
temporary directory and binds the weights of an ncps ``CfC`` (default mode, ``lecun_tanh``,
one backbone layer, ``proj_size``).
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).with_name("cfc_floor.c")
_ORDER = ("backbone.0", "ff1", "ff2", "time_a", "time_b")


class FloorUnavailableError(RuntimeError):
    """No C compiler, or the floor did not build."""


class CFloor:
    """A compiled CfC step bound to one set of weights.

    ``step(x, ts)`` advances the internal hidden state (float32 ``(H,)``) on input ``x``
    (float32 ``(N_IN,)``) and returns the readout (float32 ``(P,)``, internal buffer).
    """

    def __init__(self, lib: ctypes.CDLL, params: np.ndarray, n_in: int, h: int, p: int) -> None:
        self._lib = lib
        self.params = np.ascontiguousarray(params, dtype=np.float32)
        self.x = np.zeros(n_in, dtype=np.float32)
        self.h = np.zeros(h, dtype=np.float32)
        self.y = np.zeros(p, dtype=np.float32)
        self._fn = lib.floor_step
        self._fn.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_float, ctypes.c_void_p]
        self._fn.restype = None
        self._run = lib.floor_run
        self._run.argtypes = [ctypes.c_void_p] * 3 + [
            ctypes.c_float,
            ctypes.c_void_p,
            ctypes.c_int,
        ]
        self._run.restype = ctypes.c_double
        self._ptrs = (self.params.ctypes.data, self.x.ctypes.data, self.h.ctypes.data)
        self._y = self.y.ctypes.data

    def reset(self) -> None:
        """Hidden state := zeros."""
        self.h[:] = 0.0

    def step(self, x: np.ndarray, ts: float) -> np.ndarray:
        """One tick through ctypes (as the runtime pays it)."""
        self.x[:] = x
        p, xp, hp = self._ptrs
        self._fn(p, xp, hp, ts, self._y)
        return self.y

    def run_in_c(self, n: int, ts: float = 1.0) -> float:
        """Seconds per step of ``n`` steps looped inside C (no Python per step)."""
        p, xp, hp = self._ptrs
        return float(self._run(p, xp, hp, ts, self._y, n)) * 1e-9 / n


def build_floor(
    tensors: dict[str, np.ndarray], n_in: int, h: int, u: int, p: int, cc: str | None = None
) -> CFloor:
    """Compile the floor for these sizes and bind ncps ``CfC`` weights.

    Args:
        tensors: ncps ``CfC`` state dict as numpy: ``rnn_cell.backbone.0.weight``...,
            ``fc.weight``, ``fc.bias``.
        n_in, h, u, p: inputs, hidden units, backbone units, readout size.
        cc: C compiler (default: ``cc`` on PATH).

    Raises:
        FloorUnavailableError: no compiler or a failed build.
    """
    cc = cc or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise FloorUnavailableError("no C compiler (cc/gcc) on PATH")
    out = Path(tempfile.mkdtemp(prefix="liquidnode-floor-")) / "floor.so"
    cmd = [cc, "-O2", "-std=c99", "-fPIC", "-shared", f"-DN_IN={n_in}", f"-DH={h}"]
    cmd += [f"-DU={u}", f"-DP={p}", "-o", str(out), str(SOURCE), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise FloorUnavailableError(f"{' '.join(cmd)}: {proc.stderr.strip()[:300]}")
    parts = []
    for name in _ORDER:
        parts += [tensors[f"rnn_cell.{name}.weight"], tensors[f"rnn_cell.{name}.bias"]]
    parts += [tensors["fc.weight"], tensors["fc.bias"]]
    params = np.concatenate([np.asarray(a, dtype=np.float32).reshape(-1) for a in parts])
    return CFloor(ctypes.PyDLL(str(out)), params, n_in, h, p)  # GIL held, as the runtime
