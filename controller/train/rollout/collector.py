"""Collecting experience: the seam between acting in environments and learning.

The trainer (:func:`controller.train.ppo.train`) asks a :class:`RolloutCollector` for one
rollout per update and hands it the learner's current :class:`Agent`; what comes back is a
:class:`Rollout` of ``T`` steps of the collector's ``N`` environments. Two implementations:

- :class:`VectorCollector` (here): a Gymnasium vector env in this process (or in its worker
  processes), acting with the learner's own modules; with ``update_stats`` it folds every
  observation into the learner's normaliser as it goes. ``--workers 0``.
- ``liquidnode.cluster.rollouts.RayCollector``: Ray actors, each a :class:`VectorCollector`
  over a slice of the environments with a copy of the agent loaded from the learner's weights
  (:meth:`Agent.weights`) at the start of every rollout and frozen normalisation statistics;
  the learner folds the returned raw observations into its normaliser afterwards.
  ``--workers N``.

Either way the actions are sampled by the torch actor with exactly the parameters the learner
holds at collection time, so the stored log-probabilities and values are those of the policy
PPO's ratio is taken against. Reward scaling (running statistics over *all* environments) is
the learner's: the collector returns the raw rewards, and the critic's value of each
truncated episode's final observation (``bootstrap``) for the learner to fold in after
scaling.

Environment ``i`` of a run (``0 <= i < --envs``) is built and seeded the same way whichever
collector holds it: see :func:`controller.train.envs.make_vector_env` with ``first``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch

from liquidnode.controller.latency_input import LatencyInput
from liquidnode.controller.train.agent import Actor, Critic, build_cell, to_tensor
from liquidnode.controller.train.config import TrainConfig
from liquidnode.controller.train.envs import EnvInfo
from liquidnode.controller.train.normalization import ObsNormalizer
from liquidnode.controller.train.rollout.buffer import RolloutBuffer

#: Mean of the actor's Gaussian is the cell output through this squashing.
SQUASH = "tanh"


@dataclass
class Agent:
    """The modules a collector acts with: actor (samples), critic (values), normaliser."""

    actor: Actor
    critic: Critic
    obs_norm: ObsNormalizer

    @classmethod
    def build(cls, cfg: TrainConfig, info: EnvInfo, privileged_dim: int = 0) -> Agent:
        """Fresh modules of the architecture ``cfg`` names for ``info``'s spaces (the
        initial weights come from torch's current random state); the critic also takes
        ``privileged_dim`` privileged features (:attr:`Acting.privileged_dim`)."""
        n_in = info.obs_dim + int(cfg.latency_input)  # the cell's and the critic's input
        cell = build_cell(
            cfg.cell, n_in, info.act_dim, cfg.units, cfg.backbone_units, cfg.seed,
            frames=cfg.frames,
        )  # fmt: skip
        actor = Actor(cell, info.act_dim, SQUASH, cfg.initial_log_std)
        return cls(actor, Critic(n_in + privileged_dim, cfg.critic_units), ObsNormalizer(
            info.obs_dim, clip=cfg.obs_clip))  # fmt: skip

    def weights(self) -> dict[str, Any]:
        """Plain copies of the parameters and the normaliser's statistics (picklable)."""
        return {
            "actor": {k: v.detach().clone() for k, v in self.actor.state_dict().items()},
            "critic": {k: v.detach().clone() for k, v in self.critic.state_dict().items()},
            "obs_rms": self.obs_norm.rms.state_dict(),
        }

    def load(self, weights: dict[str, Any]) -> None:
        """Take the parameters and statistics of :meth:`weights`."""
        self.actor.load_state_dict(weights["actor"])
        self.critic.load_state_dict(weights["critic"])
        self.obs_norm.rms.load_state_dict(weights["obs_rms"])


@dataclass(frozen=True)
class Acting:
    """How the cell's inputs and the actions are formed (the same for every collector).

    Attributes:
        time_scale: cell time input per second of control period (``ts = dt * time_scale``).
        control_period_s: nominal control period, s (an episode's first tick uses it).
        act_scale: env action = ``act_offset + act_scale * clip(sample, -1, 1)``, ``(act_dim,)``.
        act_offset: see ``act_scale``, ``(act_dim,)``.
        latency_input: the cell (and the critic) get the episode's normalised actuation
            latency after the observation (``--latency-input``), or None.
        privileged_dim: features of the envs' ``info["privileged"]`` the critic gets after
            the cell's input (``--privileged-critic``; 0: none).
    """

    time_scale: float
    control_period_s: float
    act_scale: np.ndarray
    act_offset: np.ndarray
    latency_input: LatencyInput | None = None
    privileged_dim: int = 0

    @classmethod
    def of(
        cls, info: EnvInfo, latency_input: LatencyInput | None = None, privileged_dim: int = 0
    ) -> Acting:
        """Nominal period mapped to ``ts = 1``; actions spread over the env's Box."""
        return cls(
            time_scale=1.0 / info.control_period_s,
            control_period_s=info.control_period_s,
            act_scale=(info.act_high - info.act_low) / 2.0,
            act_offset=(info.act_high + info.act_low) / 2.0,
            latency_input=latency_input,
            privileged_dim=privileged_dim,
        )

    def cell_input(self, obs: np.ndarray, latency_s: np.ndarray) -> np.ndarray:
        """The cell's and the critic's input, float32: the normalised observations ``obs``
        ``(B, obs_dim)``, then, told the latency, each row's latency input (``latency_s``
        ``(B,)``, the episodes' actuation latencies in seconds) -> ``(B, obs_dim + 1)``."""
        obs = np.asarray(obs, dtype=np.float32)
        if self.latency_input is None:
            return obs
        told = self.latency_input
        ell = [told.normalise(float(s) / self.control_period_s) for s in latency_s]
        return np.concatenate([obs, np.asarray(ell, np.float32)[:, None]], axis=1)

    @property
    def nominal_ts(self) -> float:
        """Time input of a tick at the nominal period."""
        return self.control_period_s * self.time_scale


@dataclass
class Rollout:
    """``T`` steps of ``N`` environments, time-major, as collected.

    Attributes:
        buffer: what the actor saw and did (:class:`RolloutBuffer`); its ``rewards`` are
            left for the learner to fill (scaled rewards plus bootstrap).
        rewards: raw env rewards, float64 ``(T, N)``.
        truncated: True where a time limit (not a termination) ended the episode, ``(T, N)``.
        bootstrap: critic value of the final observation where ``truncated``, else 0,
            float32 ``(T, N)``.
        last_obs: raw observation after the last step, float64 ``(N, obs_dim)`` (env units).
        last_latency_s: actuation latency of the episodes ``last_obs`` belong to, s, ``(N,)``
            (0 without randomisation; the critic's input told the latency).
        last_privileged: the critic's privileged features with ``last_obs``, ``(N, k)``.
        raw_obs: raw observations of every step, ``(T, N, obs_dim)``, when the collector did
            not fold them into the learner's normaliser itself, else None.
        episodes: ``(t, return)`` of every episode that ended at step ``t``, in step order
            (environments in index order within a step); returns in raw reward units.
    """

    buffer: RolloutBuffer
    rewards: np.ndarray
    truncated: np.ndarray
    bootstrap: np.ndarray
    last_obs: np.ndarray
    last_latency_s: np.ndarray
    last_privileged: np.ndarray
    raw_obs: np.ndarray | None = None
    episodes: list[tuple[int, float]] = field(default_factory=list)

    @staticmethod
    def concatenate(parts: list[Rollout]) -> Rollout:
        """Join rollouts of disjoint environment slices (in environment order) along N.

        The result owns its arrays (copies, also of a single part): the trainer writes into
        them, and a part that came from Ray's object store is read-only."""
        buffers = [p.buffer.as_dict() for p in parts]
        buffer = RolloutBuffer(**{k: np.concatenate([b[k] for b in buffers], axis=1)
                                  for k in buffers[0]})  # fmt: skip
        raw = [p.raw_obs for p in parts if p.raw_obs is not None]
        episodes = sorted(
            (e for p in parts for e in p.episodes), key=lambda e: e[0]
        )  # stable: environment order within a step
        return Rollout(
            buffer=buffer,
            rewards=np.concatenate([p.rewards for p in parts], axis=1),
            truncated=np.concatenate([p.truncated for p in parts], axis=1),
            bootstrap=np.concatenate([p.bootstrap for p in parts], axis=1),
            last_obs=np.concatenate([p.last_obs for p in parts], axis=0),
            last_latency_s=np.concatenate([p.last_latency_s for p in parts], axis=0),
            last_privileged=np.concatenate([p.last_privileged for p in parts], axis=0),
            raw_obs=np.concatenate(raw, axis=1) if len(raw) == len(parts) else None,
            episodes=episodes,
        )


class RolloutCollector(Protocol):
    """Where the trainer's experience comes from (see the module docstring)."""

    @property
    def num_envs(self) -> int:
        """Environments ``N`` of every :class:`Rollout`."""
        ...

    def reset(self, seed: int) -> None:
        """Reset every environment; environment ``i`` gets seed ``seed + i``."""
        ...

    def collect(self, agent: Agent, steps: int) -> Rollout:
        """``steps`` steps of every environment, acting with ``agent`` as it is now."""
        ...

    def close(self, interrupted: bool = False) -> None:
        """Release the environments (or actors); after an interrupt never wait long."""
        ...


#: Builds the collector of a run from its (validated) configuration, env and action mapping.
CollectorFactory = Callable[[TrainConfig, EnvInfo, Acting], RolloutCollector]


def in_process_collector(cfg: TrainConfig, info: EnvInfo, acting: Acting) -> VectorCollector:
    """``--workers 0``: all ``cfg.envs`` environments in this process (or its worker
    processes with ``cfg.async_envs``), folding observations into the learner's normaliser."""
    from liquidnode.controller.train.envs import make_vector_env

    envs = make_vector_env(cfg.env, cfg.envs, cfg.dt_jitter, cfg.seed, cfg.randomize,
                           cfg.randomize_seed, asynchronous=cfg.async_envs,
                           episode_ticks=cfg.episode_ticks, obs_cost=cfg.obs_cost,
                           action_low_pass=cfg.action_low_pass)  # fmt: skip
    return VectorCollector(envs, acting)


class VectorCollector:
    """A vector env stepped in this process, with the carried recurrent state.

    Args:
        envs: the vector env (auto-reset in the same step, ``info["final_obs"]``; see
            :func:`controller.train.envs.make_vector_env`).
        acting: action mapping and time inputs.
        update_stats: fold each observation into ``agent.obs_norm`` before acting on it (the
            learner's own normaliser); otherwise normalise with the agent's statistics as
            they are and return the raw observations in :attr:`Rollout.raw_obs`.
        first_env: index of this vector env's first environment in the run (for seeds).
        close_timeout_s: after an interrupt, how long :meth:`close` waits for worker
            processes to finish their step, s.
    """

    def __init__(
        self,
        envs: gym.vector.VectorEnv,
        acting: Acting,
        *,
        update_stats: bool = True,
        first_env: int = 0,
        close_timeout_s: float = 5.0,
    ) -> None:
        self.envs = envs
        self.acting = acting
        self.update_stats = update_stats
        self.first_env = first_env
        self.close_timeout_s = close_timeout_s
        n = int(envs.num_envs)
        self._n = n
        self.raw_obs: np.ndarray | None = None
        self.hidden: np.ndarray | None = None
        self.starts = np.ones(n, dtype=np.float32)
        self.ts = np.full(n, acting.nominal_ts, dtype=np.float32)
        self.latency_s = np.zeros(n)
        self.privileged = np.zeros((n, acting.privileged_dim), dtype=np.float32)
        self.ep_return = np.zeros(n)

    @property
    def num_envs(self) -> int:
        """Environments in the vector env."""
        return self._n

    def reset(self, seed: int) -> None:
        """Reset: environment ``first_env + j`` gets seed ``seed + first_env + j``; every
        episode starts afresh (state zeroed, nominal time input)."""
        if self.first_env == 0:
            self.raw_obs, infos = self.envs.reset(seed=seed)
        else:
            seeds = [seed + self.first_env + j for j in range(self._n)]
            # Sync/AsyncVectorEnv take a seed per env; VectorEnv's annotation says int only.
            self.raw_obs, infos = self.envs.reset(seed=seeds)  # type: ignore[arg-type]
        self.latency_s = episode_latencies(infos, self._n)
        self.privileged = privileged_features(infos, self.privileged)
        self.hidden = None
        self.starts = np.ones(self._n, dtype=np.float32)
        self.ts = np.full(self._n, self.acting.nominal_ts, dtype=np.float32)
        self.ep_return = np.zeros(self._n)

    def collect(self, agent: Agent, steps: int) -> Rollout:
        """Act for ``steps`` steps with ``agent`` (sampling with torch's global generator);
        :meth:`reset` must have been called once before."""
        if self.raw_obs is None:
            raise RuntimeError("VectorCollector.collect before reset")
        actor, critic, obs_norm = agent.actor, agent.critic, agent.obs_norm
        n, acting = self._n, self.acting
        obs_dim = int(np.asarray(self.raw_obs).shape[-1])
        n_in = obs_dim + int(acting.latency_input is not None)
        buf = RolloutBuffer.empty(steps, n, n_in, int(acting.act_scale.shape[0]),
                                  actor.state_size, acting.privileged_dim)  # fmt: skip
        if self.hidden is None:
            self.hidden = np.zeros((n, actor.state_size), dtype=np.float32)
        rewards = np.zeros((steps, n))
        truncated = np.zeros((steps, n), dtype=bool)
        bootstrap = np.zeros((steps, n), dtype=np.float32)
        raw_all = None if self.update_stats else np.zeros((steps, n, obs_dim))
        episodes: list[tuple[int, float]] = []
        raw_obs, hidden, starts, ts = self.raw_obs, self.hidden, self.starts, self.ts
        latency_s, privileged = self.latency_s, self.privileged
        for t in range(steps):
            if raw_all is not None:
                raw_all[t] = raw_obs
            obs = acting.cell_input(obs_norm(raw_obs, update=self.update_stats), latency_s)
            buf.obs[t], buf.ts[t], buf.starts[t], buf.hidden[t] = obs, ts, starts, hidden
            buf.privileged[t] = privileged
            with torch.no_grad():
                x = to_tensor(obs)
                mean, h_next = actor.step(x, to_tensor(hidden), to_tensor(ts), to_tensor(starts))
                dist = actor.distribution(mean)
                action = dist.sample()
                buf.logprobs[t] = dist.log_prob(action).sum(-1).numpy()
                buf.values[t] = critic(x, to_tensor(privileged)).numpy()
            buf.actions[t] = action.numpy()
            env_action = acting.act_offset + acting.act_scale * np.clip(action.numpy(), -1.0, 1.0)
            raw_obs, reward, terminated, trunc, infos = self.envs.step(env_action)

            done = np.logical_or(terminated, trunc)
            self.ep_return += reward
            rewards[t] = reward
            # A time-limit truncation bootstraps from the final observation's value.
            cut = np.logical_and(trunc, np.logical_not(terminated))
            truncated[t] = cut
            if cut.any():
                final = np.stack([infos["final_obs"][i] for i in np.flatnonzero(cut)])
                final = acting.cell_input(obs_norm(final), latency_s[cut])  # the ended episode's
                ended = privileged_features(infos.get("final_info", {}), privileged)[cut]
                with torch.no_grad():
                    bootstrap[t, cut] = critic(to_tensor(final), to_tensor(ended)).numpy()
            latency_s = episode_latencies(infos, n)  # after an auto-reset: the new episode's
            privileged = privileged_features(infos, privileged)
            buf.dones[t] = done
            for i in np.flatnonzero(done):
                episodes.append((t, float(self.ep_return[i])))
                self.ep_return[i] = 0.0
            dt = np.asarray(infos.get("dt", np.full(n, acting.control_period_s)))
            ts = np.where(done, acting.nominal_ts, dt * acting.time_scale).astype(np.float32)
            starts = done.astype(np.float32)
            hidden = h_next.numpy()
        self.raw_obs, self.hidden, self.starts, self.ts = raw_obs, hidden, starts, ts
        self.latency_s, self.privileged = latency_s, privileged
        return Rollout(
            buffer=buf,
            rewards=rewards,
            truncated=truncated,
            bootstrap=bootstrap,
            last_obs=np.asarray(raw_obs, dtype=np.float64),
            last_latency_s=latency_s.copy(),
            last_privileged=privileged.copy(),
            raw_obs=raw_all,
            episodes=episodes,
        )

    def close(self, interrupted: bool = False) -> None:
        """Close the vector env (after an interrupt, waiting at most ``close_timeout_s``)."""
        if interrupted:
            self.envs.close(timeout=self.close_timeout_s)
        else:
            self.envs.close()


def episode_latencies(infos: dict[str, Any], n: int) -> np.ndarray:
    """Each environment's actuation latency from a vector env's ``infos``, s, ``(n,)``: the
    randomisation's ``latency_s`` (see :class:`~liquidnode.sim.randomization.gym_wrapper.
    RandomizedEnv`), 0 where an env does not report one (no randomisation)."""
    if "latency_s" not in infos:
        return np.zeros(n)
    have = np.asarray(infos.get("_latency_s", np.ones(n, dtype=bool)), dtype=bool)
    return np.where(have, np.asarray(infos["latency_s"], dtype=np.float64), 0.0)


def privileged_features(infos: dict[str, Any], previous: np.ndarray) -> np.ndarray:
    """Each environment's privileged features from a vector env's ``infos`` (or their
    ``final_info``), ``(n, k)`` float32 like ``previous``: ``infos["privileged"]`` where an
    environment reports it, else its row of ``previous``; ``previous`` itself when ``k`` is 0
    (no privileged critic) or no environment reports any."""
    if previous.shape[1] == 0 or "privileged" not in infos:
        return previous
    have = np.asarray(infos.get("_privileged", np.ones(len(previous), dtype=bool)), dtype=bool)
    reported = np.asarray(infos["privileged"], dtype=np.float32)
    if reported.shape != previous.shape:
        raise ValueError(
            f"the envs report {reported.shape[1:]} privileged features, the critic takes "
            f"{previous.shape[1]}"
        )
    return np.where(have[:, None], reported, previous)


def scaled_rewards(
    rollout: Rollout,
    scale: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
    gamma: float,
) -> np.ndarray:
    """The rewards PPO learns from, ``(T, N)``: raw rewards through the running reward scaler
    ``scale`` (a :class:`~controller.train.normalization.RewardScaler`, called step by step in
    time order; None: unscaled), plus ``gamma * bootstrap`` on truncated steps."""
    out = np.zeros(rollout.rewards.shape, dtype=np.float32)
    dones = rollout.buffer.dones.astype(bool)
    for t in range(rollout.rewards.shape[0]):
        reward = rollout.rewards[t]
        scaled = scale(reward, dones[t]) if scale is not None else reward
        cut = rollout.truncated[t]
        if cut.any():
            scaled = np.asarray(scaled, dtype=np.float64).copy()
            scaled[cut] += gamma * rollout.bootstrap[t, cut]
        out[t] = scaled
    return out


__all__ = [
    "SQUASH",
    "Acting",
    "Agent",
    "CollectorFactory",
    "Rollout",
    "RolloutCollector",
    "VectorCollector",
    "episode_latencies",
    "in_process_collector",
    "privileged_features",
    "scaled_rewards",
]
