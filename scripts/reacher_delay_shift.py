"""How much of Reacher's return a whole tick of actuation latency must cost, at least roughly.

A command that lands one tick late shifts the policy's whole reach one tick later: the
distance term of tick t becomes that of tick t-1, so a one-tick-late copy of the nominal reach
returns about ``nominal - d_first + d_last`` (``d``: fingertip-target distance, m). This
script runs the policy nominally on the stress seeds (the runtime, no torch) and prints that
estimate and the share of the nominal return it retains (returns are negative: nominal /
shifted).

Usage::

    python scripts/reacher_delay_shift.py [--policy policies/Reacher-v5-cfc.safetensors]
        [--episodes 50] [--seed 2000000]
"""

from __future__ import annotations

import argparse

import numpy as np

from liquidnode import Policy
from liquidnode.sim import make_env


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--policy", default="policies/Reacher-v5-cfc.safetensors")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=2_000_000, help="first reset seed (stress's)")
    args = p.parse_args()
    policy = Policy.load(args.policy)
    env = make_env("Reacher-v5")
    dt = float(env.unwrapped.dt)
    returns, first, last = [], [], []
    for seed in range(args.seed, args.seed + args.episodes):
        obs, _ = env.reset(seed=seed)
        policy.reset()
        first.append(float(np.linalg.norm(obs[8:10])))  # fingertip - target, x and y
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy.step(obs, dt))
            total += float(reward)
            done = terminated or truncated
        last.append(float(np.linalg.norm(obs[8:10])))
        returns.append(total)
    nominal = float(np.mean(returns))
    shifted = nominal - (float(np.mean(first)) - float(np.mean(last)))
    print(f"nominal return {nominal:.3f} over {args.episodes} episodes from seed {args.seed}")
    print(f"distance at the start {np.mean(first):.3f} m, at the end {np.mean(last):.3f} m")
    print(f"one tick late, the same reach: {shifted:.3f}, {100 * nominal / shifted:.1f} % retained")


if __name__ == "__main__":
    main()
