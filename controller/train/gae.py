"""Generalised advantage estimation (Schulman et al. 2016).

Conventions (time-major arrays of shape ``(T, N)`` for ``T`` steps of ``N`` environments):
``rewards[t]`` is earned by the action at step ``t``; ``values[t]`` is the critic's estimate
for the observation at step ``t``; ``dones[t]`` is 1 when the episode ended *after* step ``t``
(terminated or truncated), so nothing bootstraps across it. A truncated episode's bootstrap
``gamma * V(final_obs)`` is expected to be folded into its last reward already.
"""

from __future__ import annotations

import numpy as np


def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    dones: np.ndarray,
    last_value: np.ndarray,
    gamma: float,
    lam: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and returns (value targets).

    Args:
        rewards: ``(T, N)`` rewards.
        values: ``(T, N)`` value estimates of the observations at each step.
        dones: ``(T, N)`` 1.0 where the episode ended after that step, else 0.0.
        last_value: ``(N,)`` value of the observation that follows step ``T - 1``.
        gamma: discount factor in [0, 1].
        lam: GAE lambda in [0, 1].

    Returns:
        ``(advantages, returns)``, both float32 ``(T, N)``; ``returns = advantages + values``.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    dones = np.asarray(dones, dtype=np.float64)
    steps = rewards.shape[0]
    advantages = np.zeros_like(rewards)
    last_gae = np.zeros(rewards.shape[1:], dtype=np.float64)
    for t in reversed(range(steps)):
        next_value = np.asarray(last_value, dtype=np.float64) if t == steps - 1 else values[t + 1]
        not_done = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_value * not_done - values[t]
        last_gae = delta + gamma * lam * not_done * last_gae
        advantages[t] = last_gae
    returns = advantages + values
    return advantages.astype(np.float32), returns.astype(np.float32)
