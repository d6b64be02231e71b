"""What every comparison shares: side-by-side timing, result records, memory readings.

Timing rule: candidates of one comparison run in the same process, interleaved round by
round (A, B, C, then B, C, A, ...), so that a burst of load on this shared machine hits all of
them alike; each round times a block of calls, and the reported figure is the median over
rounds of the per-call time. Results carry ratios next to every absolute figure.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Check:
    """One target: what was measured against what was asked.

    Attributes:
        name: the target, e.g. ``"CfC-64: >= 10x faster than ncps torch"``.
        measured: the figure, e.g. ``"23.1x"``.
        met: True/False, or None when it could not be measured.
    """

    name: str
    measured: str
    met: bool | None

    def to_json(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"target": self.name, "measured": self.measured, "met": self.met}


@dataclass
class Section:
    """The result of one comparison.

    Attributes:
        key: short id (``policy_latency``...), the JSON key.
        title: heading of its table.
        columns: table header.
        rows: table rows (strings or numbers), same length as ``columns``.
        checks: the targets it decides.
        notes: how it was measured (one sentence each).
        unavailable: None when it ran, else why not (a missing module, no compiler...).
        data: raw figures for ``--json``.
    """

    key: str
    title: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unavailable: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "title": self.title,
            "unavailable": self.unavailable,
            "columns": self.columns,
            "rows": self.rows,
            "checks": [c.to_json() for c in self.checks],
            "notes": self.notes,
            "data": self.data,
        }


def unavailable(key: str, title: str, reason: str) -> Section:
    """A section that could not run, saying why."""
    return Section(key=key, title=title, unavailable=reason)


def interleaved(
    candidates: dict[str, Callable[[], Any]], rounds: int, calls: int, warmup: int = 50
) -> dict[str, float]:
    """Median seconds per call of each candidate, timed side by side.

    Args:
        candidates: name -> zero-argument callable doing one tick.
        rounds: number of rounds; in each, every candidate times ``calls`` calls, in an order
            rotated from round to round.
        calls: calls per timed block.
        warmup: untimed calls of each candidate first.

    Returns:
        name -> median over rounds of (block time / calls), in seconds.
    """
    names = list(candidates)
    for name in names:
        fn = candidates[name]
        for _ in range(warmup):
            fn()
    per: dict[str, list[float]] = {name: [] for name in names}
    clock = time.perf_counter
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn = candidates[name]
            t0 = clock()
            for _ in range(calls):
                fn()
            per[name].append((clock() - t0) / calls)
    return {name: statistics.median(v) for name, v in per.items()}


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by nearest rank of a non-empty list."""
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q / 100.0 * (len(ordered) - 1))))
    return ordered[idx]


def rss_bytes() -> int:
    """Current resident set size of this process in bytes (Linux ``/proc/self/statm``)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def fmt_us(seconds: float) -> str:
    """Seconds as a µs figure with sensible precision."""
    us = seconds * 1e6
    return f"{us:.2f}" if us < 10 else f"{us:.1f}" if us < 1000 else f"{us:.0f}"


def fmt_ratio(x: float) -> str:
    """A ratio as ``12.3x``."""
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x"
