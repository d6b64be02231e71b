"""Can the double pendulum be held at all with a whole tick of actuation latency? A model check.

The learned policy keeps 100 % of its return up to half a tick (25 ms) of actuation latency and
falls at a whole tick (50 ms). This script asks whether that is a limit of the plant or of the
learning: it linearises InvertedDoublePendulum-v5 about upright with MuJoCo's own finite
differences (``mjd_transitionFD``), builds the 20 Hz tick map for a design latency of ``d``
ticks (the previous command holds for the first ``5 d`` of the tick's five physics steps; the
state is augmented with that previous command), solves the discrete Riccati equation (numpy,
by iteration) and runs the resulting linear controller in the real, nonlinear env through the
same latency model ``liquidnode stress`` uses, for every design latency x every actual latency.

A row whose design latency equals the actual one is a controller that knows the delay (a
Smith-predictor-like design); the other entries show how far one fixed design stretches.
``--adaptive`` adds a bank of designs for 0, 1/5, ..., 1 tick switched by which one predicts
the measured state best (a controller with memory that is told no latency, as the policy is).
The controllers read the full state from the observation (cart x, both angles from their
sin/cos, velocities) and know the nominal model exactly: a reference for what any policy that
sees the same observation may hope for, not a proof of a bound.

Measured (2026-12-02, 50 episodes per cell on stress's reset seeds, R = 100): each fixed design
holds 100 % only within about +-0.25 tick of its design latency; the design for exactly one
tick falls in 4 of 50 episodes at one tick (92.2 % of the nominal 9359.8), the adaptive bank
holds 100 % up to 0.75 tick and 94.2 % (3 falls) at one tick.

Usage::

    python scripts/idp_delay_lqr.py [--episodes 20] [--seed 2000000]
        [--design 0 0.5 1] [--latency 0 0.25 0.5 0.75 1 1.25 1.5]
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import mujoco
import numpy as np

from liquidnode.sim import make_env
from liquidnode.sim.randomization.link import channel_scales
from liquidnode.sim.randomization.spec import LatencySpec, RandomizationSpec, Range

ENV = "InvertedDoublePendulum-v5"
#: Observation channels that carry x, sin theta1, sin theta2 and the three velocities: their
#: scales (the env preset's, channel_scales) weight the identification error of state_of's order.
STATE_CHANNELS = (0, 1, 2, 5, 6, 7)


def linearise(env: gym.Env) -> tuple[np.ndarray, np.ndarray, float, int]:
    """``(A, B, h, n)``: the one-physics-step map at upright rest (state: qpos, qvel; 6),
    by central differences of ``mj_step`` (the env integrates with RK4, which MuJoCo's own
    ``mjd_transitionFD`` does not support), the physics step ``h`` (s) and steps per tick."""
    base = env.unwrapped
    m = base.model
    d = mujoco.MjData(m)
    nq, nv, nu = m.nq, m.nv, m.nu
    assert nq == nv, "hinge and slide joints only"

    def step(x: np.ndarray, u: np.ndarray) -> np.ndarray:
        mujoco.mj_resetData(m, d)
        d.qpos[:], d.qvel[:], d.ctrl[:] = x[:nq], x[nq:], u
        mujoco.mj_step(m, d)
        return np.concatenate([d.qpos, d.qvel])

    x0, u0, eps = np.zeros(nq + nv), np.zeros(nu), 1e-6
    a = np.zeros((nq + nv, nq + nv))
    b = np.zeros((nq + nv, nu))
    for i in range(nq + nv):
        e = np.zeros(nq + nv)
        e[i] = eps
        a[:, i] = (step(x0 + e, u0) - step(x0 - e, u0)) / (2 * eps)
    for i in range(nu):
        e = np.zeros(nu)
        e[i] = eps
        b[:, i] = (step(x0, u0 + e) - step(x0, u0 - e)) / (2 * eps)
    return a, b, float(m.opt.timestep), int(base.frame_skip)


def tick_map(a: np.ndarray, b: np.ndarray, n: int, design: float) -> tuple[np.ndarray, np.ndarray]:
    """The tick map of the state ``[x (6), u_prev (1)]`` for a latency of ``design`` ticks
    (0..1): physics step ``j`` of the tick applies ``u_prev`` if ``j < round(n * design)``."""
    k = round(n * design)
    nx = a.shape[0]
    powers = [np.linalg.matrix_power(a, i) for i in range(n + 1)]
    b_prev = sum((powers[n - 1 - j] @ b for j in range(k)), np.zeros_like(b))
    b_now = sum((powers[n - 1 - j] @ b for j in range(k, n)), np.zeros_like(b))
    big_a = np.zeros((nx + 1, nx + 1))
    big_a[:nx, :nx] = powers[n]
    big_a[:nx, nx:] = b_prev
    big_b = np.zeros((nx + 1, 1))
    big_b[:nx] = b_now
    big_b[nx, 0] = 1.0
    return big_a, big_b


def dlqr(a: np.ndarray, b: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Gain ``K`` of ``u = -K z`` minimising sum z'Qz + u'Ru (Riccati iteration)."""
    p = q.copy()
    for _ in range(20000):
        k = np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)
        p_next = q + a.T @ p @ (a - b @ k)
        converged = np.max(np.abs(p_next - p)) < 1e-10 * max(1.0, np.max(np.abs(p)))
        p = p_next
        if converged:
            break
    return np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)


def state_of(obs: np.ndarray) -> np.ndarray:
    """``[x, theta1, theta2, v, omega1, omega2]`` from the 9-channel observation."""
    return np.array(
        [
            obs[0],
            np.arctan2(obs[1], obs[3]),
            np.arctan2(obs[2], obs[4]),
            obs[5],
            obs[6],
            obs[7],
        ]
    )


class LinearController:
    """``u = clip(-K [x, u_prev])`` for one design latency."""

    def __init__(self, gain: np.ndarray) -> None:
        self.gain = gain

    def reset(self) -> None:
        """Start of an episode (nothing to forget)."""

    def act(self, x: np.ndarray, u_prev: float) -> float:
        """The command (in [-1, 1]) for state ``x`` after ``u_prev`` was sent."""
        return float(np.clip(-(self.gain @ np.append(x, u_prev))[0], -1.0, 1.0))


class AdaptiveController:
    """A bank of designs for latencies 0, 1/n, ..., 1 tick, switched by identification.

    Each tick it predicts the state under every latency hypothesis with that hypothesis' tick
    map (from the last state and the last two commands), keeps an exponentially forgotten sum
    of squared prediction errors (each channel scaled by ``scale``) and acts with the gain of
    the hypothesis that predicts best; before the first prediction, with the middle one. A
    controller with memory, like the recurrent policy, that needs no latency given.
    """

    def __init__(
        self,
        maps: list[tuple[np.ndarray, np.ndarray]],
        gains: list[np.ndarray],
        scale: np.ndarray,
        forget: float = 0.7,
    ) -> None:
        self.maps, self.gains, self.scale, self.forget = maps, gains, scale, forget
        self.reset()

    def reset(self) -> None:
        """Start of an episode: no evidence yet."""
        self.error = np.zeros(len(self.maps))
        self.last: tuple[np.ndarray, float] | None = None

    def act(self, x: np.ndarray, u_prev: float) -> float:
        """The command (in [-1, 1]) for state ``x`` after ``u_prev`` was sent."""
        if self.last is None:
            best = len(self.maps) // 2
        else:
            z_last, u_last = self.last
            for i, (a, b) in enumerate(self.maps):
                predicted = (a @ z_last + b[:, 0] * u_last)[: x.size]
                miss = float(np.sum(((predicted - x) / self.scale) ** 2))
                self.error[i] = self.forget * self.error[i] + miss
            best = int(np.argmin(self.error))
        z = np.append(x, u_prev)
        u = float(np.clip(-(self.gains[best] @ z)[0], -1.0, 1.0))
        self.last = (z, u)
        return u


def run(
    controller: LinearController | AdaptiveController, latency: float, episodes: int, seed: int
) -> tuple[float, int]:
    """Mean return and falls of ``controller`` at ``latency`` ticks (reset seeds from ``seed``)."""
    spec = RandomizationSpec(name="lqr", latency=LatencySpec(ticks=Range(latency, latency)))
    env = make_env(ENV, randomize=spec)
    returns, falls = [], 0
    for s in range(seed, seed + episodes):
        obs, _ = env.reset(seed=s)
        controller.reset()
        u_prev = 0.0  # the actuator holds 0 until the first command lands
        total, done = 0.0, False
        while not done:
            u = controller.act(state_of(obs), u_prev)
            obs, reward, terminated, truncated, _ = env.step(np.array([u]))
            u_prev = u
            total += float(reward)
            falls += int(terminated)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns)), falls


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=2_000_000, help="first reset seed (stress's)")
    p.add_argument("--design", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    p.add_argument(
        "--latency", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]
    )
    p.add_argument("--r", type=float, default=100.0, help="weight of u^2 in the LQR cost")
    p.add_argument(
        "--adaptive", action="store_true", help="add the identifying bank of designs as a row"
    )
    args = p.parse_args()
    env = make_env(ENV)
    a, b, h, n = linearise(env)
    env.close()
    print(f"{ENV}: physics step {h} s, {n} per tick; open-loop eigenvalues |lambda| per tick:")
    print("  " + " ".join(f"{abs(e):.3f}" for e in np.linalg.eigvals(np.linalg.matrix_power(a, n))))
    q = np.diag([1.0, 10.0, 10.0, 0.1, 0.1, 0.1, 0.0])
    r = np.array([[args.r]])
    print(f"mean return (falls of {args.episodes}), seeds {args.seed}.., R = {args.r}:")
    print("design latency (ticks) \\ actual: " + "  ".join(f"{x:>12g}" for x in args.latency))

    def row(name: str, controller: LinearController | AdaptiveController) -> None:
        cells = []
        for lat in args.latency:
            mean, falls = run(controller, lat, args.episodes, args.seed)
            cells.append(f"{mean:>7.1f} ({falls:>2d})")
        print(f"{name:>32}: " + "  ".join(cells), flush=True)

    for design in args.design:
        big_a, big_b = tick_map(a, b, n, design)
        row(f"{design:g}", LinearController(dlqr(big_a, big_b, q, r)))
    if args.adaptive:
        maps = [tick_map(a, b, n, k / n) for k in range(n + 1)]
        gains = [dlqr(big_a, big_b, q, r) for big_a, big_b in maps]
        scales = channel_scales(ENV)
        assert scales is not None, f"{ENV} has a shipped preset"
        scale = np.array([scales[i] for i in STATE_CHANNELS])
        row(f"adaptive (0..1 in {n} steps)", AdaptiveController(maps, gains, scale))


if __name__ == "__main__":
    main()
