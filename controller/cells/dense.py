"""What the baseline cells (LSTM, GRU, MLP) share: config and tensor checks, weight loading,
the gated cells' tensor layout, fused dense layers.

A fused layer is the transposed weight with the bias appended as the last row,
``[W^T; b]`` float32 C-contiguous ``(in + 1, out)``, so that ``[a, 1] @ it = W a + b`` is one
``np.dot`` into a preallocated buffer.
"""

from __future__ import annotations

from collections.abc import Callable
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


def load_weights(
    config: dict[str, Any],
    tensors: dict[str, np.ndarray],
    check_config: Callable[[dict[str, Any]], list[str]],
    tensor_shapes: Callable[[dict[str, Any]], dict[str, tuple[int, ...]]],
) -> dict[str, np.ndarray]:
    """float32 copies of a cell's ``tensors``, checked against its ``config``.

    Args:
        config: the cell config.
        tensors: the cell's tensors by name (without the ``cell.`` prefix).
        check_config: the cell module's config check (problems, empty when well formed).
        tensor_shapes: the cell module's tensor names and shapes for a well-formed config.

    Raises:
        ValueError: the config's problems joined by ``"; "``, or a missing / misshapen tensor.
    """
    problems = check_config(config)
    if problems:
        raise ValueError("; ".join(problems))
    return checked_tensors(tensors, tensor_shapes(config))


def gated_tensor_shapes(config: dict[str, Any], gates: int) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a torch ``GRUCell`` / ``LSTMCell`` with ``gates`` gates.

    ``weight_ih`` ``(gates * units, input_size)``, ``weight_hh`` ``(gates * units, units)``,
    ``bias_ih`` and ``bias_hh`` ``(gates * units,)``; the gates stacked in torch's order.
    """
    n_in, units = int(config["input_size"]), int(config["units"])
    return {
        "weight_ih": (gates * units, n_in),
        "weight_hh": (gates * units, units),
        "bias_ih": (gates * units,),
        "bias_hh": (gates * units,),
    }


def copies(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A copy of every tensor of ``tensors`` (what a cell's ``weights()`` hands out)."""
    return {k: v.copy() for k, v in tensors.items()}


def fused(weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``[weight^T; bias]``, float32 C-contiguous ``(in + 1, out)``: ``[a, 1] @ it = W a + b``."""
    return np.ascontiguousarray(np.concatenate([weight.T, bias[None, :]], axis=0), dtype=F32)
