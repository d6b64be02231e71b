"""liquidnode's controller: liquid runtime, policy files, control loop, safety and logs.

Public API (numpy only, never imports torch)::

    from liquidnode.controller import Policy, from_ncps, load_episode
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Lazy attributes keep ``import controller`` cheap (the CLI's --help imports it).
_LAZY = {
    "Policy": "liquidnode.controller.policy",
    "from_ncps": "liquidnode.controller.ncps_import",
    "ControlLoop": "liquidnode.controller.loop",
    "LoopConfig": "liquidnode.controller.loop",
    "SafetyLayer": "liquidnode.controller.safety",
    "Plant": "liquidnode.controller.plant",
    "PlantSpec": "liquidnode.controller.plant",
    "Observation": "liquidnode.controller.plant",
    "load_episode": "liquidnode.controller.logs.episode",
    "Episode": "liquidnode.controller.logs.episode",
}

if TYPE_CHECKING:
    from liquidnode.controller.logs.episode import Episode, load_episode
    from liquidnode.controller.loop import ControlLoop, LoopConfig
    from liquidnode.controller.ncps_import import from_ncps
    from liquidnode.controller.plant import Observation, Plant, PlantSpec
    from liquidnode.controller.policy import Policy
    from liquidnode.controller.safety import SafetyLayer


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
