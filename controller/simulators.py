"""Where the controller gets simulated plants from, without importing a simulator.

The controller is the bottom layer: it closes loops against any :class:`Plant` and never
imports :mod:`liquidnode.sim`. Replay (rebuilding the plant a log was recorded on) and
training (Gymnasium environments) still need a simulator; they ask this registry, which
loads one on first use from the ``liquidnode.simulators`` entry-point group. liquidnode
registers its MuJoCo simulations there (``mujoco = "liquidnode.sim"``); another package can
register its own, or a program can call :func:`register_simulator` directly.

A simulator is any object (a module will do) with the two functions of :class:`Simulator`.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from liquidnode.controller.errors import LiquidNodeError

if TYPE_CHECKING:
    import gymnasium as gym

    from liquidnode.controller.plant import Plant

#: Entry-point group simulators register under.
ENTRY_POINT_GROUP = "liquidnode.simulators"


class Simulator(Protocol):
    """The two things the controller asks of a simulator."""

    def make_plant(
        self,
        env_or_path: str | os.PathLike[str],
        *,
        rate_hz: float | None = None,
        max_ticks: int | None = None,
        **kwargs: Any,
    ) -> Plant:
        """A plant for an environment id or model file (as ``liquidnode sim --env`` takes)."""

    def make_env(self, env_id: str, **kwargs: Any) -> gym.Env:
        """A Gymnasium environment for training (``gymnasium.make`` semantics)."""


_registered: dict[str, Simulator] = {}


def register_simulator(name: str, simulator: Simulator) -> None:
    """Register ``simulator`` under ``name``; the most recent registration is the default."""
    _registered.pop(name, None)
    _registered[name] = simulator


def get_simulator(name: str | None = None) -> Simulator:
    """The simulator registered as ``name`` (None: the default one).

    Raises:
        LiquidNodeError: no simulator of that name is registered or installed.
    """
    if not _registered:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            _registered.setdefault(ep.name, ep.load())
    if name is None and _registered:
        return next(reversed(_registered.values()))
    if name is not None and name in _registered:
        return _registered[name]
    known = ", ".join(_registered) or "none"
    raise LiquidNodeError(
        f"no simulator {name or '(default)'!r} is installed (registered: {known}); "
        "reinstall liquidnode (pip install -e .) so its entry points are registered"
    )


def make_plant(
    env_or_path: str | os.PathLike[str],
    *,
    rate_hz: float | None = None,
    max_ticks: int | None = None,
    **kwargs: Any,
) -> Plant:
    """:meth:`Simulator.make_plant` of the default simulator."""
    return get_simulator().make_plant(env_or_path, rate_hz=rate_hz, max_ticks=max_ticks, **kwargs)


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """:meth:`Simulator.make_env` of the default simulator."""
    return get_simulator().make_env(env_id, **kwargs)
