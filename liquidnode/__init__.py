"""liquidnode: liquid neural network (CfC / LTC / NCP) policies in a fixed-rate control loop.

One import package; its parts, bottom layer first:

- :mod:`liquidnode.controller`: the torch-free runtime (cells, policy files, control loop,
  timing, safety, logs) and training (``controller.train``, torch);
- :mod:`liquidnode.sim`: MuJoCo plants from Gymnasium ids or MJCF files, video;
- :mod:`liquidnode.firmware_bridge`: wire protocol, serial link, virtual robot, C firmware;
- :mod:`liquidnode.policies`: the shipped policy files and their model cards;
- :mod:`liquidnode.benchmarks`: side-by-side measurements;
- :mod:`liquidnode.cli`: the ``liquidnode`` command line, which wires the others (nothing
  below imports it).

Public API (numpy only, never imports torch)::

    from liquidnode import Policy, from_ncps, load_episode, make_plant
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Lazy attributes keep ``import liquidnode`` cheap (``liquidnode --help`` imports it).
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
    "assert_replays": "liquidnode.controller.testing",
    "make_plant": "liquidnode.sim",
}

if TYPE_CHECKING:
    from liquidnode.controller.logs.episode import Episode, load_episode
    from liquidnode.controller.loop import ControlLoop, LoopConfig
    from liquidnode.controller.ncps_import import from_ncps
    from liquidnode.controller.plant import Observation, Plant, PlantSpec
    from liquidnode.controller.policy import Policy
    from liquidnode.controller.safety import SafetyLayer
    from liquidnode.controller.testing import assert_replays
    from liquidnode.sim import make_plant


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'liquidnode' has no attribute {name!r}")


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
    "assert_replays",
    "from_ncps",
    "load_episode",
    "make_plant",
]
