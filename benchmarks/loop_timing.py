"""Comparison 3: loop timing, the node's CycleTimer vs. a plain ``time.sleep`` loop.

Both loops keep absolute deadlines on the same monotonic grid (``t0 + k * period``) and do the
same work each tick (one CfC-64 policy step, ~5-15 µs). The plain loop sleeps
``deadline - now`` with ``time.sleep``; the node's :class:`controller.timing.CycleTimer` sleeps
until ``spin_s`` before the deadline, then spins. Lateness = tick start - deadline. An overrun
(the work ran past the next deadline) is counted and the missed deadlines skipped, in both.
The two loops alternate in segments (timer, sleep, timer, ...) so both see the same load.
Then, where permitted, both run again under ``SCHED_FIFO`` real-time priority.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

from liquidnode.benchmarks.harness import Check, Section
from liquidnode.controller.timing import realtime_priority

KEY = "loop_timing"
TITLE = "Loop timing: CycleTimer vs. a plain time.sleep loop (lateness µs)"
FIFO_PRIORITY = 50


def _timer_segment(
    period_s: float, ticks: int, work: Callable[[], object]
) -> tuple[list[int], int]:
    from liquidnode.controller.timing import CycleTimer

    timer = CycleTimer(period_s)
    late = []
    timer.start()
    for _ in range(ticks):
        timer.wait()
        late.append(timer.last_lateness_ns)
        work()
    return late, timer.overruns


def _sleep_segment(
    period_s: float, ticks: int, work: Callable[[], object]
) -> tuple[list[int], int]:
    clock = time.monotonic_ns
    period = round(period_s * 1e9)
    late = []
    overruns = 0
    deadline = clock()
    first = True
    for _ in range(ticks):
        now = clock()
        if now > deadline and not first:  # the previous tick ran past this deadline: skip
            overruns += 1
            deadline += ((now - deadline) // period + 1) * period
        first = False
        remaining = deadline - now
        if remaining > 0:
            time.sleep(remaining * 1e-9)
        now = clock()
        late.append(now - deadline)
        deadline += period
        work()
    return late, overruns


def _stats(late_ns: list[int]) -> tuple[float, float, float]:
    a = np.asarray(late_ns, dtype=np.float64) / 1e3
    return float(np.percentile(a, 50)), float(np.percentile(a, 99)), float(a.max())


def _compare(
    sec: Section, sched: str, seconds: float, segments: int, work: Callable[[], object]
) -> None:
    """Both loops at 1 kHz and 100 Hz under the current scheduling; rows and checks."""
    for rate in (1000.0, 100.0):
        period = 1.0 / rate
        per_segment = max(10, int(seconds * rate / segments))
        # per loop: lateness of every tick (ns) and the overrun count
        results: dict[str, tuple[list[int], int]] = {"CycleTimer": ([], 0), "time.sleep": ([], 0)}
        for _ in range(segments):
            for name, fn in (("CycleTimer", _timer_segment), ("time.sleep", _sleep_segment)):
                late, over = fn(period, per_segment, work)
                acc, n = results[name]
                results[name] = (acc + late, n + over)
        stats = {name: _stats(v[0]) for name, v in results.items()}
        for name, (late, over) in results.items():
            p50, p99, mx = stats[name]
            ratio = p99 / stats["time.sleep"][1] if stats["time.sleep"][1] > 0 else float("nan")
            sec.rows.append(
                [
                    sched,
                    f"{rate:g} Hz",
                    name,
                    len(late),
                    f"{p50:.1f}",
                    f"{p99:.1f}",
                    f"{mx:.0f}",
                    over,
                    "-" if name == "time.sleep" else f"{ratio:.2g}x",
                ]
            )
        sec.data[f"{sched} {rate:g}Hz"] = {
            name: {"p50_us": s[0], "p99_us": s[1], "max_us": s[2], "overruns": results[name][1]}
            for name, s in stats.items()
        }
        if rate == 1000.0:
            t99, s99 = stats["CycleTimer"][1], stats["time.sleep"][1]
            sec.checks.append(
                Check(
                    f"1 kHz ({sched}): CycleTimer lateness p99 <= 50 µs", f"{t99:.1f} µs", t99 <= 50
                )
            )
            sec.checks.append(
                Check(
                    f"1 kHz ({sched}): CycleTimer p99 <= 1/3 of the plain sleep loop's",
                    f"{t99:.1f} vs {s99:.1f} µs ({t99 / s99:.2g}x)",
                    t99 <= s99 / 3.0,
                )
            )


def run(quick: bool = False, tiny: bool = False) -> Section:
    """Run the comparison; ``quick`` shortens it, ``tiny`` is for the smoke test."""
    try:
        from liquidnode.controller.policy import random_policy
        from liquidnode.controller.timing import CycleTimer  # noqa: F401
    except ImportError as exc:
        return Section(KEY, TITLE, unavailable=f"controller.timing missing: {exc}")
    seconds = 0.2 if tiny else 4.0 if quick else 15.0
    segments = 2 if tiny else 4 if quick else 10
    policy = random_policy(17, 6, units=64, seed=0, cell_options={"backbone_units": 128})
    obs = np.zeros(17)

    def work() -> None:
        policy.step(obs, 0.001)

    sec = Section(
        KEY,
        TITLE,
        columns=[
            "scheduling",
            "rate",
            "loop",
            "ticks",
            "p50",
            "p99",
            "max",
            "overruns",
            "p99 vs. sleep loop",
        ],
    )
    _compare(sec, "normal", seconds, segments, work)
    with realtime_priority(FIFO_PRIORITY) as fifo:
        if fifo:
            _compare(sec, f"SCHED_FIFO {FIFO_PRIORITY}", seconds, segments, work)
        else:
            sec.notes.append("SCHED_FIFO not permitted here: real-time priority rows skipped.")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    sec.data["load_avg_1min"] = load
    sec.notes.append(
        f"1-minute load average when the comparison ended: {load:.2f} on {os.cpu_count()} "
        "cores (the targets assume an idle machine; a busy one preempts the spinning wait)."
    )
    sec.notes.append(
        f"{seconds:g} s per rate, loop and scheduling, in {segments} alternating segments; each "
        "tick runs one CfC-64 policy step; lateness = tick start - deadline (monotonic clock). "
        f"'SCHED_FIFO {FIFO_PRIORITY}': both loops again with real-time priority (as a "
        "deployed control node would run; needs root or CAP_SYS_NICE), which keeps the other "
        "processes on this shared machine from preempting the loop."
    )
    return sec
