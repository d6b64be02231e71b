"""What the control loop hands to a recorder every tick, and the recorder interface.

The loop builds one :class:`TickRecord` per tick and one :class:`Event` per notable
occurrence and hands them to a :class:`Recorder`. A recorder must not block the loop:
``tick`` and ``event`` only enqueue; writing happens elsewhere (see :mod:`controller.logs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

#: Event kinds the loop and plants emit. ``detail`` carries kind-specific fields.
EVENT_KINDS = (
    "episode_start",  # detail: seed
    "episode_end",  # detail: return, ticks, terminated, truncated
    "overrun",  # detail: late_us, skipped_ticks
    "nan_guard",  # detail: channels (indices of non-finite values), source ("obs"|"action")
    "clamp",  # detail: channels clamped (only when clamping changed the action)
    "fault",  # detail: code, message
    "estop",  # detail: source
    "link_lost",  # detail: reason
    "link_restored",  # detail: downtime_s
    "log_error",  # written by the log recorder at close: detail: errors, dropped_ticks
)


@dataclass(slots=True)
class TickRecord:
    """One control tick.

    Attributes:
        episode: episode index within the run, from 0.
        tick: tick index within the episode, from 0.
        wall_time_ns: wall-clock time of the tick start, ns since the Unix epoch.
        mono_time_ns: monotonic clock time of the tick start, ns (``time.monotonic_ns``).
        dt_s: measured elapsed time since the previous tick, s (the cell's time input).
        obs: observation fed to the policy, float64 ``(obs_dim,)``.
        action: raw policy action, float64 ``(act_dim,)`` (may be non-finite).
        sent: action actually sent to the plant, float64 ``(act_dim,)``.
        reward: reward earned by the previous action (``Observation.reward``).
        state: policy hidden state after the step, float32 ``(state_dim,)``, or None.
        lateness_us: how late the tick started relative to its deadline, µs (>= 0).
        observe_us: time spent in ``plant.observe``, µs.
        policy_us: time spent in ``policy.step``, µs.
        act_us: time spent in safety filter + ``plant.act``, µs.
    """

    episode: int
    tick: int
    wall_time_ns: int
    mono_time_ns: int
    dt_s: float
    obs: np.ndarray
    action: np.ndarray
    sent: np.ndarray
    reward: float
    state: np.ndarray | None
    lateness_us: float
    observe_us: float
    policy_us: float
    act_us: float


@dataclass(slots=True)
class Event:
    """Something notable: overrun, NaN guard, fault, e-stop, link loss/reconnect, episode edges.

    Attributes:
        kind: one of :data:`EVENT_KINDS`.
        episode: episode index, or -1 outside episodes.
        tick: tick index within the episode, or -1.
        wall_time_ns: wall-clock time, ns since the Unix epoch.
        mono_time_ns: monotonic time, ns.
        detail: kind-specific JSON-able fields.
    """

    kind: str
    episode: int = -1
    tick: int = -1
    wall_time_ns: int = 0
    mono_time_ns: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


class Recorder(Protocol):
    """Receives ticks and events from the loop. Implementations must not block."""

    def start(self, metadata: dict[str, Any]) -> None:
        """Called once before the first tick with run metadata (policy, plant, seed, rates)."""

    def tick(self, record: TickRecord) -> None:
        """Called once per tick from the loop thread. Must return in microseconds."""

    def event(self, event: Event) -> None:
        """Called for each event from the loop thread. Must return in microseconds."""

    def close(self) -> None:
        """Flush and close. Called once, also when the loop exits by an exception."""
