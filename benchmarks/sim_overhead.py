"""Comparison 5: simulation overhead, the node's closed loop in fast mode vs. bare env.step.

Node: ``ControlLoop(GymPlant(env), policy, LoopConfig(realtime=False))`` (what ``liquidnode sim
--fast`` runs: observe, the CfC-64 policy step with the compiled kernel when available, the
safety layer, ``env.step``, section timing), ticks per second of wall time over whole episodes.
Bare: ``gymnasium.make(env)`` stepped with uniform random actions (drawn before the timing, so
the baseline pays nothing but ``env.step``), resetting when an episode ends, steps per second.
Same env id, same episode length; the two alternate.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.harness import Check, Section

KEY = "sim_overhead"
TITLE = "Simulation overhead: closed loop in fast mode vs. bare env.step (steps/s)"
ENV_ID = "HalfCheetah-v5"


def _bare(env_id: str, steps: int, episode: int) -> float:
    import gymnasium as gym

    env = gym.make(env_id, max_episode_steps=episode)
    space = env.action_space
    rng = np.random.default_rng(0)
    actions = rng.uniform(space.low, space.high, size=(steps, *space.shape)).astype(space.dtype)
    env.reset(seed=0)
    t0 = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    rate = steps / (time.perf_counter() - t0)
    env.close()
    return rate


def _node(env_id: str, steps: int, episode: int) -> float:
    from controller.loop import ControlLoop, LoopConfig
    from controller.policy import random_policy
    from sim import make_plant

    plant = make_plant(env_id, max_ticks=episode)
    spec = plant.spec
    policy = random_policy(
        spec.obs_dim, spec.act_dim, units=64, seed=0, cell_options={"backbone_units": 128}
    )
    loop = ControlLoop(plant, policy, LoopConfig(realtime=False, max_ticks=episode))
    episodes = max(1, steps // episode)
    t0 = time.perf_counter()
    summary = loop.run(episodes=episodes, seed=0)
    elapsed = time.perf_counter() - t0
    ticks = sum(e.ticks for e in summary.episodes)
    plant.disconnect()
    return ticks / elapsed


def run(quick: bool = False, tiny: bool = False) -> Section:
    """Run the comparison; ``quick`` shortens it, ``tiny`` is for the smoke test."""
    try:
        import gymnasium  # noqa: F401

        from controller.loop import ControlLoop  # noqa: F401
        from sim import make_plant  # noqa: F401
    except ImportError as exc:
        return Section(KEY, TITLE, unavailable=f"needs controller.loop and sim: {exc}")
    episode = 100 if tiny else 1000
    steps = 200 if tiny else 3000 if quick else 10000
    rounds = 1 if tiny else 3 if quick else 5
    rates: dict[str, list[float]] = {"node": [], "bare": []}
    for _ in range(rounds):
        rates["node"].append(_node(ENV_ID, steps, episode))
        rates["bare"].append(_bare(ENV_ID, steps, episode))
    node = sorted(rates["node"])[len(rates["node"]) // 2]
    bare = sorted(rates["bare"])[len(rates["bare"]) // 2]
    ratio = node / bare
    sec = Section(KEY, TITLE, columns=["path", "steps/s", "µs/step", "vs. bare env.step"])
    sec.rows.append(["liquidnode sim --fast (ControlLoop)", f"{node:,.0f}", f"{1e6 / node:.1f}"])
    sec.rows[-1].append(f"{ratio:.2f}x")
    sec.rows.append(["bare env.step, random actions", f"{bare:,.0f}", f"{1e6 / bare:.1f}", "1x"])
    sec.checks.append(
        Check("sim: closed-loop throughput >= 0.8x bare env.step", f"{ratio:.2f}x", ratio >= 0.8)
    )
    sec.notes.append(
        f"{ENV_ID}, episodes of {episode} steps, {steps} steps per run, median of {rounds} "
        "alternating runs; the node's figure includes the CfC-64 policy step, safety layer and "
        "section timing."
    )
    sec.data = {"node_steps_per_s": node, "bare_steps_per_s": bare, "ratio": ratio}
    return sec
