"""Helpers for the log tests: synthetic tick records written through the real recorder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from liquidnode.controller.logs import McapRecorder
from liquidnode.controller.records import Event, TickRecord


def make_tick(episode: int, tick: int, rng: np.random.Generator, state_dim: int = 8) -> TickRecord:
    """A tick with random values (float64 obs/actions, float32 state), stamped now."""
    return TickRecord(
        episode=episode,
        tick=tick,
        wall_time_ns=time.time_ns(),
        mono_time_ns=time.monotonic_ns(),
        dt_s=0.001 + 1e-6 * float(rng.random()),
        obs=rng.normal(size=4),
        action=rng.normal(size=2),
        sent=np.clip(rng.normal(size=2), -1, 1),
        reward=float(rng.random()),
        state=rng.normal(size=state_dim).astype(np.float32),
        lateness_us=float(rng.random() * 10),
        observe_us=1.0,
        policy_us=20.0,
        act_us=3.0,
    )


def write_log(
    path: Path,
    episodes: int = 2,
    ticks: int = 50,
    seed: int = 0,
    pace_s: float = 0.0,
    **kwargs: Any,
) -> list[list[TickRecord]]:
    """Write a log of ``episodes`` x ``ticks`` random ticks (``pace_s`` apart); returns the
    records written. ``kwargs`` go to :class:`McapRecorder`."""
    rng = np.random.default_rng(seed)
    written: list[list[TickRecord]] = []
    with McapRecorder(path, command="test", **kwargs) as rec:
        rec.start({"seed": seed, "rate_hz": 1000.0, "env_id": "Test-v0"})
        for e in range(episodes):
            rec.event(
                Event(
                    "episode_start", e, -1, time.time_ns(), time.monotonic_ns(), {"seed": seed + e}
                )
            )
            rows = [make_tick(e, i, rng) for i in range(ticks)]
            for r in rows:
                rec.tick(r)
                if pace_s:
                    time.sleep(pace_s)
            rec.event(
                Event(
                    "episode_end",
                    e,
                    ticks - 1,
                    time.time_ns(),
                    time.monotonic_ns(),
                    {"return": 12.5 + e, "ticks": ticks},
                )
            )
            written.append(rows)
    return written
