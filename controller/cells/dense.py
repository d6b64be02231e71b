"""What the baseline cells (LSTM, GRU, MLP) share: config and tensor checks, fused dense layers.

A fused layer is the transposed weight with the bias appended as the last row,
``[W^T; b]`` float32 C-contiguous ``(in + 1, out)``, so that ``[a, 1] @ it = W a + b`` is one
``np.dot`` into a preallocated buffer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

F32 = np.float32


def is_int(value: Any, minimum: int) -> bool:
    """True for an int (not a bool) ``>= minimum``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def int_problems(config: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    """One problem per key of ``config`` that is not an integer >= 1."""
    return [
        f"cell.{key} must be an integer >= 1, got {config.get(key)!r}"
        for key in keys
        if not is_int(config.get(key), 1)
    ]


def checked_tensors(
    tensors: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]
) -> dict[str, np.ndarray]:
    """float32 copies of ``tensors``.

    Raises:
        ValueError: a tensor of ``shapes`` is missing or has another shape (named).
    """
    out = {k: np.array(v, dtype=F32) for k, v in tensors.items()}
    for name, shape in shapes.items():
        if name not in out or out[name].shape != shape:
            got = None if name not in out else out[name].shape
            raise ValueError(f"tensor {name!r} must have shape {shape}, got {got}")
    return out


def fused(weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``[weight^T; bias]``, float32 C-contiguous ``(in + 1, out)``: ``[a, 1] @ it = W a + b``."""
    return np.ascontiguousarray(np.concatenate([weight.T, bias[None, :]], axis=0), dtype=F32)
