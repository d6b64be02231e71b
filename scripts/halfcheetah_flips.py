"""How much of a HalfCheetah stress cell's loss is the cheetah turning over.

HalfCheetah never terminates, so a run that pitches past 90 degrees (the torso's ``rooty``
angle, ``qpos[2]``, beyond pi/2 rad) carries on upside down, at a fraction of its speed. This
script runs a policy on stress's seeds in the cells given (the runtime, no torch; the same
episodes as ``liquidnode stress --episodes N``: reset seeds ``S, S+1, ...``, randomisation seed
``S``, the true ``dt`` fed, a latency-input policy told the episode's latency) and prints, per
cell, the mean return, how many episodes turned over at some tick, and the mean return of the
rest and of those.

Usage::

    python scripts/halfcheetah_flips.py [--policy policies/HalfCheetah-v5-cfc.safetensors]
        [--episodes 50] [--seed 2000000] [--cells nominal mass=0.5 dt_jitter=0.4 latency=1]
"""

from __future__ import annotations

import argparse

import numpy as np

from liquidnode import Policy
from liquidnode.sim import make_env
from liquidnode.sim.randomization.gym_wrapper import RandomizedEnv
from liquidnode.sim.stress import cell_spec, total_mass_kg

ENV = "HalfCheetah-v5"


def run_cell(
    policy: Policy, setting: str, episodes: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Returns and turned-over flags (bool) of ``episodes`` episodes of one cell.

    ``setting``: ``nominal`` or ``AXIS=VALUE`` (a stress axis: latency in ticks, mass,
    obs_noise, dt_jitter, push...).
    """
    env = make_env(ENV)
    period = float(env.unwrapped.dt)
    if setting != "nominal":
        axis, value = setting.split("=")
        spec = cell_spec({axis: float(value)}, total_mass_kg(ENV))
        env = RandomizedEnv(env, spec, seed=seed, obs_scale=policy.obs_std)
    returns, turned = [], []
    for s in range(seed, seed + episodes):
        obs, info = env.reset(seed=s)
        policy.reset()
        if policy.latency_input is not None:
            policy.set_latency(float(info.get("latency_s", 0.0)) / period)
        total, dt, pitch, done = 0.0, period, 0.0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy.step(obs, dt))
            dt = float(info.get("dt", period))
            total += float(reward)
            pitch = max(pitch, abs(float(env.unwrapped.data.qpos[2])))
            done = terminated or truncated
        returns.append(total)
        turned.append(pitch > np.pi / 2)
    return np.array(returns), np.array(turned)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--policy", default=f"policies/{ENV}-cfc.safetensors")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=2_000_000, help="first reset seed (stress's)")
    p.add_argument(
        "--cells", nargs="+", default=["nominal", "mass=0.5", "dt_jitter=0.4", "latency=1"]
    )
    args = p.parse_args()
    policy = Policy.load(args.policy)
    for setting in args.cells:
        returns, turned = run_cell(policy, setting, args.episodes, args.seed)
        upright = returns[~turned].mean() if (~turned).any() else float("nan")
        over = returns[turned].mean() if turned.any() else float("nan")
        print(
            f"{setting:>14}: mean return {returns.mean():7.1f}, turned over in "
            f"{turned.sum():2d}/{len(turned)}, the rest {upright:7.1f}, those {over:7.1f}"
        )


if __name__ == "__main__":
    main()
