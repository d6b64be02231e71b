"""Cycle timer: absolute deadlines, hybrid sleep+spin wait, overrun skipping, section timing.

One :class:`CycleTimer` paces a fixed-rate loop. Deadlines sit on an absolute grid
``t0 + k * period`` of ``time.monotonic_ns`` (never "now + period", which drifts). Waiting is
hybrid: ``time.sleep`` until ``spin_s`` before the deadline (the OS wakes a sleeper tens of µs
late), then a busy spin on the clock until the deadline, so a tick starts when the deadline
passes, not whenever the OS wakes a sleeper (the README's loop-timing benchmark compares both).

On Linux the timer also lowers the thread's timer slack to 1 ns (``prctl(PR_SET_TIMERSLACK)``;
the default 50 µs lets the kernel defer a sleeper's wake-up), so the sleep phase ends close to
where it was asked to and the spin stays short.

A tick whose work ran past the next deadline is an *overrun*: it is counted and the missed
deadlines are skipped; the loop waits for the next grid point still in the future. It never
"catches up" with a burst of short ticks.

On a busy machine the scheduler can preempt the loop in its spin, which is where tail lateness
comes from; :func:`realtime_priority` runs the loop under ``SCHED_FIFO`` (root or
``CAP_SYS_NICE``), as a deployed control node would (``liquidnode sim/deploy --rt-priority``).

Hot-path use (no allocation per tick; the per-tick numbers go into preallocated rings)::

    timer = CycleTimer(0.001)                 # 1 kHz
    timer.start()
    while running:
        t_ns = timer.wait()                   # tick start, monotonic ns
        obs = plant.observe();   timer.lap(0) # ns spent since the previous mark
        act = policy.step(obs);  timer.lap(1)
        plant.act(act);          timer.lap(2)
    stats = timer.stats()

``with timer.section("observe"): ...`` is the same as a lap, for code that prefers names.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType

import numpy as np

from liquidnode.controller.errors import TimingError

#: The sections the control loop times, in tick order.
SECTIONS: tuple[str, ...] = ("observe", "policy", "act")


@dataclass(frozen=True)
class TimingStats:
    """Timing of the ticks since :meth:`CycleTimer.clear` (or the given mark).

    Attributes:
        ticks: ticks started.
        rate_hz: achieved tick rate, Hz (ticks per second of tick-to-tick intervals; pauses
            between :meth:`CycleTimer.start` calls, e.g. episode resets, are excluded).
        lateness_p50_us: median lateness of tick starts vs. their deadlines, µs (0 in fast mode).
        lateness_p99_us: 99th percentile lateness, µs.
        lateness_max_us: maximum lateness, µs.
        overruns: ticks whose work ran past the next deadline.
        skipped_ticks: deadlines skipped because of overruns (>= overruns).
        sections_us: median time per section (name -> µs); NaN where a section never ran.
    """

    ticks: int
    rate_hz: float
    lateness_p50_us: float
    lateness_p99_us: float
    lateness_max_us: float
    overruns: int
    skipped_ticks: int
    sections_us: dict[str, float]


_PR_SET_TIMERSLACK = 29


def set_timer_slack(ns: int = 1) -> bool:
    """Set the calling thread's timer slack (Linux ``prctl``); returns False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_TIMERSLACK, ctypes.c_ulong(ns), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


@contextlib.contextmanager
def realtime_priority(priority: int | None) -> Iterator[bool]:
    """Run the calling thread under ``SCHED_FIFO`` at ``priority`` (1..99) inside the block.

    Yields True when the priority was set, False when ``priority`` is None or the system does not
    permit it (no ``sched_setscheduler``, not root / no ``CAP_SYS_NICE``). The previous policy is
    restored on exit. Threads started inside the block inherit the priority.

    Raises:
        TimingError: ``priority`` outside 1..99.
    """
    if priority is None:
        yield False
        return
    if not 1 <= priority <= 99:
        raise TimingError(f"real-time priority {priority} is outside 1..99 (SCHED_FIFO)")
    if not hasattr(os, "sched_setscheduler"):
        yield False
        return
    try:
        old_policy, old_param = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError:
        yield False
        return
    try:
        yield True
    finally:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, old_policy, old_param)


class _Section:
    """Context manager for one named section; preallocated, so entering it allocates nothing."""

    __slots__ = ("_index", "_timer")

    def __init__(self, timer: CycleTimer, index: int) -> None:
        self._timer = timer
        self._index = index

    def __enter__(self) -> _Section:
        self._timer.mark()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._timer.lap(self._index)


class CycleTimer:
    """Paces a loop at a fixed period and measures how well it kept time.

    Args:
        period_s: tick period in seconds (> 0).
        realtime: True to wait for each deadline; False (fast mode) never waits and records
            zero lateness and no overruns.
        spin_s: how long before a deadline the sleep ends and the busy spin starts, seconds
            (default 200 µs; 0 gives a plain sleep, useful for comparison).
        sections: names of the timed sections, in tick order.
        capacity: ticks kept for percentiles and medians (a ring; older ticks drop out).
            Counts (ticks, overruns, max lateness) are exact over the whole run.
        clock: monotonic clock in integer ns (``time.monotonic_ns``).

    Raises:
        TimingError: period_s or spin_s is not a finite positive (non-negative) number.
    """

    def __init__(
        self,
        period_s: float,
        *,
        realtime: bool = True,
        spin_s: float = 200e-6,
        sections: Sequence[str] = SECTIONS,
        capacity: int = 1 << 16,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        if not (np.isfinite(period_s) and period_s > 0):
            raise TimingError(f"tick period must be a positive number of seconds, got {period_s}")
        if not (np.isfinite(spin_s) and spin_s >= 0):
            raise TimingError(f"spin window must be >= 0 s, got {spin_s}")
        self.period_s = float(period_s)
        self.period_ns = max(1, round(period_s * 1e9))
        self.realtime = realtime
        self.spin_ns = round(spin_s * 1e9)
        self.section_names = tuple(sections)
        self._index = {name: i for i, name in enumerate(self.section_names)}
        self._section_cms = {name: _Section(self, i) for i, name in enumerate(self.section_names)}
        self._clock = clock
        self._capacity = int(capacity)
        self._lateness = array("d", bytes(8 * self._capacity))
        self._sections = [array("d", bytes(8 * self._capacity)) for _ in self.section_names]
        #: True when the last :meth:`wait` found the previous tick overran.
        self.overran = False
        #: How late the overrunning tick found itself, ns (valid when ``overran``).
        self.last_late_ns = 0
        #: Deadlines the last overrun skipped (valid when ``overran``).
        self.last_skipped = 0
        #: Lateness of the last tick start, ns (0 in fast mode).
        self.last_lateness_ns = 0
        self._slack_set = False
        self.clear()

    # -- run control ---------------------------------------------------------------------
    def clear(self) -> None:
        """Forget all statistics (ticks, lateness, overruns, sections)."""
        self._ticks = 0
        self._overruns = 0
        self._skipped = 0
        self._max_late_ns = 0
        self._interval_ns = 0
        self._intervals = 0
        self._deadline = 0
        self._prev_start = -1
        self._mark = 0

    def start(self) -> None:
        """Anchor the deadline grid at now: the next :meth:`wait` returns at once.

        Call at the start of every segment (e.g. after an episode reset); the pause before it
        does not count as an overrun or as a tick interval. In real-time mode the first call
        lowers the calling thread's timer slack (see the module docstring).
        """
        if self.realtime and not self._slack_set:
            self._slack_set = True
            set_timer_slack(1)
        self._deadline = self._clock()
        self._prev_start = -1

    # -- hot path ------------------------------------------------------------------------
    def wait(self) -> int:
        """Wait for the next deadline and start a tick.

        Returns:
            The tick's start time, monotonic ns (also the mark for the first :meth:`lap`).
        """
        clock = self._clock
        now = clock()
        deadline = self._deadline
        self.overran = False
        if self.realtime:
            if now > deadline and self._prev_start >= 0:
                # The previous tick ran past this deadline: skip to the next future grid point.
                late = now - deadline
                skipped = late // self.period_ns + 1
                deadline += skipped * self.period_ns
                self.overran = True
                self.last_late_ns = late
                self.last_skipped = skipped
                self._overruns += 1
                self._skipped += skipped
            remaining = deadline - now
            if remaining > self.spin_ns:
                time.sleep((remaining - self.spin_ns) * 1e-9)
            now = clock()
            while now < deadline:
                now = clock()
            late = now - deadline
            if late > self._max_late_ns:
                self._max_late_ns = late
        else:
            late = 0
        self.last_lateness_ns = late
        slot = self._ticks % self._capacity
        self._lateness[slot] = late
        for ring in self._sections:
            ring[slot] = -1.0  # "did not run"; lap() overwrites
        if self._prev_start >= 0:
            self._interval_ns += now - self._prev_start
            self._intervals += 1
        self._prev_start = now
        self._deadline = deadline + self.period_ns
        self._ticks += 1
        self._mark = now
        return now

    def mark(self) -> int:
        """Restart the section stopwatch at now (monotonic ns) without recording anything."""
        self._mark = now = self._clock()
        return now

    def lap(self, section: int) -> int:
        """Record the time since the last mark as section number ``section`` of this tick.

        Returns:
            The section's duration, ns. The mark moves to now.
        """
        now = self._clock()
        duration = now - self._mark
        self._sections[section][(self._ticks - 1) % self._capacity] = duration
        self._mark = now
        return duration

    def section(self, name: str) -> _Section:
        """Context manager timing section ``name`` (one of :attr:`section_names`)."""
        try:
            return self._section_cms[name]
        except KeyError:
            raise KeyError(f"unknown section {name!r}; sections are {self.section_names}") from None

    def section_index(self, name: str) -> int:
        """Index of section ``name`` for :meth:`lap`."""
        return self._index[name]

    # -- reporting -----------------------------------------------------------------------
    @property
    def ticks(self) -> int:
        """Ticks started since :meth:`clear`."""
        return self._ticks

    @property
    def overruns(self) -> int:
        """Overruns since :meth:`clear`."""
        return self._overruns

    def stats(self, since: int = 0) -> TimingStats:
        """Statistics of the ticks numbered ``since`` onwards (a value of :attr:`ticks`).

        Percentiles and medians cover at most the last ``capacity`` ticks. ``overruns`` and
        ``skipped_ticks`` always cover the whole run; ``rate_hz`` and an exact
        ``lateness_max_us`` need ``since == 0`` (otherwise NaN and the max of the kept ticks).
        """
        n = self._ticks - since
        kept = min(n, self._capacity)
        idx: np.ndarray | list[int]
        idx = (np.arange(self._ticks - kept, self._ticks) % self._capacity) if kept > 0 else []
        lateness = np.frombuffer(self._lateness, dtype=np.float64)[idx] / 1e3
        sections: dict[str, float] = {}
        for name, ring in zip(self.section_names, self._sections, strict=True):
            values = np.frombuffer(ring, dtype=np.float64)[idx]
            values = values[values >= 0]
            sections[name] = float(np.median(values) / 1e3) if values.size else float("nan")
        if kept:
            p50, p99 = np.percentile(lateness, [50, 99])
            lmax = float(lateness.max())
        else:
            p50 = p99 = lmax = 0.0
        if since == 0:
            lmax = self._max_late_ns / 1e3 if self.realtime else 0.0
            rate = self._intervals / (self._interval_ns * 1e-9) if self._interval_ns else 0.0
        else:
            rate = float("nan")
        return TimingStats(
            ticks=n,
            rate_hz=float(rate),
            lateness_p50_us=float(p50),
            lateness_p99_us=float(p99),
            lateness_max_us=float(lmax),
            overruns=self._overruns,
            skipped_ticks=self._skipped,
            sections_us=sections,
        )
