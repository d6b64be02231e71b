"""Connecting to Ray: a local instance on this machine, or an existing cluster.

:func:`ray_session` is the one way a command gets Ray: ``address=None`` starts a local
instance bounded to ``cpus`` CPUs (stopped again when the block ends); an address (``auto``,
``HOST:6379`` or ``ray://HOST:10001``) joins a running cluster and leaves it running. When
Ray is already initialised in this process (a test, a notebook), the session uses it as is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from types import ModuleType

from liquidnode.controller.errors import LiquidNodeError

#: What a user who lacks Ray is told to run.
INSTALL_HINT = "pip install -c constraints.txt -e '.[cluster]'"


def require_ray() -> ModuleType:
    """The ``ray`` module; raises :class:`LiquidNodeError` with the install line if missing."""
    try:
        import ray
    except ImportError:
        raise LiquidNodeError(
            f"--workers, --address and 'sweep' need Ray, which the runtime install leaves "
            f"out: {INSTALL_HINT}"
        ) from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, cpus: int | None = None) -> Iterator[ModuleType]:
    """Ray for the duration of the block; yields the ``ray`` module.

    Args:
        address: a cluster to join, or None for a local instance.
        cpus: CPUs of a local instance (default: this machine's); ignored with ``address``.

    Raises:
        LiquidNodeError: Ray is not installed, or the cluster at ``address`` cannot be reached.
    """
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    options = {"include_dashboard": False, "logging_level": logging.WARNING}
    # ray.init installs its own SIGTERM handler (which ends the process on the spot); keep the
    # command's, so SIGTERM stops a run like Ctrl-C: actors killed, Ray shut down.
    main_thread = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if main_thread else None
    try:
        if address:
            ray.init(address=address, **options)
        else:
            # "local": always a new instance, never a cluster `ray start` left on this machine
            ray.init(address="local", num_cpus=cpus or os.cpu_count() or 1, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise LiquidNodeError(f"cannot start or reach {where}: {exc}") from None
    if sigterm is not None:
        signal.signal(signal.SIGTERM, sigterm)
    try:
        yield ray
    finally:
        ray.shutdown()


__all__ = ["INSTALL_HINT", "ray_session", "require_ray"]
