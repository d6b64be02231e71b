"""When the log writer thread works: in the control loop's idle time, between its ticks.

The writer thread shares the GIL with the loop. If it is busy (serialising, finishing a
chunk) when the loop wakes for its next deadline, the loop waits for the GIL and the tick
starts late; at 1 kHz, flushes landing at random moments make enough ticks late to set the
p99 lateness. The loop's rhythm is simple, though: it starts a
tick at each deadline, works (observe, policy, act), hands the tick to the recorder and
sleeps until ``spin_s`` before the next deadline. :class:`WriterPacer` times the writer into
that sleep:

- it learns the period from the run metadata (``rate_hz``; ``mode == "fast"`` or an unknown
  rate turns pacing off: there is no deadline to protect);
- from the last tick handed over (its start on the deadline grid and when it was enqueued) it
  wakes the writer just after the loop enqueues a tick, at least ``poll_s`` apart;
- work (one item, one chunk flush) is started only if its estimated cost (the writer thread's
  CPU time, a decaying maximum of what it measured) ends ``guard_s`` before the next deadline;
- when the loop has not ticked for 1.5 periods (episode reset, end of run) nothing is
  protected, and work pending longer than ``max_defer_s`` is done regardless (so a killed run
  loses only its last few chunks' worth of ticks).
"""

from __future__ import annotations

import time
from typing import Any

#: Kinds of writer work whose cost is estimated separately.
ITEM, FLUSH = 0, 1


class WriterPacer:
    """Schedules the writer thread's work into the loop's idle time (see module docstring).

    Args:
        poll_s: least time between writer wake-ups, s.
        guard_s: keep this much time free before each loop deadline, s (the loop's spin window,
            200 µs by default, plus a margin for the GIL hand-over); at most a third of the
            period at high rates.
        max_defer_s: longest time work may wait for a free window, s. With the recorder's
            20 ms flush interval a tick is on disk at most ~2 x 25 + 20 + poll = ~72 ms after
            it was handed over, even when no window is ever free.
    """

    def __init__(
        self, poll_s: float = 0.002, guard_s: float = 350e-6, max_defer_s: float = 0.025
    ) -> None:
        self.poll_ns = round(poll_s * 1e9)
        self.guard_ns = round(guard_s * 1e9)
        self.max_defer_ns = round(max_defer_s * 1e9)
        self.period_ns: int | None = None
        self._cost_ns = [100_000, 300_000]  # first guesses: one tick's messages, one flush
        #: last tick handed over: (start on the deadline grid, enqueue time), monotonic ns.
        self.last_tick: tuple[int, int] | None = None
        #: pieces of work deferred to a later window / forced after ``max_defer_s``.
        self.deferred = 0
        self.forced = 0

    def configure(self, metadata: dict[str, Any]) -> None:
        """Learn the loop's period from run metadata (``rate_hz``, ``mode``)."""
        rate = metadata.get("rate_hz")
        if metadata.get("mode") == "fast" or not isinstance(rate, (int, float)) or rate <= 0:
            self.period_ns = None
        else:
            self.period_ns = max(1, round(1e9 / float(rate)))

    def _ticking(self, now: int) -> tuple[int, int] | None:
        """(period, last tick start) when the loop is ticking regularly, else None."""
        period, last = self.period_ns, self.last_tick
        if period is None or last is None or now - last[0] > period + period // 2:
            return None
        return period, last[0]

    def next_wake_s(self) -> float:
        """Seconds to sleep: until just after the loop's next hand-over, >= ``poll_s`` apart."""
        now = time.monotonic_ns()
        ticking = self._ticking(now)
        if ticking is None or self.last_tick is None:
            return self.poll_ns * 1e-9
        period, _ = ticking
        enqueued = self.last_tick[1]
        steps = max(1, -(-self.poll_ns // period))
        wake = enqueued + steps * period + 20_000
        while wake <= now:
            wake += period
        return (wake - now) * 1e-9

    def may_run(self, kind: int, pending_since_ns: int) -> bool:
        """True if work of ``kind`` may start now.

        Args:
            kind: :data:`ITEM` or :data:`FLUSH`.
            pending_since_ns: monotonic time since which the work has been waiting.
        """
        now = time.monotonic_ns()
        ticking = self._ticking(now)
        if ticking is None:
            return True
        period, start = ticking
        deadline = start + ((now - start) // period + 1) * period
        if now + self._cost_ns[kind] <= deadline - min(self.guard_ns, period // 3):
            return True
        if now - pending_since_ns >= self.max_defer_ns:
            self.forced += 1
            return True
        self.deferred += 1
        return False

    def measured(self, kind: int, cost_ns: int) -> None:
        """Record the writer-thread CPU time a piece of work took (decaying maximum, 1 %/call)."""
        estimate = self._cost_ns[kind]
        self._cost_ns[kind] = max(cost_ns, estimate - estimate // 100)
