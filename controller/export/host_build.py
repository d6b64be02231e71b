"""Compile an exported C policy on this machine and step it from Python (checks and tests).

:class:`CompiledPolicy` builds ``<prefix>.c`` with the host C compiler
(``-std=c99 -Wall -Wextra -Werror -O2``) together with a small harness into a shared library
and loads it with ctypes. It behaves like a :class:`~controller.policy.Policy` where the loop
needs it (``obs_dim``, ``act_dim``, ``state_dim``, ``reset``, ``step``, ``state``, ``metadata``),
so the generated code can be run in a closed loop, and :meth:`run` steps a whole sequence in
one call.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from liquidnode.controller.export.lowering import ExportError

WARN_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror")

_HARNESS = """\
#include "{p}.h"
static {p}_state ln_h;
void ln_h_reset(void) {{ {p}_reset(&ln_h); }}
int ln_h_step(const float *obs, float dt, float *action) {{
#ifdef {P}_FIXED_DT_US
    return {p}_step(&ln_h, obs, dt, action);
#else
    {p}_step(&ln_h, obs, dt, action);
    return 0;
#endif
}}
void ln_h_read(float *h) {{ {p}_state_read(&ln_h, h); }}
void ln_h_write(const float *h) {{ {p}_state_write(&ln_h, h); }}
unsigned long ln_h_state_bytes(void) {{ return (unsigned long)sizeof(ln_h); }}
int ln_h_run(int n, const float *obs, const float *dt, float *action, float *states) {{
    int k;
    for (k = 0; k < n; ++k) {{
        if (ln_h_step(obs + k * {P}_OBS_DIM, dt[k], action + k * {P}_ACT_DIM) != 0) return k;
        {p}_state_read(&ln_h, states + k * {P}_STATE_DIM);
    }}
    return n;
}}
"""


def compiler() -> str:
    """The host C compiler (``cc`` or ``gcc``); ExportError when there is none."""
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return path
    raise ExportError("no C compiler found (cc, gcc, clang) to build the exported C")


class CompiledPolicy:
    """An exported C policy built for the host.

    Args:
        out_dir: the export's directory (holds ``<prefix>.h`` and ``<prefix>.c``).
        prefix: the export's C prefix.
        obs_dim, act_dim, state_dim: the policy's sizes.
        metadata: the original policy's metadata (kept for code that reads it).
    """

    def __init__(
        self,
        out_dir: str | Path,
        prefix: str,
        obs_dim: int,
        act_dim: int,
        state_dim: int,
        metadata: Any = None,
    ) -> None:
        self.obs_dim, self.act_dim, self.state_dim = obs_dim, act_dim, state_dim
        self.metadata = metadata
        out = Path(out_dir)
        self._tmp = tempfile.TemporaryDirectory(prefix="liquidnode-export-")
        build = Path(self._tmp.name)
        harness = build / "harness.c"
        harness.write_text(_HARNESS.format(p=prefix, P=prefix.upper()))
        lib = build / f"lib{prefix}.so"
        cmd = [
            compiler(),
            *WARN_FLAGS,
            "-O2",
            "-shared",
            "-fPIC",
            f"-I{out}",
            "-o",
            str(lib),
            str(harness),
            str(out / f"{prefix}.c"),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            raise ExportError(f"{' '.join(cmd)} failed: {proc.stderr.strip()[:2000]}")
        self._lib = ctypes.CDLL(str(lib))
        f = ctypes.c_float
        self._lib.ln_h_step.argtypes = [ctypes.c_void_p, f, ctypes.c_void_p]
        self._lib.ln_h_read.argtypes = [ctypes.c_void_p]
        self._lib.ln_h_write.argtypes = [ctypes.c_void_p]
        self._lib.ln_h_run.argtypes = [ctypes.c_int, *([ctypes.c_void_p] * 4)]
        self._lib.ln_h_state_bytes.restype = ctypes.c_ulong
        self._obs = np.zeros(obs_dim, np.float32)
        self._act = np.zeros(act_dim, np.float32)
        self.reset()

    @property
    def state_bytes(self) -> int:
        """``sizeof`` the generated state struct on the host (state plus scratch)."""
        return int(self._lib.ln_h_state_bytes())

    def reset(self) -> None:
        """Hidden state := zeros."""
        self._lib.ln_h_reset()

    def step(self, obs: np.ndarray, dt: float) -> np.ndarray:
        """One generated ``<prefix>_step``; returns the action as float64 ``(act_dim,)``.

        Raises:
            ExportError: the export is specialised for another control period (its step
                refused ``dt``; the state is unchanged).
        """
        self._obs[:] = obs
        if self._lib.ln_h_step(self._obs.ctypes.data, float(dt), self._act.ctypes.data) != 0:
            raise self._refused(float(dt))
        return self._act.astype(np.float64)

    def _refused(self, dt: float) -> ExportError:
        return ExportError(
            f"the export's step is specialised for one control period (its header's "
            f"FIXED_DT_S) and refused dt = {dt:g} s; export without a fixed dt to step with "
            "another dt"
        )

    @property
    def state(self) -> np.ndarray:
        """The hidden state as float32 ``(state_dim,)`` (``<prefix>_state_read``)."""
        h = np.zeros(self.state_dim, np.float32)
        self._lib.ln_h_read(h.ctypes.data)
        return h

    @state.setter
    def state(self, value: np.ndarray) -> None:
        h = np.ascontiguousarray(value, np.float32).reshape(self.state_dim)
        self._lib.ln_h_write(h.ctypes.data)

    def run(self, obs: np.ndarray, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Step through ``obs`` ``(n, obs_dim)`` with ``dt`` ``(n,)`` from the current state.

        Returns ``(actions (n, act_dim), states (n, state_dim))``, float32.
        """
        obs = np.ascontiguousarray(obs, np.float32)
        dt = np.ascontiguousarray(dt, np.float32)
        n = len(dt)
        act = np.zeros((n, self.act_dim), np.float32)
        states = np.zeros((n, self.state_dim), np.float32)
        done = self._lib.ln_h_run(
            n, obs.ctypes.data, dt.ctypes.data, act.ctypes.data, states.ctypes.data
        )
        if done != n:
            raise self._refused(float(dt[done]))
        return act, states
