"""Episode logs: an MCAP recorder for the control loop, a reader, replay and summaries.

Public API (numpy + mcap, never imports torch)::

    from liquidnode.controller.logs import McapRecorder, load_episode, load_episodes, Episode

The format is described in :mod:`controller.logs.schema`.
"""

from __future__ import annotations

from liquidnode.controller.logs.episode import (
    Episode,
    LogContents,
    load_episode,
    load_episodes,
    read_log,
)
from liquidnode.controller.logs.recorder import McapRecorder
from liquidnode.controller.logs.schema import LOG_FORMAT_VERSION

__all__ = [
    "LOG_FORMAT_VERSION",
    "Episode",
    "LogContents",
    "McapRecorder",
    "load_episode",
    "load_episodes",
    "read_log",
]
