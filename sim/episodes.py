"""Episodes as units of work: a block of seeded episodes, run anywhere, merged exactly.

``liquidnode eval`` and ``stress`` run episode ``i`` of a run with reset seed ``seed + i``
(and, with a randomisation spec, the episode's draws from ``(randomize_seed, seed + i)``), so
an episode's outcome depends on its seed alone, not on the episodes run before it in the
same plant. An :class:`EpisodeBlock` names a contiguous range of a run's episodes;
:class:`BlockRunner` runs blocks in fast mode (the control loop with its safety layer, the
deterministic policy, ``dt`` = the nominal period) and returns one :class:`EpisodeOutcome`
per episode. Blocks of one run executed in any order, in any process, give the same outcomes
as the whole run in one loop; :func:`split` cuts a run into blocks and :func:`in_order` puts
the outcomes back in episode order. ``liquidnode.cluster`` runs blocks in Ray actors.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from liquidnode.controller.loop import ControlLoop, LoopConfig
from liquidnode.controller.plant import Plant
from liquidnode.controller.policy import Policy
from liquidnode.controller.records import Event, TickRecord
from liquidnode.sim.randomization.spec import RandomizationSpec


@dataclass(frozen=True)
class EpisodeBlock:
    """Episodes ``first .. first + count - 1`` of a run (reset seeds ``seed + first`` ...).

    Attributes:
        env: Gymnasium MuJoCo id or MJCF path (a path must exist where the block runs).
        seed: the run's first reset seed; episode ``i`` resets with ``seed + i``.
        first: index of the block's first episode in the run (>= 0).
        count: episodes in the block (>= 1).
        rate_hz: control rate, Hz; None keeps the environment's own.
        max_ticks: episode length in ticks; None keeps the environment's time limit.
        randomize: a fixed or random randomisation spec, or None (nominal).
        randomize_seed: base seed of the randomisation (the run's, not the block's).
        record_actions: keep the action sent at every tick (for smoothness figures).
        latency_s: actuation latency told to a policy with a latency input, s; None: the
            plant's own (``LoopConfig.latency_s``).
        key: the caller's label of the run the block belongs to (a stress cell index...).
    """

    env: str
    seed: int
    first: int
    count: int
    rate_hz: float | None = None
    max_ticks: int | None = None
    randomize: RandomizationSpec | None = None
    randomize_seed: int = 0
    record_actions: bool = False
    latency_s: float | None = None
    key: Hashable = 0

    def plant_key(self) -> tuple[Any, ...]:
        """What the plant depends on: blocks with equal keys can share one plant."""
        return (self.env, self.rate_hz, self.max_ticks, repr(self.randomize), self.randomize_seed)


@dataclass(frozen=True)
class EpisodeOutcome:
    """One finished episode.

    Attributes:
        index: the episode's index in its run.
        seed: its reset seed.
        return_: the sum of its rewards.
        ticks: control ticks it lasted.
        terminated: it ended in a terminal state (a fall).
        faults: fault / NaN-guard / e-stop events in it.
        actions: the actions sent, ``(ticks, act_dim)`` float64, or None unless the block
            asked for them.
    """

    index: int
    seed: int
    return_: float
    ticks: int
    terminated: bool
    faults: int
    actions: np.ndarray | None = None


class ActionRecorder:
    """A :class:`~controller.records.Recorder` keeping the action sent, per episode."""

    def __init__(self) -> None:
        self.episodes: list[list[np.ndarray]] = []

    def start(self, metadata: dict[str, Any]) -> None:
        """Nothing to prepare."""

    def tick(self, record: TickRecord) -> None:
        """Keep the action sent."""
        while len(self.episodes) <= record.episode:
            self.episodes.append([])
        self.episodes[record.episode].append(record.sent)

    def event(self, event: Event) -> None:
        """Events are not needed."""

    def close(self) -> None:
        """Nothing to flush."""


class BlockRunner:
    """Runs :class:`EpisodeBlock` s of one policy, keeping one plant per plant key.

    Reusing a plant between blocks is safe: every episode resets it with its own seed (and
    redraws its randomisation from that seed). :meth:`close` disconnects the plants.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._plants: dict[tuple[Any, ...], Plant] = {}

    def plant(self, block: EpisodeBlock) -> Plant:
        """The plant ``block`` runs on (made on first use)."""
        from liquidnode.sim import make_plant

        key = block.plant_key()
        if key not in self._plants:
            kwargs: dict[str, Any] = {}
            if block.randomize is not None:
                kwargs = {
                    "randomize": block.randomize,
                    "randomize_seed": block.randomize_seed,
                    "obs_scale": self.policy.obs_std,
                }
            self._plants[key] = make_plant(
                block.env, rate_hz=block.rate_hz, max_ticks=block.max_ticks, **kwargs
            )
        return self._plants[key]

    def run(self, block: EpisodeBlock) -> list[EpisodeOutcome]:
        """The outcomes of ``block``'s episodes, in order.

        Raises:
            KeyboardInterrupt: the run was interrupted (Ctrl-C, SIGTERM) before it finished.
        """
        plant = self.plant(block)
        recorder = ActionRecorder() if block.record_actions else None
        loop = ControlLoop(
            plant,
            self.policy,
            LoopConfig(realtime=False, max_ticks=block.max_ticks, latency_s=block.latency_s),
            recorder=recorder,
        )
        summary = loop.run(episodes=block.count, seed=block.seed + block.first)
        if summary.interrupted:
            raise KeyboardInterrupt
        out = []
        for e in summary.episodes:
            actions = None
            if recorder is not None:
                sent = recorder.episodes[e.index] if e.index < len(recorder.episodes) else []
                actions = np.asarray(sent, np.float64).reshape(len(sent), -1)
            out.append(
                EpisodeOutcome(
                    index=block.first + e.index,
                    seed=block.seed + block.first + e.index,
                    return_=float(e.return_),
                    ticks=int(e.ticks),
                    terminated=bool(e.terminated),
                    faults=int(e.faults),
                    actions=actions,
                )
            )
        return out

    def close(self) -> None:
        """Disconnect every plant."""
        for plant in self._plants.values():
            plant.disconnect()
        self._plants.clear()


def split(episodes: int, blocks: int) -> list[tuple[int, int]]:
    """``(first, count)`` of up to ``blocks`` contiguous, near-equal blocks of a run.

    Example: ``split(10, 3) == [(0, 4), (4, 3), (7, 3)]``.
    """
    if episodes < 1 or blocks < 1:
        raise ValueError(f"episodes and blocks must be >= 1, got {episodes} and {blocks}")
    blocks = min(blocks, episodes)
    size, extra = divmod(episodes, blocks)
    out, first = [], 0
    for b in range(blocks):
        count = size + (b < extra)
        out.append((first, count))
        first += count
    return out


def in_order(outcomes: Iterable[EpisodeOutcome]) -> list[EpisodeOutcome]:
    """``outcomes`` sorted by episode index; raises ValueError on a gap or a duplicate."""
    ordered = sorted(outcomes, key=lambda o: o.index)
    for i, o in enumerate(ordered):
        if o.index != i:
            raise ValueError(
                f"episode outcomes are not complete: expected episode {i}, got {o.index}"
            )
    return ordered


__all__ = ["ActionRecorder", "BlockRunner", "EpisodeBlock", "EpisodeOutcome", "in_order", "split"]
