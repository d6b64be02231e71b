"""liquidnode's controller: liquid runtime, policy files, control loop, safety and logs.

Public API (numpy only, never imports torch)::

    from controller import Policy, from_ncps, load_episode
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Lazy attributes keep ``import controller`` cheap (the CLI's --help imports it).
_LAZY = {
    "Policy": "controller.policy",
    "from_ncps": "controller.ncps_import",
    "ControlLoop": "controller.loop",
    "LoopConfig": "controller.loop",
    "SafetyLayer": "controller.safety",
    "Plant": "controller.plant",
    "PlantSpec": "controller.plant",
    "Observation": "controller.plant",
    "load_episode": "controller.logs.episode",
    "Episode": "controller.logs.episode",
}

if TYPE_CHECKING:
    from controller.logs.episode import Episode, load_episode
    from controller.loop import ControlLoop, LoopConfig
    from controller.ncps_import import from_ncps
    from controller.plant import Observation, Plant, PlantSpec
    from controller.policy import Policy
    from controller.safety import SafetyLayer


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'controller' has no attribute {name!r}")


__all__ = [
    "ControlLoop",
    "Episode",
    "LoopConfig",
    "Observation",
    "Plant",
    "PlantSpec",
    "Policy",
    "SafetyLayer",
    "__version__",
    "from_ncps",
    "load_episode",
]
