"""Feed-forward (MLP) cell in numpy, optionally over stacked observation frames.

A baseline against the liquid cells: it runs in the same policy, loop and safety layer. One
step maps ``(x, state, ts) -> (y, state')``; ``ts`` is accepted and ignored:

- ``x``: float32 ``(input_size,)``, the (normalised) inputs.
- ``state``: float32 ``((frames - 1) * input_size,)``, the previous ``frames - 1`` inputs,
  newest first: ``[x_{t-1} | x_{t-2} | ...]``; empty for ``frames = 1`` (a memoryless MLP).
  All zeros at episode start (the frames before the first one read as zeros).
- ``y``: float32 ``(hidden_units[-1],)``, the last hidden layer's activations (a ``proj_size``
  in the config adds the linear output layer to ``proj_size`` outputs, see
  :mod:`controller.cells`); ``state'`` = ``[x_t | x_{t-1} | ...]`` (the oldest frame dropped).

The network reads ``[x_t | x_{t-1} | ... | x_{t-frames+1}]`` (``frames * input_size``) through
``len(hidden_units)`` dense layers ``a <- act(W a + b)`` with ``activation`` ``tanh`` or
``relu``.

Tensors (torch ``nn.Linear`` layout): ``layers.{i}.weight`` ``(hidden_units[i], width_i)`` and
``layers.{i}.bias`` ``(hidden_units[i],)``, ``width_0 = frames * input_size``,
``width_i = hidden_units[i - 1]``.

The step is allocation-free (fused weights with the bias as last row, preallocated buffers);
the returned arrays are internal buffers, valid until the next call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from liquidnode.controller.cells.dense import F32 as _F32
from liquidnode.controller.cells.dense import copies, fused, int_problems, is_int, load_weights

ACTIVATIONS = ("tanh", "relu")
MAX_LAYERS = 64  # sanity bound on len(hidden_units) (a file cannot make us loop for ever)
MAX_FRAMES = 1000


def check_config(config: dict[str, Any]) -> list[str]:
    """Problems with an ``mlp`` cell config (empty list when it is well formed)."""
    problems = int_problems(config, ("input_size", "frames"))
    hidden = config.get("hidden_units")
    if (
        not isinstance(hidden, list)
        or not 1 <= len(hidden) <= MAX_LAYERS
        or not all(is_int(v, 1) for v in hidden)
    ):
        problems.append(
            f"cell.hidden_units must be a list of 1..{MAX_LAYERS} integers >= 1, got {hidden!r}"
        )
    if is_int(config.get("frames"), 1) and config["frames"] > MAX_FRAMES:
        problems.append(f"cell.frames {config['frames']} exceeds the limit {MAX_FRAMES}")
    if config.get("activation") not in ACTIVATIONS:
        problems.append(
            f"cell.activation must be one of {ACTIVATIONS}, got {config.get('activation')!r}"
        )
    return problems


def tensor_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the float32 tensors an ``mlp`` cell needs."""
    width = int(config["frames"]) * int(config["input_size"])
    shapes: dict[str, tuple[int, ...]] = {}
    for i, units in enumerate(config["hidden_units"]):
        shapes[f"layers.{i}.weight"] = (int(units), width)
        shapes[f"layers.{i}.bias"] = (int(units),)
        width = int(units)
    return shapes


def state_dim(config: dict[str, Any]) -> int:
    """Length of the state (the stacked previous inputs): ``(frames - 1) * input_size``."""
    return (int(config["frames"]) - 1) * int(config["input_size"])


def output_dim(config: dict[str, Any]) -> int:
    """Length of the cell's own output: ``hidden_units[-1]``."""
    return int(config["hidden_units"][-1])


def _activation(name: str) -> Callable[[np.ndarray], None]:
    if name == "tanh":
        return lambda buf: np.tanh(buf, out=buf)
    zero = _F32(0.0)
    return lambda buf: np.maximum(buf, zero, out=buf)


class MLPCell:
    """Numpy MLP cell over ``frames`` stacked inputs (see the module docstring).

    Attributes:
        input_size: length of ``x``.
        frames: inputs the network sees (the current one and ``frames - 1`` previous ones).
        state_dim: ``(frames - 1) * input_size``.
        output_dim: ``hidden_units[-1]``.
    """

    def __init__(self, config: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        """Build from an ``mlp`` config (``input_size``, ``hidden_units``, ``activation``,
        ``frames``) and its float32 tensors.

        Raises:
            ValueError: a bad config or a missing / misshapen tensor, naming it.
        """
        self._tensors = load_weights(config, tensors, check_config, tensor_shapes)
        self.config = dict(config)
        self.input_size = n_in = int(config["input_size"])
        self.frames = int(config["frames"])
        self.state_dim = state_dim(config)
        self.output_dim = output_dim(config)
        t = self._tensors
        # [x_t | x_{t-1} | ... | 1]: the previous frames sit right after the current input
        self._in = np.zeros(self.frames * n_in + 1, dtype=_F32)
        self._in[-1] = 1.0
        self._x = self._in[:n_in]
        self._prev = self._in[n_in:-1]
        self._keep = self._in[: self.state_dim]  # the frames the next step still sees
        self._state = np.zeros(self.state_dim, dtype=_F32)
        self._layers: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for i in range(len(config["hidden_units"])):
            buf = np.ones(t[f"layers.{i}.bias"].shape[0] + 1, dtype=_F32)
            wt = fused(t[f"layers.{i}.weight"], t[f"layers.{i}.bias"])
            self._layers.append((wt, buf, buf[:-1]))
        self._y = self._layers[-1][2]
        self._act = _activation(str(config["activation"]))

    def weights(self) -> dict[str, np.ndarray]:
        """The float32 tensors as stored in a policy file (torch ``Linear`` layout)."""
        return copies(self._tensors)

    def step(self, x: np.ndarray, h: np.ndarray, ts: float) -> tuple[np.ndarray, np.ndarray]:
        """One forward pass (``ts`` ignored); returns ``(y (output_dim,), state' (state_dim,))``."""
        self._prev[...] = h
        self._x[...] = x
        a = self._in
        for wt, buf, act in self._layers:
            np.dot(a, wt, out=act)
            self._act(act)
            a = buf
        self._state[...] = self._keep
        return self._y, self._state
