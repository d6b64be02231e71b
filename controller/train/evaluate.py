"""Deterministic evaluation of a runtime policy (numpy, no torch in the loop).

Each episode: ``policy.reset()``, ``env.reset(seed=seed + k)``, then per tick
``action = clip(policy.step(obs, dt), low, high)`` with ``dt`` the env's nominal control
period (seconds), until the env terminates or truncates. A policy with a latency input is told
the episode's actuation latency (0 without randomisation). This is the same computation
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


def evaluate_policy(
    policy: Policy, env_id: str, episodes: int, seed: int, randomize: str | None = None
) -> dict[str, Any]:
    """Run ``episodes`` deterministic episodes with seeds ``seed .. seed + episodes - 1``.

    With ``randomize`` (a randomisation spec preset or path) the env is randomised (seeded by
    ``seed``) and the policy is fed each tick's true period (``info["dt"]``).

    Returns:
        ``{"mean_return", "std_return", "returns", "episodes", "seed"}`` (returns are the sum of
        env rewards per episode).

    Raises:
        LiquidNodeError: unknown env id; SpaceMismatchError: the policy does not fit the env.
    """
    check_dims(env_info(env_id), policy.obs_dim, policy.act_dim, "the policy")
    kwargs: dict[str, Any] = {}
    if randomize is not None:
        kwargs = {"randomize": randomize, "randomize_seed": seed}
    env = make_env(env_id, **kwargs)
    try:
        nominal_dt = control_period(env)
        space = box_space(env.action_space, "action")
        low = np.asarray(space.low, np.float64)
        high = np.asarray(space.high, np.float64)
        returns = []
        for k in range(episodes):
            policy.reset()
            obs, _ = env.reset(seed=seed + k)
            if policy.latency_input is not None:  # told the episode's latency, as the loop does
                draw = env.get_wrapper_attr("draw") if randomize is not None else None
                policy.set_latency(0.0 if draw is None else draw.latency_s / nominal_dt)
            total, done, dt = 0.0, False, nominal_dt
            while not done:
                action = np.clip(policy.step(np.asarray(obs, np.float64), dt), low, high)
                obs, reward, terminated, truncated, info = env.step(action)
                dt = float(info.get("dt", nominal_dt))
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
