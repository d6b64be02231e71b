"""One training run's experience collected by Ray actors (``train --workers N``).

The learner (recurrent PPO, :func:`liquidnode.controller.train.ppo.train`) runs in the
driver; :class:`RayCollector` is its :class:`~liquidnode.controller.train.rollout.collector.
RolloutCollector`. The run's ``--envs`` environments are cut into ``N`` contiguous slices,
one per actor (:class:`RolloutWorker`, one CPU): actor ``k`` builds environments
``first_k .. first_k + count_k - 1`` exactly as the in-process trainer builds them (same
``--randomize`` spec, same seeds), in one ``SyncVectorEnv``, and keeps them (and the carried
recurrent state) from one rollout to the next.

What an actor acts with. At the start of every rollout the driver puts the learner's current
weights in the object store once (actor and critic parameters, observation statistics) and
every actor loads them into its own copy of the torch actor and critic on CPU. Acting with
the torch modules, not the exported numpy policy, keeps PPO exact: the stored
log-probabilities (and values) are computed by the very parameters the learner's ratio is
taken against, and the stored hidden states are in the layout the learner unrolls from; the
numpy runtime still runs every evaluation. During a rollout an actor normalises observations
with the statistics it was sent (frozen) and returns the raw observations, which the learner
folds into its statistics afterwards; in-process they are folded in step by step. Reward
scaling happens in the learner over all environments. Actions are sampled from each actor's
own torch generator (seeded from ``--seed`` and the slice), so ``--workers 0`` and
``--workers N`` see the same environments but not the same action noise: their results agree
statistically, not bit for bit.

Failure handling, in the driver:

- an actor that dies mid-rollout (its process killed, its node lost) is replaced by a new one
  over the same slice, whose environments start fresh episodes, and the slice's rollout is
  collected again with the same weights (up to ``retries`` times per rollout);
- a slice that has not come back ``timeout_s`` after it was asked for counts as a death: its
  actor is killed and replaced, so the driver never waits forever;
- an exception inside an actor stops the run with its message as a :class:`LiquidNodeError`;
- Ctrl-C / SIGTERM in the driver propagates (the trainer saves its checkpoint) and
  :meth:`RayCollector.close` kills every actor.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from liquidnode.cluster.session import require_ray
from liquidnode.cluster.tasks import wait_all
from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.train.config import TrainConfig
from liquidnode.controller.train.envs import EnvInfo
from liquidnode.controller.train.rollout.collector import (
    Acting,
    Agent,
    CollectorFactory,
    Rollout,
    VectorCollector,
)

#: Seconds one slice's rollout may take, asked-for to result (actor start-up included),
#: before its actor counts as stuck.
DEFAULT_TIMEOUT_S = 300.0
#: Times a rollout's slices may be re-collected after actor deaths before the run gives up.
DEFAULT_RETRIES = 3


def env_slices(envs: int, workers: int) -> list[tuple[int, int]]:
    """``(first, count)`` of each worker's contiguous share of ``envs`` environments (sizes
    differ by at most one).

    Raises:
        LiquidNodeError: fewer environments than workers.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if envs < workers:
        raise LiquidNodeError(
            f"--workers {workers} needs --envs >= {workers} (each worker steps a share of the "
            f"--envs {envs} environments)"
        )
    bounds = [k * envs // workers for k in range(workers + 1)]
    return [(bounds[k], bounds[k + 1] - bounds[k]) for k in range(workers)]


class RolloutWorker:
    """An actor's state: a slice of the run's environments, its carried recurrent state and a
    copy of the agent. Ray wraps this class in :class:`RayCollector`; in-process it is an
    ordinary object.

    Args:
        cfg: the run's configuration (env, seeds, randomisation, architecture).
        info: the env's spaces.
        acting: action mapping and time inputs.
        first: index of the slice's first environment in the run.
        count: environments in the slice.
        torch_seed: seed of this actor's action sampling.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        info: EnvInfo,
        acting: Acting,
        first: int,
        count: int,
        torch_seed: int,
    ) -> None:
        import torch

        from liquidnode.controller.train.envs import make_vector_env

        torch.set_num_threads(cfg.threads)
        torch.manual_seed(torch_seed)
        envs = make_vector_env(cfg.env, count, cfg.dt_jitter, cfg.seed, cfg.randomize,
                               cfg.randomize_seed, asynchronous=False, first=first,
                               episode_ticks=cfg.episode_ticks,
                               obs_cost=cfg.obs_cost,
                               action_low_pass=cfg.action_low_pass)  # fmt: skip
        self.collector = VectorCollector(envs, acting, update_stats=False, first_env=first)
        self.agent = Agent.build(cfg, info, acting.privileged_dim)

    def collect(
        self, weights: dict[str, Any], steps: int, reset_seed: int | None = None
    ) -> Rollout:
        """``steps`` steps of the slice with ``weights`` (:meth:`Agent.weights`); first a
        reset (environment ``i`` seeded ``reset_seed + i``) when ``reset_seed`` is given."""
        if reset_seed is not None:
            self.collector.reset(reset_seed)
        self.agent.load(weights)
        return self.collector.collect(self.agent, steps)

    def pid(self) -> int:
        """The worker's process id (tests kill it to check recovery)."""
        return os.getpid()


class RayCollector:
    """``workers`` Ray actors, each stepping a slice of the run's environments.

    Args:
        cfg: the run's configuration; ``cfg.envs`` environments are shared out.
        info: the env's spaces.
        acting: action mapping and time inputs.
        workers: actors, 1 <= workers <= ``cfg.envs``.
        timeout_s: seconds a slice's rollout may take before its actor is replaced.
        retries: re-collections of slices per rollout after actor deaths before giving up.
        on_submitted: called as ``on_submitted(rollout_index, actors)`` once each rollout's
            slices are asked for (tests use it to kill an actor mid-rollout).

    Raises:
        LiquidNodeError: Ray is missing, fewer environments than workers, or fewer CPUs in
            the cluster than workers.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        info: EnvInfo,
        acting: Acting,
        workers: int,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        on_submitted: Callable[[int, list[Any]], None] | None = None,
    ) -> None:
        self.slices = env_slices(cfg.envs, workers)
        self._ray = require_ray()
        cpus = self._ray.cluster_resources().get("CPU", 0.0)
        if cpus < workers:  # the actors (one CPU each) could never all start
            raise LiquidNodeError(
                f"--workers {workers} needs {workers} CPUs; the Ray cluster has {cpus:g}"
            )
        # max_concurrency 2: pid() answers while a rollout runs (only one collect at a time
        # is ever asked of an actor).
        self._remote = self._ray.remote(num_cpus=1, max_restarts=0, max_concurrency=2)(
            RolloutWorker
        )
        randomize = cfg.randomize
        if randomize is not None and Path(randomize).is_file():  # actors may run elsewhere
            randomize = str(Path(randomize).resolve())
        self._cfg = dataclasses.replace(cfg, randomize=randomize)
        self._info, self._acting = info, acting
        self.timeout_s, self.retries = timeout_s, retries
        self.on_submitted = on_submitted
        self.replaced = 0  # actors replaced so far (deaths and timeouts)
        self._rollouts = 0
        self._reset_seed = cfg.seed
        self._steps_since_reset = 0
        self.actors: list[Any] = [self._new_actor(k) for k in range(len(self.slices))]
        self._fresh = [True] * len(self.actors)  # must reset before its first collect

    def _new_actor(self, slot: int) -> Any:
        first, count = self.slices[slot]
        torch_seed = self._cfg.seed + 104_729 * (first + 1) + 7 * self.replaced
        return self._remote.remote(self._cfg, self._info, self._acting, first, count, torch_seed)

    @property
    def num_envs(self) -> int:
        """Environments of the run (all slices)."""
        return self._cfg.envs

    def reset(self, seed: int) -> None:
        """Every slice starts fresh episodes at its next :meth:`collect` (environment ``i``
        seeded ``seed + i``)."""
        self._reset_seed, self._steps_since_reset = seed, 0
        self._fresh = [True] * len(self.actors)

    def collect(self, agent: Agent, steps: int) -> Rollout:
        """One rollout of every slice with ``agent``'s current weights, joined in environment
        order.

        Raises:
            LiquidNodeError: an actor raised, or slices died more than ``retries`` times.
            KeyboardInterrupt: Ctrl-C / SIGTERM (close the collector afterwards).
        """
        if not self.actors:
            raise LiquidNodeError("the rollout workers are closed")
        ray = self._ray
        weights = ray.put(agent.weights())
        # A replacement's environments start afresh, seeded like a reset at this step.
        seed_now = self._reset_seed + self._steps_since_reset
        running: dict[Any, tuple[int, float]] = {}  # ref -> (slot, asked at)
        parts: list[Rollout | None] = [None] * len(self.actors)
        deaths = 0

        def submit(slot: int) -> None:
            seed = seed_now if self._fresh[slot] else None
            ref = self.actors[slot].collect.remote(weights, steps, seed)
            self._fresh[slot] = False
            running[ref] = (slot, time.monotonic())

        def replace(slot: int, why: str) -> None:
            nonlocal deaths
            deaths += 1
            if deaths > self.retries:
                first, count = self.slices[slot]
                raise LiquidNodeError(
                    f"rollout workers died {deaths} times in one rollout (last: environments "
                    f"{first}..{first + count - 1}, {why})"
                )
            ray.kill(self.actors[slot], no_restart=True)
            self.replaced += 1
            self.actors[slot] = self._new_actor(slot)
            self._fresh[slot] = True
            submit(slot)

        for slot in range(len(self.actors)):
            submit(slot)
        if self.on_submitted is not None:
            self.on_submitted(self._rollouts, list(self.actors))

        def on_result(slot: int, part: Rollout) -> None:
            parts[slot] = part

        wait_all(ray, running, self.timeout_s, on_result, replace)
        self._rollouts += 1
        self._steps_since_reset += steps * self.num_envs
        complete = [p for p in parts if p is not None]
        assert len(complete) == len(parts)
        return Rollout.concatenate(complete)

    def close(self, interrupted: bool = False) -> None:
        """Kill every actor (idempotent; never waits on them)."""
        for actor in self.actors:
            self._ray.kill(actor, no_restart=True)
        self.actors = []


def ray_collector(
    workers: int,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
    on_submitted: Callable[[int, list[Any]], None] | None = None,
) -> CollectorFactory:
    """The trainer's collector factory for ``--workers N``: a :class:`RayCollector` on the
    Ray this process is connected to (see :func:`liquidnode.cluster.session.ray_session`)."""

    def build(cfg: TrainConfig, info: EnvInfo, acting: Acting) -> RayCollector:
        return RayCollector(cfg, info, acting, workers, timeout_s=timeout_s, retries=retries,
                            on_submitted=on_submitted)  # fmt: skip

    return build


__all__ = [
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT_S",
    "RayCollector",
    "RolloutWorker",
    "env_slices",
    "ray_collector",
]
