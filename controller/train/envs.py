"""Training environments: construction, checks, control-period jitter, vectorisation.

Every training env is ``gymnasium.make(env_id)`` wrapped in :class:`ControlPeriodJitter`, which
reports the control period it actually simulated as ``info["dt"]`` (seconds). With
``jitter = 0`` that is the nominal period ``model.opt.timestep * frame_skip``; with
``jitter = f`` each tick's period is ``nominal * (1 + u)``, ``u ~ U(-f, f)``, realised by
varying the number of MuJoCo sub-steps (``frame_skip``) and the sub-step length so the period is
continuous. The trainer feeds that true dt to the cell, so the policy learns to tolerate an
imperfect control loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

from liquidnode.controller import simulators
from liquidnode.controller.action_filter import LowPass
from liquidnode.controller.errors import LiquidNodeError, SpaceMismatchError
from liquidnode.controller.latency_input import LatencyInput

if TYPE_CHECKING:
    from liquidnode.controller.train.config import ObsCostTerm


@dataclass(frozen=True)
class EnvInfo:
    """What the trainer and the exported policy need to know about an env.

    Attributes:
        env_id: Gymnasium id.
        obs_dim: observation size.
        act_dim: action size.
        obs_low: observation lower bounds (float64, ``(obs_dim,)``, may be -inf).
        obs_high: observation upper bounds (float64, ``(obs_dim,)``, may be +inf).
        act_low: action lower bounds (float64, ``(act_dim,)``, finite).
        act_high: action upper bounds (float64, ``(act_dim,)``, finite).
        control_period_s: nominal control period in seconds.
        obs_names: channel names of the observation (from :mod:`sim`'s plant), or None.
        act_names: channel names of the action, or None.
        obs_units: units of the observation channels (``"rad"``, ``"m/s"``...), or None.
        act_units: units of the action channels, or None.
    """

    env_id: str
    obs_dim: int
    act_dim: int
    obs_low: np.ndarray
    obs_high: np.ndarray
    act_low: np.ndarray
    act_high: np.ndarray
    control_period_s: float
    obs_names: tuple[str, ...] | None = None
    act_names: tuple[str, ...] | None = None
    obs_units: tuple[str, ...] | None = None
    act_units: tuple[str, ...] | None = None

    @property
    def control_rate_hz(self) -> float:
        """Nominal control rate in Hz."""
        return 1.0 / self.control_period_s


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` with user errors turned into :class:`LiquidNodeError`.

    Raises:
        LiquidNodeError: unknown id, or an env without a bounded Box action space.
    """
    try:
        env = simulators.make_env(env_id, **kwargs)
    except gym.error.Error as exc:
        raise LiquidNodeError(f"unknown Gymnasium environment {env_id!r}: {exc}") from None
    if not isinstance(env.action_space, gym.spaces.Box):
        space = env.action_space
        env.close()
        raise LiquidNodeError(
            f"{env_id} has a {type(space).__name__} action space ({space}); liquidnode trains "
            "continuous policies and needs a Box action space"
        )
    if (
        not isinstance(env.observation_space, gym.spaces.Box)
        or len(env.observation_space.shape) != 1
    ):
        space = env.observation_space
        env.close()
        raise LiquidNodeError(
            f"{env_id} has observation space {space}; liquidnode needs a flat Box observation"
        )
    if not (
        np.all(np.isfinite(env.action_space.low)) and np.all(np.isfinite(env.action_space.high))
    ):
        env.close()
        raise LiquidNodeError(f"{env_id} has an unbounded action space {env.action_space}")
    return env


def control_period(env: gym.Env) -> float:
    """Nominal control period of ``env`` in seconds (``env.unwrapped.dt``; MuJoCo envs have it).

    Raises:
        LiquidNodeError: the env does not say its control period.
    """
    dt = getattr(env.unwrapped, "dt", None)
    if dt is None or not dt > 0:
        raise LiquidNodeError(
            f"{env.spec.id if env.spec else env} does not expose a control period (env.dt); "
            "liquidnode trains on MuJoCo environments"
        )
    return float(dt)


def box_space(space: gym.Space[Any], what: str) -> gym.spaces.Box:
    """``space`` as a :class:`gymnasium.spaces.Box` (``what`` names it in the error).

    Raises:
        LiquidNodeError: the space is not a one-dimensional Box.
    """
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise LiquidNodeError(
            f"the {what} space is {space}; liquidnode trains on one-dimensional Box spaces"
        )
    return space


@cache
def env_info(env_id: str) -> EnvInfo:
    """Inspect ``env_id`` (creates and closes an instance; cached per id)."""
    env = make_env(env_id)
    try:
        obs_space = box_space(env.observation_space, "observation")
        act_space = box_space(env.action_space, "action")
        return EnvInfo(
            env_id=env_id,
            obs_dim=int(obs_space.shape[0]),
            act_dim=int(act_space.shape[0]),
            obs_low=np.asarray(obs_space.low, dtype=np.float64),
            obs_high=np.asarray(obs_space.high, dtype=np.float64),
            act_low=np.asarray(act_space.low, dtype=np.float64),
            act_high=np.asarray(act_space.high, dtype=np.float64),
            control_period_s=control_period(env),
            **_channel_names(env_id),
        )
    finally:
        env.close()


def _channel_names(env_id: str) -> dict[str, tuple[str, ...]]:
    """``obs_names`` / ``act_names`` / ``obs_units`` / ``act_units`` as the simulation plant
    labels them (empty if unknown)."""
    try:
        spec = simulators.make_plant(env_id).spec
    except Exception:  # names are documentation only; never fail training for them
        return {}
    return {
        "obs_names": tuple(spec.obs_names),
        "act_names": tuple(spec.act_names),
        "obs_units": tuple(spec.obs_units),
        "act_units": tuple(spec.act_units),
    }


def check_dims(info: EnvInfo, obs_dim: int, act_dim: int, what: str) -> None:
    """Raise :class:`SpaceMismatchError` if ``what`` (a policy or checkpoint) does not fit."""
    if (obs_dim, act_dim) != (info.obs_dim, info.act_dim):
        raise SpaceMismatchError(
            f"{what} has observation/action sizes ({obs_dim}, {act_dim}) but {info.env_id} has "
            f"({info.obs_dim}, {info.act_dim})"
        )


class ControlPeriodJitter(gym.Wrapper):
    """Vary each tick's control period by up to ``+-jitter`` and report it as ``info["dt"]``.

    Args:
        env: a Gymnasium MuJoCo env (has ``unwrapped.frame_skip`` and ``unwrapped.model``).
        jitter: relative jitter in [0, 1); 0 keeps the nominal period.
        seed: seed of the jitter's own random generator.
    """

    def __init__(self, env: gym.Env, jitter: float = 0.0, seed: int | None = None) -> None:
        super().__init__(env)
        self.jitter = float(jitter)
        self.rng = np.random.default_rng(seed)
        base = env.unwrapped
        self._mujoco = base if isinstance(base, MujocoEnv) else None
        self.nominal_skip = int(getattr(base, "frame_skip", 1))
        self.nominal_substep = (
            None if self._mujoco is None else float(self._mujoco.model.opt.timestep)
        )
        self.nominal_dt = control_period(env)

    def step(self, action: np.ndarray) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step with this tick's (possibly jittered) period; ``info["dt"]`` is that period."""
        dt = self.nominal_dt
        base = self._mujoco
        if self.jitter > 0 and base is not None and self.nominal_substep is not None:
            dt = self.nominal_dt * (1.0 + self.rng.uniform(-self.jitter, self.jitter))
            skip = max(1, round(dt / self.nominal_substep))
            base.frame_skip = skip
            base.model.opt.timestep = dt / skip
            try:
                obs, reward, terminated, truncated, info = self.env.step(action)
            finally:
                base.frame_skip = self.nominal_skip
                base.model.opt.timestep = self.nominal_substep
        else:
            obs, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        if self.jitter > 0 or "dt" not in info:  # a randomised env inside reports its own
            info["dt"] = dt
        return obs, reward, terminated, truncated, info


class ActionLowPass(gym.Wrapper):
    """Pass every action through the policy's first-order low-pass before the plant.

    The filter is :class:`liquidnode.controller.action_filter.LowPass` (the runtime's own), fed
    the period the cell is fed: the previous step's ``info["dt"]``, the nominal period at an
    episode's first tick; it starts from the action space's centre at every reset. So a policy
    trained with ``--action-low-pass HZ`` learns the dynamics that ``Policy.step`` applies.

    Args:
        env: the env (its ``step`` reports ``info["dt"]``, e.g. :class:`ControlPeriodJitter`).
        cutoff_hz: the filter's cut-off, Hz (> 0).
    """

    def __init__(self, env: gym.Env, cutoff_hz: float) -> None:
        super().__init__(env)
        space = box_space(env.action_space, "action")
        centre = (np.asarray(space.high, np.float64) + np.asarray(space.low, np.float64)) / 2
        self.filter = LowPass(cutoff_hz, centre)
        self.nominal_dt = control_period(env)
        self._dt = self.nominal_dt

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset the env and the filter."""
        self.filter.reset()
        self._dt = self.nominal_dt
        return self.env.reset(**kwargs)

    def step(self, action: np.ndarray) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step with the filtered action; ``info["command"]`` is what the plant got."""
        command = self.filter.step(action, self._dt)
        obs, reward, terminated, truncated, info = self.env.step(command)
        self._dt = float(info.get("dt", self.nominal_dt))
        return obs, reward, terminated, truncated, {**info, "command": command}


def check_obs_cost(costs: tuple[ObsCostTerm, ...], obs_dim: int) -> None:
    """Raise :class:`LiquidNodeError` if an ``--obs-cost`` index is not below ``obs_dim``."""
    bad = [term[0] for term in costs if term[0] >= obs_dim]
    if bad:
        raise LiquidNodeError(
            f"--obs-cost index {bad[0]} is beyond the {obs_dim} observation channels "
            f"(0..{obs_dim - 1})"
        )


class ObservationCost(gym.Wrapper):
    """Reward shaping for training: subtract the ``--obs-cost`` terms of the observation after
    each step from that step's reward.

    Args:
        env: the training env.
        costs: ``((index, weight, kind, limit), ...)``
            (:func:`liquidnode.controller.train.config.parse_obs_cost`): observation channel
            (0-based, in the env's order) and weight; kind ``"sq"`` costs ``weight * obs**2``
            (reward units per squared env unit), ``">"`` ``weight * max(0, obs - limit)`` and
            ``"<"`` ``weight * max(0, limit - obs)`` (reward units per env unit past the limit).

    The observation is the one the policy sees (with a randomised env: noise and bias
    included). ``info["obs_cost"]`` is the amount subtracted this step.

    Raises:
        LiquidNodeError: an index beyond the env's observation.
    """

    def __init__(self, env: gym.Env, costs: tuple[ObsCostTerm, ...]) -> None:
        super().__init__(env)
        check_obs_cost(costs, int(box_space(env.observation_space, "observation").shape[0]))
        self.index = np.array([t[0] for t in costs], dtype=np.intp)
        self.weight = np.array([t[1] for t in costs], dtype=np.float64)
        # +1 for a ceiling (">"), -1 for a floor ("<"), 0 for a square ("sq")
        self.side = np.array([{">": 1.0, "<": -1.0}.get(t[2], 0.0) for t in costs])
        self.limit = np.array([t[3] for t in costs], dtype=np.float64)

    def step(self, action: np.ndarray) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """The env's step with the cost taken off the reward."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        x = np.asarray(obs, np.float64)[self.index]
        excess = np.maximum(0.0, self.side * (x - self.limit))
        cost = float(np.dot(self.weight, np.where(self.side == 0.0, np.square(x), excess)))
        info = dict(info)
        info["obs_cost"] = cost
        return obs, float(reward) - cost, terminated, truncated, info


def env_factory(
    env_id: str,
    jitter: float,
    seed: int,
    randomize: str | None = None,
    randomize_seed: int | None = None,
    episode_ticks: int | None = None,
    obs_cost: str | None = None,
    action_low_pass: float | None = None,
) -> Callable[[], gym.Env]:
    """A picklable constructor of one training env (for vector envs).

    ``randomize`` (a spec preset name or TOML path) asks the simulator for a randomised env
    (``make_env(env_id, randomize=..., randomize_seed=...)``), which reports each tick's true
    period as ``info["dt"]``. ``episode_ticks`` replaces the env's time limit (Gymnasium's
    ``max_episode_steps``; None keeps the env's own). ``obs_cost`` (``--obs-cost``, see
    :func:`liquidnode.controller.train.config.parse_obs_cost`) wraps the env in
    :class:`ObservationCost`; ``action_low_pass`` (Hz, ``--action-low-pass``) in
    :class:`ActionLowPass`, outermost.
    """
    from liquidnode.controller.train.config import parse_obs_cost

    costs = parse_obs_cost(obs_cost) if obs_cost is not None else ()

    def _make() -> gym.Env:
        _ignore_stop_signals_in_worker()
        kwargs: dict[str, Any] = {}
        if randomize is not None:
            rseed = seed if randomize_seed is None else randomize_seed
            kwargs = {"randomize": randomize, "randomize_seed": rseed}
        if episode_ticks is not None:
            kwargs["max_episode_steps"] = episode_ticks
        env: gym.Env = ControlPeriodJitter(make_env(env_id, **kwargs), jitter=jitter, seed=seed)
        if costs:
            env = ObservationCost(env, costs)
        return env if action_low_pass is None else ActionLowPass(env, action_low_pass)

    return _make


def _ignore_stop_signals_in_worker() -> None:
    """In a vector-env worker process, ignore SIGINT/SIGTERM/SIGHUP: Ctrl-C reaches the whole
    process group, and a worker that dies mid-step leaves the main process blocked on its
    pipe. The main process closes its workers itself when it stops."""
    import multiprocessing
    import signal

    if multiprocessing.parent_process() is None:
        return  # in-process env (SyncVectorEnv): the main process handles signals
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)


def _quiet_worker(*args: Any) -> None:
    """Gymnasium's vector-env worker, silent when the main process has gone.

    When training stops on a signal the main process closes its end of each pipe, possibly
    with a step result still unread; the worker then sees the connection reset (or closed)
    and, with nothing left to report to, would print a traceback of it. It just exits.
    """
    from gymnasium.vector.async_vector_env import _async_worker

    try:
        _async_worker(*args)
    except (BrokenPipeError, ConnectionResetError, EOFError):
        return


def randomization_record(env_id: str, randomize: str) -> dict[str, Any]:
    """The randomisation spec ``randomize`` resolves to, as a dict (for provenance).

    Raises:
        LiquidNodeError: the spec cannot be read or does not fit the env.
    """
    env = make_env(env_id, randomize=randomize, randomize_seed=0)
    try:
        return dict(env.get_wrapper_attr("randomization").to_dict())
    finally:
        env.close()


def privileged_dim(env_id: str, randomize: str) -> int:
    """How many features the randomised env reports to a critic (``info["privileged"]``).

    Raises:
        LiquidNodeError: the randomised env reports none.
    """
    env = make_env(env_id, randomize=randomize, randomize_seed=0)
    try:
        _, info = env.reset(seed=0)
    finally:
        env.close()
    if "privileged" not in info:
        raise LiquidNodeError(
            f"--privileged-critic: the randomised {env_id} reports no privileged features"
        )
    return int(np.asarray(info["privileged"]).shape[-1])


def told_latency(
    env_id: str, randomization: dict[str, Any] | None, control_period_s: float
) -> LatencyInput:
    """The latency input of a policy trained under ``randomization`` (the resolved spec of
    :func:`randomization_record`): the spec's per-episode latency range in control periods
    (``latency.ticks`` plus ``latency.ms``), normalised as a uniform draw from it
    (``mean = (low + high) / 2``, ``std = (high - low) / sqrt(12)``).

    Raises:
        LiquidNodeError: no randomisation, or one whose latency does not vary per episode
            (there would be nothing to tell).
    """
    if randomization is None:
        raise LiquidNodeError("--latency-input needs --randomize with a latency range")
    lat = randomization.get("latency") or {}

    def span(key: str) -> tuple[float, float]:  # a range's JSON form: a number or [lo, hi]
        value = lat.get(key, 0.0)
        lo, hi = value if isinstance(value, list | tuple) else (value, value)
        return float(lo), float(hi)

    (ticks_lo, ticks_hi), (ms_lo, ms_hi) = span("ticks"), span("ms")
    period_ms = control_period_s * 1e3
    low = ticks_lo + ms_lo / period_ms
    high = ticks_hi + ms_hi / period_ms
    if not high > low:
        raise LiquidNodeError(
            f"--latency-input: the --randomize spec for {env_id} draws no range of actuation "
            f"latencies (latency {low:g}..{high:g} control periods); give it latency.ticks = "
            "[low, high] or latency.ms"
        )
    return LatencyInput(low=low, high=high, mean=(low + high) / 2, std=(high - low) / 12**0.5)


def make_vector_env(
    env_id: str,
    num_envs: int,
    jitter: float,
    seed: int,
    randomize: str | None = None,
    randomize_seed: int | None = None,
    asynchronous: bool = True,
    first: int = 0,
    episode_ticks: int | None = None,
    obs_cost: str | None = None,
    action_low_pass: float | None = None,
) -> gym.vector.VectorEnv:
    """``num_envs`` training envs: in worker processes (``AsyncVectorEnv``) when more than one
    and ``asynchronous``, in-process (``SyncVectorEnv``) otherwise. Episodes auto-reset in the
    same step (the final observation is in ``info["final_obs"]``). Env ``i`` is seeded
    ``seed + 7919 i`` (its randomisation ``randomize_seed + 7919 i``, default
    ``seed + 7919 i``); the vector env holds the run's envs ``first .. first + num_envs - 1``
    (a slice of them, on a Ray actor; 0 for all of them). ``episode_ticks`` cuts every
    episode after that many ticks (None: the env's own time limit); ``obs_cost`` shapes the
    reward (see :class:`ObservationCost`); ``action_low_pass`` filters the actions (see
    :class:`ActionLowPass`)."""
    from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

    base = seed if randomize_seed is None else randomize_seed
    fns = [
        env_factory(
            env_id,
            jitter,
            seed + 7919 * i,
            randomize,
            base + 7919 * i,
            episode_ticks,
            obs_cost,
            action_low_pass,
        )
        for i in range(first, first + num_envs)
    ]
    if num_envs > 1 and asynchronous:
        return AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP, worker=_quiet_worker)
    return SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)


def check_matches(info: EnvInfo, other_env_id: str, obs_dim: int, act_dim: int, what: str) -> None:
    """Like :func:`check_dims`, and also require the same env id."""
    if other_env_id != info.env_id:
        raise SpaceMismatchError(f"{what} was trained on {other_env_id}, not {info.env_id}")
    check_dims(info, obs_dim, act_dim, what)
