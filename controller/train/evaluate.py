"""Deterministic evaluation of a runtime policy (numpy, no torch in the loop).

Each episode: ``policy.reset()``, ``env.reset(seed=seed + k)``, then per tick
``action = clip(policy.step(obs, dt), low, high)`` with ``dt`` the env's nominal control
period (seconds), until the env terminates or truncates. This is the same computation
``liquidnode eval`` performs in its fast mode, kept here so training has no dependency on the
control loop.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liquidnode.controller.policy import Policy
from liquidnode.controller.train.envs import (
    box_space,
    check_dims,
    control_period,
    env_info,
    make_env,
)


def evaluate_policy(policy: Policy, env_id: str, episodes: int, seed: int) -> dict[str, Any]:
    """Run ``episodes`` deterministic episodes with seeds ``seed .. seed + episodes - 1``.

    Returns:
        ``{"mean_return", "std_return", "returns", "episodes", "seed"}`` (returns are the sum of
        env rewards per episode).

    Raises:
        LiquidNodeError: unknown env id; SpaceMismatchError: the policy does not fit the env.
    """
    check_dims(env_info(env_id), policy.obs_dim, policy.act_dim, "the policy")
    env = make_env(env_id)
    try:
        dt = control_period(env)
        space = box_space(env.action_space, "action")
        low = np.asarray(space.low, np.float64)
        high = np.asarray(space.high, np.float64)
        returns = []
        for k in range(episodes):
            policy.reset()
            obs, _ = env.reset(seed=seed + k)
            total, done = 0.0, False
            while not done:
                action = np.clip(policy.step(np.asarray(obs, np.float64), dt), low, high)
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    finally:
        env.close()
    arr = np.asarray(returns)
    return {
        "mean_return": float(arr.mean()),
        "std_return": float(arr.std()),
        "returns": [round(r, 3) for r in returns],
        "episodes": episodes,
        "seed": seed,
    }
