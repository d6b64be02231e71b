"""liquidnode's controller: liquid runtime, policy files, control loop, safety, logs, training.

The bottom layer of the package: it imports nothing of :mod:`liquidnode.sim`,
:mod:`liquidnode.firmware_bridge` or :mod:`liquidnode.cli` (simulations come through
:mod:`liquidnode.controller.simulators`). The public API is re-exported by the package root::

    from liquidnode import Policy, from_ncps, load_episode
"""

from __future__ import annotations

from liquidnode import __version__

__all__ = ["__version__"]
