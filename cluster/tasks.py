"""Waiting on Ray actor tasks: results as they come, lost workers and overdue tasks reported.

The one loop behind :class:`~liquidnode.cluster.episodes.EpisodePool` (episode blocks) and
:class:`~liquidnode.cluster.rollouts.RayCollector` (rollout slices): each task is a Ray object
reference mapped to the caller's key and the time it was submitted; the caller decides what a
result or a loss means (hand out more work, replace the actor, give up).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from liquidnode.controller.errors import LiquidNodeError

#: Seconds between checks of the running tasks against their timeout.
POLL_S = 0.5

K = TypeVar("K")


def wait_all(
    ray: Any,
    running: dict[Any, tuple[K, float]],
    timeout_s: float,
    on_result: Callable[[K, Any], None],
    on_lost: Callable[[K, str], None],
) -> None:
    """Wait until ``running`` (``{ref: (key, submitted at, time.monotonic())}``) is empty.

    ``on_result(key, value)`` gets each finished task's value; ``on_lost(key, why)`` each task
    whose worker died or that ran past ``timeout_s``. Both may submit new tasks into
    ``running`` (and ``on_lost`` may raise to give up).

    Raises:
        LiquidNodeError: a task raised (``"<type>: <message>"`` of its exception).
        KeyboardInterrupt: a task was interrupted (Ctrl-C / SIGTERM reached the worker).
    """
    from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError, WorkerCrashedError

    while running:
        ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
        for ref in ready:
            key, _t0 = running.pop(ref)
            try:
                value = ray.get(ref, timeout=timeout_s)
            except (RayActorError, WorkerCrashedError, GetTimeoutError) as exc:
                on_lost(key, f"worker lost ({type(exc).__name__})")
            except RayTaskError as exc:
                cause = exc.cause if exc.cause is not None else exc
                if isinstance(cause, KeyboardInterrupt):
                    raise KeyboardInterrupt from None
                raise LiquidNodeError(f"{type(cause).__name__}: {cause}") from None
            else:
                on_result(key, value)
        now = time.monotonic()
        for ref, (key, t0) in list(running.items()):
            if now - t0 > timeout_s:
                del running[ref]
                on_lost(key, f"no result after {timeout_s:g} s")
