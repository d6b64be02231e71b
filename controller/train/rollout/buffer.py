"""Rollout storage and truncated-BPTT sequence chunking.

A rollout is ``T`` steps of ``N`` environments, stored time-major ``(T, N, ...)``. Per step
``t`` the buffer holds what the actor saw and did:

| field | shape | meaning |
|---|---|---|
| ``obs`` | ``(T, N, obs_dim)`` float32 | normalised observation fed to the cell |
| ``ts`` | ``(T, N)`` float32 | cell time input, ``dt * time_scale`` (dt in s) |
| ``starts`` | ``(T, N)`` float32 | 1.0 where ``obs[t]`` is an episode's first observation |
| ``hidden`` | ``(T, N, state_dim)`` float32 | carried state, before step ``t``'s reset mask |
| ``actions`` | ``(T, N, act_dim)`` float32 | sampled action, normalised units, before clipping |
| ``logprobs`` | ``(T, N)`` float32 | log-probability of ``actions`` under the rollout policy |
| ``rewards`` | ``(T, N)`` float32 | (scaled) reward of the step, truncation bootstrap included |
| ``dones`` | ``(T, N)`` float32 | 1.0 where the episode ended after step ``t`` |
| ``values`` | ``(T, N)`` float32 | critic value of ``obs[t]`` (and ``privileged[t]``) |
| ``privileged`` | ``(T, N, k)`` float32 | the critic's privileged features (``k = 0`` without) |

The recurrent step is ``h_in = hidden[t] * (1 - starts[t])``: the state resets at episode
starts, both while acting and while re-running sequences for the update.

:func:`chunk` cuts every environment's ``T`` steps into ``T / L`` sequences of ``L`` steps; the
hidden state stored at each chunk's first step seeds that chunk's unroll (truncated BPTT).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass
class RolloutBuffer:
    """Time-major storage of one rollout; see the module docstring for the fields."""

    obs: np.ndarray
    ts: np.ndarray
    starts: np.ndarray
    hidden: np.ndarray
    actions: np.ndarray
    logprobs: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    values: np.ndarray
    privileged: np.ndarray

    @classmethod
    def empty(
        cls,
        steps: int,
        envs: int,
        obs_dim: int,
        act_dim: int,
        state_dim: int,
        privileged_dim: int = 0,
    ) -> RolloutBuffer:
        """Zero-filled float32 buffer for ``steps`` steps of ``envs`` environments."""

        def z(*shape: int) -> np.ndarray:
            return np.zeros(shape, dtype=np.float32)

        return cls(
            obs=z(steps, envs, obs_dim),
            ts=z(steps, envs),
            starts=z(steps, envs),
            hidden=z(steps, envs, state_dim),
            actions=z(steps, envs, act_dim),
            logprobs=z(steps, envs),
            rewards=z(steps, envs),
            dones=z(steps, envs),
            values=z(steps, envs),
            privileged=z(steps, envs, privileged_dim),
        )

    @property
    def steps(self) -> int:
        """Steps per environment ``T``."""
        return int(self.obs.shape[0])

    @property
    def envs(self) -> int:
        """Number of environments ``N``."""
        return int(self.obs.shape[1])

    def as_dict(self) -> dict[str, np.ndarray]:
        """The stored arrays by field name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def chunk(array: np.ndarray, seq_len: int) -> np.ndarray:
    """Cut a time-major ``(T, N, ...)`` array into ``(N * T / seq_len, seq_len, ...)`` sequences.

    Sequence ``c * N + n`` is environment ``n``'s steps ``c * seq_len .. (c + 1) * seq_len - 1``.

    Raises:
        ValueError: ``T`` is not a multiple of ``seq_len``.
    """
    steps, envs = array.shape[:2]
    if steps % seq_len:
        raise ValueError(f"rollout length {steps} is not a multiple of seq_len {seq_len}")
    rest = array.shape[2:]
    out = array.reshape(steps // seq_len, seq_len, envs, *rest)
    out = np.swapaxes(out, 1, 2)  # (chunks, N, L, ...)
    return out.reshape(steps // seq_len * envs, seq_len, *rest)  # explicit: rest may hold a 0


def chunk_start_states(hidden: np.ndarray, seq_len: int) -> np.ndarray:
    """Hidden state at the first step of every sequence of :func:`chunk`, ``(S, state_dim)``."""
    steps = hidden.shape[0]
    if steps % seq_len:
        raise ValueError(f"rollout length {steps} is not a multiple of seq_len {seq_len}")
    starts = hidden[::seq_len]
    return starts.reshape(starts.shape[0] * starts.shape[1], hidden.shape[-1])


def sequences(buffer: RolloutBuffer, seq_len: int, **extra: np.ndarray) -> dict[str, np.ndarray]:
    """Every buffer field (plus ``extra`` time-major arrays such as advantages) chunked into
    sequences, and ``h0``: the stored hidden state at each sequence's start."""
    out = {name: chunk(arr, seq_len) for name, arr in {**buffer.as_dict(), **extra}.items()}
    out["h0"] = chunk_start_states(buffer.hidden, seq_len)
    del out["hidden"]
    return out
