"""Compiled CfC, wired CfC and LTC steps: ``cfc_kernel.c``, built with the system C compiler,
called via ctypes (the same library holds the whole policy step, see
:mod:`controller.policy_kernel`).

The numpy cells (:mod:`controller.cells.cfc`, :mod:`controller.cells.ltc`) are always there;
this module only makes the same step faster when a C compiler is available. On first use the
C source next to this file is compiled (``cc -O3 -march=native -shared -fPIC``; without
``-march=native`` where the compiler refuses it) into a per-user cache directory, keyed by a
hash of the source, the compiler, the flags and this CPU's feature flags, so a changed source
or another CPU gets its own build, and concurrent processes never see a half-written library
(it is written to a temporary name and renamed). ``-std=c99`` keeps ISO floating point (no FMA
contraction), so the native build rounds as the portable one does.

Where the library lives: ``$LIQUIDNODE_KERNEL_CACHE`` if set, else
``$XDG_CACHE_HOME/liquidnode/kernels`` (``~/.cache/liquidnode/kernels``).

The kernel is skipped (and the numpy path used) when ``LIQUIDNODE_NO_KERNEL=1`` is set, when
no compiler is found (``$CC``, ``cc``, ``gcc``, ``clang``), or when the build fails;
:func:`kernel_status` says which. Arithmetic: float32 throughout, every weighted sum in input
order with the bias last; ``exp``/``tanh``/``sigmoid`` use an inlined Cephes-style ``exp``
(within 2 ulp of libm's ``expf``) so the loops vectorise. Tests hold both paths to ncps
within 1e-5.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

SOURCE = Path(__file__).with_name("cfc_kernel.c")
CFLAGS = ("-O3", "-std=c99", "-fPIC", "-shared")
#: Tried first; a compiler that rejects it gets plain CFLAGS.
NATIVE_FLAGS = ("-march=native",)
MODES = {"default": 0, "pure": 1, "no_gate": 2}
ACTIVATIONS = {"lecun_tanh": 0, "tanh": 1, "relu": 2, "silu": 3, "gelu": 4}

_F32 = np.float32
_lib: ctypes.PyDLL | None = None
_status: str | None = None  # None: not tried yet; "ok" or the reason the kernel is off


def cache_dir() -> Path:
    """Directory that holds the compiled kernels (see module docstring)."""
    env = os.environ.get("LIQUIDNODE_KERNEL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "liquidnode" / "kernels"


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cpu_id() -> bytes:
    """This CPU's model and feature flags (Linux), so a cache shared by machines stays safe."""
    try:
        with open("/proc/cpuinfo", "rb") as f:
            lines = [ln for ln in f if ln.startswith((b"flags", b"Features", b"model name"))]
        return b"".join(sorted(set(lines)))
    except OSError:
        return platform.processor().encode()


def _build(cc: str) -> Path:
    """Compile the kernel into the cache (if not there yet) and return the library's path."""
    source = SOURCE.read_bytes()
    key = hashlib.sha256(
        source + cc.encode() + " ".join(CFLAGS + NATIVE_FLAGS).encode() + _cpu_id()
    ).hexdigest()[:16]
    target = cache_dir() / f"liquidnode_cfc_{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        errors = []
        for flags in (CFLAGS + NATIVE_FLAGS, CFLAGS):
            cmd = [cc, *flags, "-o", tmp, str(SOURCE), "-lm"]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
            if proc.returncode == 0:
                os.replace(tmp, target)
                return target
            errors.append(f"{' '.join(cmd)} failed: {proc.stderr.strip()[:300]}")
        raise OSError("; ".join(errors))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_library() -> ctypes.CDLL | None:
    """The compiled kernel library, building it on first use; None when it is off."""
    global _lib, _status
    if os.environ.get("LIQUIDNODE_NO_KERNEL", "") not in ("", "0"):
        return None
    if _status is not None:
        return _lib
    cc = _compiler()
    if cc is None:
        _status = "no C compiler found ($CC, cc, gcc, clang)"
        return None
    try:
        # PyDLL keeps the GIL across the call (a few µs, no Python API used): a CDLL call
        # would release it, and a busy background thread (log writer, link reader) could then
        # keep the control loop waiting for the GIL up to the switch interval (5 ms).
        lib = ctypes.PyDLL(str(_build(cc)))
        for fn in (lib.lnk_cfc_step, lib.lnk_ltc_step, lib.lnk_wired_step):
            fn.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_float, ctypes.c_void_p]
            fn.restype = ctypes.c_int
        lib.lnk_policy_step.argtypes = [ctypes.c_void_p] * 6 + [ctypes.c_float, ctypes.c_void_p]
        lib.lnk_policy_step.restype = ctypes.c_int
    except (OSError, subprocess.SubprocessError) as exc:
        _status = f"kernel build failed: {exc}"
        return None
    _lib, _status = lib, "ok"
    return lib


def kernel_status() -> str:
    """``"ok"`` when the compiled kernel is in use, else the reason it is not."""
    if os.environ.get("LIQUIDNODE_NO_KERNEL", "") not in ("", "0"):
        return "disabled by LIQUIDNODE_NO_KERNEL"
    load_library()
    return _status or "not loaded"


class _CompiledStep:
    """A compiled cell step bound to its packed weights and preallocated buffers.

    ``scratch`` starts with ``x`` (``input_size``) and ``h`` (``units``), which :meth:`step`
    writes before the call; ``out`` receives the new state first.
    """

    def __init__(
        self,
        fn: Any,
        dims: np.ndarray,
        params: np.ndarray,
        input_size: int,
        units: int,
        scratch_size: int,
        out_size: int,
    ) -> None:
        self.input_size, self.units = input_size, units
        self._dims = np.ascontiguousarray(dims, dtype=np.int32)
        self._params = np.ascontiguousarray(params, dtype=_F32)
        self._scratch = np.zeros(scratch_size, dtype=_F32)
        self._out = np.zeros(out_size, dtype=_F32)
        self._x = self._scratch[:input_size]
        self._h = self._scratch[input_size : input_size + units]
        self._fn = fn
        self._args = (self._dims.ctypes.data, self._params.ctypes.data, self._scratch.ctypes.data)
        self._out_ptr = self._out.ctypes.data

    def step(self, x: np.ndarray, h: np.ndarray, ts: float) -> np.ndarray:
        """Advance one step from ``x``, ``h`` and ``ts``; returns the internal ``out`` buffer."""
        self._x[:] = x
        self._h[:] = h
        d, p, s = self._args
        self._fn(d, p, s, ts, self._out_ptr)
        return self._out


class CfCKernel(_CompiledStep):
    """One CfC cell (plus an optional linear readout) bound to the compiled step.

    Build with :func:`make_cfc_kernel`. :meth:`step` takes ``x`` float ``(input_size,)``,
    ``h`` float ``(units,)`` and ``ts`` (> 0, the policy's time unit) and returns an internal
    float32 buffer ``(units + proj,)``: the new hidden state, then the readout. The buffer is
    reused by the next call; ``h`` may be that buffer.
    """

    def __init__(self, lib: ctypes.CDLL, dims: np.ndarray, params: np.ndarray) -> None:
        n_in, units, self.proj = int(dims[0]), int(dims[1]), int(dims[6])
        room = max(int(dims[3]), 4 * units)
        scratch = n_in + units + 2 * room
        super().__init__(lib.lnk_cfc_step, dims, params, n_in, units, scratch, units + self.proj)


def pack_cfc(
    config: dict[str, Any],
    tensors: dict[str, np.ndarray],
    sparsity_mask: np.ndarray | None = None,
    proj: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pack a CfC cell's ncps-named tensors into the kernel's ``(dims, params)`` layout.

    Args:
        config: ``input_size``, ``units``, ``mode``, ``activation``, ``backbone_layers``,
            ``backbone_units`` (as in :mod:`controller.cells.cfc`).
        tensors: float32 tensors named as ncps names them (torch ``Linear`` layout).
        sparsity_mask: optional 0/1 ``(units, input_size + units)`` for ``ff1``/``ff2``.
        proj: optional readout ``(weight (P, units), bias (P,))`` (ncps' ``proj_size``).
    """
    layers = int(config.get("backbone_layers", 0))
    units = int(config["units"])
    mode = config["mode"]
    dims = np.array(
        [
            int(config["input_size"]),
            units,
            layers,
            int(config.get("backbone_units") or 0) if layers else 0,
            MODES[mode],
            ACTIVATIONS[config.get("activation", "lecun_tanh")],
            0 if proj is None else int(np.shape(proj[1])[0]),
            0,
        ],
        dtype=np.int32,
    )
    t = {k: np.asarray(v, dtype=_F32) for k, v in tensors.items()}
    parts: list[np.ndarray] = []
    for i in range(layers):
        parts += [t[f"backbone.{i}.weight"].T, t[f"backbone.{i}.bias"]]
    mask = None if sparsity_mask is None else np.asarray(sparsity_mask, dtype=_F32)
    if mode == "pure":
        w = t["ff1.weight"] if mask is None else t["ff1.weight"] * mask
        parts += [w.T, t["ff1.bias"], t["w_tau"].reshape(-1), t["A"].reshape(-1)]
    else:
        ws = []
        for name in ("ff1", "ff2", "time_a", "time_b"):
            w = t[f"{name}.weight"]
            ws.append(w * mask if mask is not None and name in ("ff1", "ff2") else w)
        parts.append(np.concatenate(ws, axis=0).T)
        parts.append(np.concatenate([t[f"{n}.bias"] for n in ("ff1", "ff2", "time_a", "time_b")]))
    if proj is not None:
        parts += [np.asarray(proj[0], dtype=_F32).T, np.asarray(proj[1], dtype=_F32)]
    params = np.concatenate([np.ascontiguousarray(p, dtype=_F32).reshape(-1) for p in parts])
    return dims, params


def make_cfc_kernel(
    config: dict[str, Any],
    tensors: dict[str, np.ndarray],
    sparsity_mask: np.ndarray | None = None,
    proj: tuple[np.ndarray, np.ndarray] | None = None,
) -> CfCKernel | None:
    """A compiled step for this cell, or None when the kernel is off (see :func:`kernel_status`).

    Arguments as :func:`pack_cfc`.
    """
    lib = load_library()
    if lib is None:
        return None
    dims, params = pack_cfc(config, tensors, sparsity_mask, proj)
    return CfCKernel(lib, dims, params)


class LTCKernel(_CompiledStep):
    """One LTC cell bound to the compiled step (build with :func:`make_ltc_kernel`).

    :meth:`step` takes ``x`` float ``(input_size,)``, ``h`` float ``(units,)``, ``ts`` > 0 and
    returns an internal float32 buffer ``(units + output_dim,)``: ``v'`` then ``y``.
    """

    def __init__(self, lib: ctypes.CDLL, dims: np.ndarray, params: np.ndarray) -> None:
        n_in, units, self.output_dim = int(dims[0]), int(dims[1]), int(dims[2])
        scratch = n_in + 7 * units
        super().__init__(
            lib.lnk_ltc_step, dims, params, n_in, units, scratch, units + self.output_dim
        )


def make_ltc_kernel(
    unfolds: int,
    epsilon: float,
    input_map: tuple[np.ndarray, np.ndarray],
    sensory: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    synapses: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    leak: tuple[np.ndarray, np.ndarray, np.ndarray],
    output_map: tuple[np.ndarray, np.ndarray],
) -> LTCKernel | None:
    """A compiled LTC step, or None when the kernel is off (see :func:`kernel_status`).

    Args (float32, constraints such as softplus and the masks already applied):
        unfolds: ODE unfolds per step (>= 1).
        epsilon: added to the denominator.
        input_map: ``(input_w, input_b)``, each ``(S,)``.
        sensory: ``(mu, sigma, w * erev, w)``, each ``(S, N)`` (row = source input).
        synapses: ``(mu, sigma, w * erev, w)``, each ``(N, N)`` (row = source neuron).
        leak: ``(cm, gleak, gleak * vleak)``, each ``(N,)``.
        output_map: ``(output_w, output_b)``, each ``(M,)``.
    """
    lib = load_library()
    if lib is None:
        return None
    s, n = np.shape(sensory[0])
    m = int(np.shape(output_map[0])[0])
    dims = np.array([s, n, m, int(unfolds)], dtype=np.int32)
    parts = [*input_map, *sensory, *synapses, *leak, *output_map, np.array([epsilon])]
    params = np.concatenate([np.asarray(a, dtype=_F32).reshape(-1) for a in parts])
    return LTCKernel(lib, dims, params)


class WiredKernel(_CompiledStep):
    """A wired CfC (one :class:`CfCKernel` per NCP layer) as one compiled step.

    Same interface as :class:`CfCKernel`: :meth:`step` takes ``x`` ``(input_size,)``, ``h``
    ``(units,)`` (all layers' states in order) and ``ts``, and returns an internal float32
    buffer ``(units,)``, the new state; the output is its last ``layers[-1].units`` values.
    """

    def __init__(self, lib: ctypes.CDLL, layers: list[CfCKernel]) -> None:
        n_in = layers[0].input_size
        units = sum(k.units for k in layers)
        dims: list[int] = [len(layers), units, n_in]
        p_off, s_off, h_off = 0, n_in + units, 0
        for k in layers:
            dims += [*k._dims.tolist(), p_off, s_off, h_off]
            p_off += len(k._params)
            s_off += len(k._scratch)
            h_off += k.units
        params = np.concatenate([k._params for k in layers])
        super().__init__(lib.lnk_wired_step, np.array(dims), params, n_in, units, s_off, units)
