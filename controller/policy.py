"""The policy: normalise the observation, step the liquid cell, map its output to an action.

``Policy.step(obs, dt)`` computes, with the state carried inside (constant memory)::

    x = clip((obs - obs_mean) / obs_std, -clip, clip)       # float32 (obs_dim,)
    y, state = cell.step(x, state, ts=dt * time_scale)      # float32 (act_dim,)
    action = action_offset + action_scale * squash(y)       # float64 (act_dim,), env units

A policy with *action feedback* (metadata ``action.feedback: true``) also sees its own previous
command: its cell's input is ``[x, a_prev]`` (``input_size = obs_dim + act_dim``), with
``a_prev = squash(y)`` of the previous tick (normalised units, in [-1, 1] under ``tanh``; zeros
after ``reset``). Under actuation latency that is the command still in flight, which a
controller needs to know (an LQR for a delayed plant feeds it back); a recurrent state could
carry it, but learns to do so poorly (``policies/README.md``, the double pendulum). The feedback is
part of :attr:`Policy.state` (``act_dim`` values after the cell's), so a copy steps exactly the
same.

A policy with an *action low-pass* (metadata ``action.low_pass_hz``;
:mod:`controller.action_filter`) filters the squashed action before the mapping::

    z = z_prev + alpha(dt) * (squash(y) - z_prev)           # float64 (act_dim,), [-1, 1]
    action = action_offset + action_scale * z

``z_prev`` is the previous filtered command in normalised units (zeros after ``reset``: the
action space's centre). ``z`` is part of :attr:`Policy.state` (its last ``act_dim`` values);
feedback, where there is some, is the squashed action before the filter.

A policy with a *latency input* (metadata ``latency_input``; :mod:`controller.latency_input`) is
also told the plant's actuation latency: its cell's input is ``[x, ell]`` (``[x, ell, a_prev]``
with feedback), ``ell`` the normalised latency set by :meth:`Policy.set_latency` (0 control
periods until then; the control loop sets it at every episode start).

``obs`` is in env units (order of the metadata's ``observation_space.names``), ``dt`` is the
measured time since the previous tick in seconds (> 0), ``action`` is in env units, *before*
the safety layer clamps it. The runtime is numpy only; it never imports torch.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from liquidnode.controller import cells
from liquidnode.controller.action_filter import LowPass
from liquidnode.controller.errors import PolicyFileError, SpaceMismatchError
from liquidnode.controller.latency_input import LatencyInput
from liquidnode.controller.policy_file import PolicyMetadata, read_policy_file, write_policy_file
from liquidnode.controller.policy_kernel import make_policy_kernel

_INF = math.inf


class Policy:
    """A liquid policy with its hidden state.

    Attributes:
        metadata: the file's :class:`~controller.policy_file.PolicyMetadata`.
        obs_dim: observation length.
        act_dim: action length.
        state_dim: hidden-state length (see the cell's docstring for the layout; with action
            feedback, ``act_dim`` more: the previous squashed action; with an action low-pass,
            ``act_dim`` more: the previous filtered command, normalised units).
        feedback: whether the cell also gets the previous squashed action (``action.feedback``).
        latency_input: how the actuation latency is fed to the cell, or None when it is not
            (``latency_input`` in the metadata).
        low_pass: the action filter (:class:`controller.action_filter.LowPass`), or None
            (``action.low_pass_hz`` in the metadata).
        cell: the numpy cell (:class:`controller.cells.Cell`).
    """

    def __init__(
        self,
        metadata: PolicyMetadata,
        cell: cells.Cell,
        obs_mean: np.ndarray | None = None,
        obs_std: np.ndarray | None = None,
        action_scale: np.ndarray | None = None,
        action_offset: np.ndarray | None = None,
    ) -> None:
        """Assemble a policy; normalisation and action mapping default to the identity."""
        self.metadata = metadata
        self.cell = cell
        self.obs_dim = int(metadata.obs_dim)
        self.act_dim = int(metadata.act_dim)
        self.feedback = bool(metadata.action.get("feedback", False))
        self.latency_input = LatencyInput.from_metadata(metadata.latency_input)
        n_fb = self.act_dim if self.feedback else 0
        n_lat = 1 if self.latency_input is not None else 0
        cutoff = metadata.action.get("low_pass_hz")
        n_lp = 0 if cutoff is None else self.act_dim
        self.state_dim = int(cell.state_dim) + n_fb + n_lp
        if cell.input_size != self.obs_dim + n_lat + n_fb or cell.output_dim != self.act_dim:
            raise SpaceMismatchError(
                f"cell maps {cell.input_size} -> {cell.output_dim} values but metadata says "
                f"obs_dim {self.obs_dim}, act_dim {self.act_dim}"
                + (" with a latency input" if n_lat else "")
                + (" with action feedback" if self.feedback else "")
            )

        def vec(value: np.ndarray | None, dim: int, fill: float) -> np.ndarray:
            out = np.full(dim, fill, np.float32) if value is None else np.asarray(value, np.float32)
            return out.reshape(dim).copy()

        self.obs_mean = vec(obs_mean, self.obs_dim, 0.0)
        self.obs_std = vec(obs_std, self.obs_dim, 1.0)
        self.action_scale = vec(action_scale, self.act_dim, 1.0)
        self.action_offset = vec(action_offset, self.act_dim, 0.0)
        # float64 working copies: normalisation runs in float64, the cell in float32
        self._mean64 = self.obs_mean.astype(np.float64)
        self._inv_std64 = 1.0 / self.obs_std.astype(np.float64)
        self._scale64 = self.action_scale.astype(np.float64)
        self._offset64 = self.action_offset.astype(np.float64)
        self.low_pass = None if cutoff is None else LowPass(cutoff, np.zeros(self.act_dim))
        clip = metadata.normalization.get("clip")
        big = float(np.finfo(np.float32).max)  # a clip beyond float32's range clips nothing
        self._clip = _INF if clip is None or clip >= big else float(clip)
        self._tanh = metadata.action.get("squash", "none") == "tanh"
        self._time_scale = float(metadata.time_scale)
        self._obs_shape = (self.obs_dim,)
        self._norm = np.zeros(self.obs_dim, np.float64)
        # fast paths: skip the arithmetic that is the identity
        self._plain_obs = not (np.any(self.obs_mean) or np.any(self.obs_std != 1))
        self._plain_act = not (np.any(self.action_scale != 1) or np.any(self.action_offset))
        self._x = np.zeros(self.obs_dim + n_lat + n_fb, np.float32)
        self._xo = self._x[: self.obs_dim]  # the normalised observation
        self._lat = self._x[self.obs_dim : self.obs_dim + n_lat]  # the normalised latency
        self._fb = self._x[self.obs_dim + n_lat :]  # the previous squashed action (feedback)
        self._latency_ticks = 0.0
        if self.latency_input is not None:
            self.set_latency(0.0)
        # the whole step compiled where the cell has a kernel (controller/policy_kernel.py);
        # with feedback, a latency input or a low-pass the numpy step runs (the kernel has none)
        self._fused = (
            None
            if self.feedback or n_lat or n_lp
            else make_policy_kernel(
                cell,
                self._mean64,
                self._inv_std64,
                self._clip,
                self._scale64,
                self._offset64,
                normalise=not self._plain_obs,
                tanh=self._tanh,
                affine=not self._plain_act,
            )
        )
        if self._fused is None:
            self._own = np.zeros(int(cell.state_dim), np.float32)
        else:  # the state lives in the compiled step's buffers
            self._own = self._fused.state
        self._h = self._own

    # ----------------------------------------------------------------- files
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Policy:
        """Load a policy file; raises PolicyFileError naming the problem and the path."""
        meta, tensors = read_policy_file(path)
        try:
            return cls.from_tensors(meta, tensors)
        except (ValueError, KeyError) as exc:
            raise PolicyFileError(f"policy file {path}: {exc}") from None

    @classmethod
    def from_tensors(cls, metadata: PolicyMetadata, tensors: dict[str, np.ndarray]) -> Policy:
        """A policy from its metadata and the tensors of a policy file (see :meth:`tensors`).

        Raises:
            ValueError, KeyError: the tensors do not fit the cell config.
        """
        cell_tensors = {k[5:]: v for k, v in tensors.items() if k.startswith("cell.")}
        return cls(
            metadata,
            cells.build_cell(metadata.cell, cell_tensors),
            tensors["obs_mean"],
            tensors["obs_std"],
            tensors["action_scale"],
            tensors["action_offset"],
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle and ``copy.deepcopy`` as metadata, tensors and state (the compiled buffers
        are rebuilt, never copied), so a copy steps independently of the original."""
        command = None if self.low_pass is None else self.low_pass.command.copy()
        return (
            _rebuild,
            (self.metadata, self.tensors(), self.state, self._latency_ticks, command),
        )

    def tensors(self) -> dict[str, np.ndarray]:
        """Every tensor of the policy file (``cell.``-prefixed cell weights included)."""
        out = {
            "obs_mean": self.obs_mean.copy(),
            "obs_std": self.obs_std.copy(),
            "action_scale": self.action_scale.copy(),
            "action_offset": self.action_offset.copy(),
        }
        out.update({f"cell.{k}": v for k, v in self.cell.weights().items()})
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the policy to a safetensors policy file (atomically)."""
        write_policy_file(path, self.metadata, self.tensors())

    # ----------------------------------------------------------------- running
    @property
    def is_trained(self) -> bool:
        """False when the provenance says ``"trained": false`` (e.g. a random placeholder)."""
        return bool(self.metadata.provenance.get("trained", True))

    @property
    def state(self) -> np.ndarray:
        """Hidden state, float32 ``(state_dim,)`` (a copy); setting copies the value in.

        After the cell's state: with action feedback the previous squashed action
        (``act_dim``), then with an action low-pass the previous filtered command (``act_dim``,
        normalised units, rounded to float32; pickling and ``copy.deepcopy`` keep its float64).
        """
        parts = [self._h, self._fb]
        if self.low_pass is not None:
            parts.append(self.low_pass.command.astype(np.float32))
        return np.concatenate(parts)

    @state.setter
    def state(self, value: np.ndarray) -> None:
        arr = np.asarray(value, dtype=np.float32)
        if arr.shape != (self.state_dim,):
            raise SpaceMismatchError(
                f"state shape {arr.shape} does not match the policy's ({self.state_dim},)"
            )
        n_cell, n_fb = self._own.shape[0], self._fb.shape[0]
        self._own[:] = arr[:n_cell]
        self._fb[:] = arr[n_cell : n_cell + n_fb]
        if self.low_pass is not None:
            self.low_pass.command[:] = arr[n_cell + n_fb :]
        self._h = self._own

    @property
    def latency_ticks(self) -> float:
        """The actuation latency the policy is told, control periods (see :meth:`set_latency`)."""
        return self._latency_ticks

    def set_latency(self, latency_ticks: float) -> None:
        """Tell a policy with a latency input its plant's actuation latency.

        Args:
            latency_ticks: control periods (finite, >= 0; clipped to the trained range as the
                metadata says). Kept across :meth:`reset` until set again.

        Raises:
            ValueError: the policy has no latency input, or the value is negative or not finite.
        """
        if self.latency_input is None:
            raise ValueError("this policy has no latency input (metadata latency_input is null)")
        self._lat[0] = self.latency_input.normalise(float(latency_ticks))
        self._latency_ticks = float(latency_ticks)

    def reset(self) -> None:
        """Hidden state := zeros, the action filter := neutral (start of an episode); a told
        latency is kept."""
        self._own.fill(0.0)
        self._fb.fill(0.0)
        if self.low_pass is not None:
            self.low_pass.reset()
        self._h = self._own

    def step(self, obs: np.ndarray, dt: float) -> np.ndarray:
        """One tick: ``obs`` float ``(obs_dim,)`` env units, ``dt`` seconds > 0.

        Returns the action, a new float64 array ``(act_dim,)`` in env units (not clamped).
        Raises SpaceMismatchError on a wrong observation shape and ValueError on a bad ``dt``.
        """
        if np.shape(obs) != self._obs_shape:
            raise SpaceMismatchError(
                f"observation shape {np.shape(obs)} does not match the policy's ({self.obs_dim},)"
            )
        if not 0.0 < dt < _INF:
            raise ValueError(f"dt must be a finite number of seconds > 0, got {dt!r}")
        fused = self._fused
        if fused is not None:
            fused.obs[:] = obs
            fused.step(dt * self._time_scale)
            return fused.action.copy()
        x = self._xo
        if self._plain_obs:
            x[...] = obs
        else:  # (obs - mean) / std in float64, rounded once into the float32 input
            np.subtract(obs, self._mean64, out=self._norm)
            np.multiply(self._norm, self._inv_std64, out=x)
        if self._clip != _INF:
            np.minimum(x, self._clip, out=x)
            np.maximum(x, -self._clip, out=x)
        y, self._h = self.cell.step(self._x, self._h, dt * self._time_scale)
        action = np.tanh(y, dtype=np.float64) if self._tanh else y.astype(np.float64)
        if self.feedback:
            self._fb[:] = action
        if self.low_pass is not None:
            action = self.low_pass.step(action, dt)
        if not self._plain_act:
            action *= self._scale64
            action += self._offset64
        return action


def _rebuild(
    metadata: PolicyMetadata,
    tensors: dict[str, np.ndarray],
    state: np.ndarray,
    latency_ticks: float = 0.0,
    command: np.ndarray | None = None,
) -> Policy:
    """Inverse of :meth:`Policy.__reduce__`."""
    policy = Policy.from_tensors(metadata, tensors)
    policy.state = state
    if policy.low_pass is not None and command is not None:
        policy.low_pass.command[:] = command  # float64, not the state's float32
    if policy.latency_input is not None:
        policy.set_latency(latency_ticks)
    return policy


def random_policy(
    obs_dim: int,
    act_dim: int,
    *,
    cell: str = "cfc",
    units: int = 16,
    seed: int = 0,
    obs_mean: np.ndarray | None = None,
    obs_std: np.ndarray | None = None,
    action_scale: np.ndarray | None = None,
    action_offset: np.ndarray | None = None,
    **meta: Any,
) -> Policy:
    """A randomly initialised policy (numpy only), for tests and placeholders.

    Args:
        obs_dim: observation length.
        act_dim: action length.
        cell: ``"cfc"`` (with ``proj_size=act_dim`` unless ``units == act_dim``; extra cell
            options via ``cell_options={"mode": ..., "backbone_units": ...}``), ``"wired_cfc"``
            or ``"ltc"`` (AutoNCP wiring of ``units`` neurons, ``act_dim`` motor neurons;
            ``units`` must exceed ``act_dim + 2``; ``"ltc_fc"`` = fully connected LTC), or a
            baseline with a linear readout to ``act_dim``: ``"lstm"`` (state ``[h | c]``),
            ``"gru"``, ``"mlp"`` (``cell_options={"frames": k, "hidden_layers": n}``).
        units: number of hidden units / neurons.
        seed: seed of the weights (and of the wiring).
        obs_mean, obs_std, action_scale, action_offset: as in :class:`Policy` (identity if None).
        **meta: further :class:`PolicyMetadata` fields (``env_id``, ``time_scale``,
            ``control_rate_hz``, ``action_space``, ``provenance``, ...); with
            ``action={"feedback": True, ...}`` the cell gets ``obs_dim + act_dim`` inputs,
            with ``latency_input={...}`` one more.
    """
    from liquidnode.controller.cells import random_init

    options = dict(meta.pop("cell_options", {}) or {})
    n_in = obs_dim + (act_dim if (meta.get("action") or {}).get("feedback") else 0)
    n_in += meta.get("latency_input") is not None
    config, tensors = random_init.random_cell(cell, n_in, act_dim, units, seed, **options)
    meta.setdefault("provenance", {"trained": False, "note": "random weights", "seed": seed})
    metadata = PolicyMetadata(cell=config, obs_dim=obs_dim, act_dim=act_dim, **meta)
    cell_obj = cells.build_cell(config, tensors)
    return Policy(metadata, cell_obj, obs_mean, obs_std, action_scale, action_offset)
