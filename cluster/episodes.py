"""Blocks of seeded episodes spread over Ray actors (``eval`` / ``stress --workers N``).

Each actor (:class:`EpisodeWorker`, one CPU) holds the policy and a
:class:`~liquidnode.sim.episodes.BlockRunner` (plants reused between blocks) and runs one
block at a time; :meth:`EpisodePool.run` hands the next block to whichever actor finishes
first. An :class:`EpisodePool` keeps its actors from one run to the next; :func:`run_blocks`
starts a pool for one run.
Since an episode's outcome depends only on its seed, the outcomes equal the in-process run's
exactly, whatever the number of actors or the order the blocks finish in.

Failure handling, in the driver:

- an actor that dies (its process killed, its node lost) is replaced by a new one and its
  block re-run, up to ``retries`` times per block;
- a block that has not come back ``timeout_s`` after it was handed out (a stuck actor, or
  one the cluster cannot place) counts as a death: its actor is killed and replaced;
- an exception inside a block (a plant that cannot be built...) stops the run with that
  exception's message as a :class:`LiquidNodeError`;
- Ctrl-C (or SIGTERM) in the driver kills every actor before the interrupt propagates, so
  nothing keeps running on the cluster.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from liquidnode.cluster.session import require_ray
from liquidnode.cluster.tasks import wait_all
from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.policy import Policy
from liquidnode.sim.episodes import BlockRunner, EpisodeBlock, EpisodeOutcome

#: Seconds a block may take from hand-out to result before its actor counts as stuck.
DEFAULT_TIMEOUT_S = 600.0
#: Times a block is re-run after its actor died before the run gives up.
DEFAULT_RETRIES = 3


class EpisodeWorker:
    """An actor's state: the policy and its plants. Ray wraps this class in
    :func:`run_blocks`; in-process it is an ordinary object."""

    def __init__(self, policy: Policy) -> None:
        self.runner = BlockRunner(policy)

    def run(self, block: EpisodeBlock) -> list[EpisodeOutcome]:
        """The outcomes of ``block`` (see :meth:`BlockRunner.run`)."""
        return self.runner.run(block)

    def pid(self) -> int:
        """The worker's process id (tests kill it to check recovery)."""
        import os

        return os.getpid()


class EpisodePool:
    """``workers`` Ray actors holding one policy, reused from one :meth:`run` to the next.

    A context manager: leaving the block (normally, on an error or on Ctrl-C) kills every
    actor. An error inside :meth:`run` kills them too (the pool is closed).

    Args:
        policy: the policy every actor runs (shipped to the object store once).
        workers: actors to start, >= 1.
        timeout_s: seconds a block may take, hand-out to result, before its actor is
            replaced.
        retries: re-runs of one block after actor deaths before giving up.

    Raises:
        LiquidNodeError: Ray is not installed.
    """

    def __init__(
        self,
        policy: Policy,
        workers: int,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._ray = require_ray()
        # max_concurrency 2: pid() answers while a block runs (only one block is handed out
        # at a time, so the runner is never used by two threads).
        self._remote = self._ray.remote(num_cpus=1, max_restarts=0, max_concurrency=2)(
            EpisodeWorker
        )
        self._policy_ref = self._ray.put(policy)
        self.timeout_s, self.retries = timeout_s, retries
        self.actors: list[Any] = [self._new_actor() for _ in range(workers)]

    def _new_actor(self) -> Any:
        return self._remote.remote(self._policy_ref)

    def __enter__(self) -> EpisodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_ready(self) -> None:
        """Block until every actor has started (its process up, the policy loaded)."""
        self._ray.get([a.pid.remote() for a in self.actors], timeout=self.timeout_s)

    def close(self) -> None:
        """Kill every actor (idempotent)."""
        for actor in self.actors:
            self._ray.kill(actor, no_restart=True)
        self.actors = []

    def run(
        self,
        blocks: list[EpisodeBlock],
        progress: Callable[[int, int], None] | None = None,
        on_started: Callable[[list[Any]], None] | None = None,
    ) -> list[list[EpisodeOutcome]]:
        """Run ``blocks`` on the actors; the outcomes per block, in block order.

        Args:
            blocks: the work.
            progress: called as ``progress(blocks_done, blocks_total)`` after each block.
            on_started: called once with the actor handles when the first blocks are handed
                out (tests use it to kill one).

        Raises:
            LiquidNodeError: a block raised, or its actor died more than ``retries`` times
                (the pool is closed).
            KeyboardInterrupt: Ctrl-C / SIGTERM (the pool is closed).
        """
        if not self.actors:
            raise LiquidNodeError("the episode pool is closed")
        ray, actors, timeout_s = self._ray, self.actors, self.timeout_s
        pending: deque[int] = deque(range(len(blocks)))
        running: dict[Any, tuple[tuple[int, int], float]] = {}  # ref -> ((block, slot), handed out)
        results: list[list[EpisodeOutcome] | None] = [None] * len(blocks)
        deaths = [0] * len(blocks)
        done = 0

        def hand_out(slot: int) -> None:
            if pending:
                i = pending.popleft()
                ref = actors[slot].run.remote(blocks[i])
                running[ref] = ((i, slot), time.monotonic())

        def replace(slot: int, i: int, why: str) -> None:
            deaths[i] += 1
            if deaths[i] > self.retries:
                raise LiquidNodeError(
                    f"episodes {blocks[i].first}..{blocks[i].first + blocks[i].count - 1} "
                    f"(seed {blocks[i].seed}) failed {deaths[i]} times: {why}"
                )
            ray.kill(actors[slot], no_restart=True)
            actors[slot] = self._new_actor()
            pending.appendleft(i)

        try:
            for slot in range(min(len(actors), len(blocks))):
                hand_out(slot)
            if on_started is not None:
                on_started(list(actors))

            def on_result(key: tuple[int, int], outcomes: list[EpisodeOutcome]) -> None:
                nonlocal done
                i, slot = key
                results[i] = outcomes
                done += 1
                if progress is not None:
                    progress(done, len(blocks))
                hand_out(slot)

            def on_lost(key: tuple[int, int], why: str) -> None:
                i, slot = key
                replace(slot, i, why)
                hand_out(slot)

            wait_all(ray, running, timeout_s, on_result, on_lost)
        except BaseException:  # Ctrl-C, errors: nothing keeps running on the cluster
            self.close()
            raise
        complete = [r for r in results if r is not None]
        assert len(complete) == len(blocks)
        return complete


def run_blocks(
    policy: Policy,
    blocks: list[EpisodeBlock],
    workers: int,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
    progress: Callable[[int, int], None] | None = None,
    on_started: Callable[[list[Any]], None] | None = None,
) -> list[list[EpisodeOutcome]]:
    """Run ``blocks`` on ``workers`` fresh Ray actors (at most one per block), killed at the
    end; the outcomes per block, in block order. Ray must be initialised (see
    :func:`liquidnode.cluster.session.ray_session`). Arguments and errors: :class:`EpisodePool`
    and :meth:`EpisodePool.run`."""
    if not blocks:
        return []
    pool = EpisodePool(policy, min(workers, len(blocks)), timeout_s=timeout_s, retries=retries)
    with pool:
        return pool.run(blocks, progress, on_started)


__all__ = ["DEFAULT_RETRIES", "DEFAULT_TIMEOUT_S", "EpisodePool", "EpisodeWorker", "run_blocks"]
