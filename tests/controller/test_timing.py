"""CycleTimer: deadlines on a grid, overruns skipped (never caught up), sections, fast mode.

The overrun logic is tested on a fake clock (deterministic); the real-clock tests only assert
behaviour (no early ticks, no bursts), never tight timing numbers (shared CI machines).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from liquidnode.controller.errors import TimingError
from liquidnode.controller.timing import CycleTimer


class FakeClock:
    """Monotonic ns clock that advances ``step`` ns per reading, plus explicit jumps."""

    def __init__(self, step: int = 1_000) -> None:
        self.now = 10_000_000
        self.step = step

    def __call__(self) -> int:
        self.now += self.step
        return self.now

    def work(self, ns: int) -> None:
        self.now += ns


def fake_timer(period_s: float = 0.001, **kw) -> tuple[CycleTimer, FakeClock]:
    clock = FakeClock()
    # spin window > period: the timer never calls time.sleep, only the fake clock.
    return CycleTimer(period_s, spin_s=1.0, clock=clock, **kw), clock


def test_ticks_start_on_the_deadline_grid():
    timer, clock = fake_timer(0.001)
    timer.start()
    t0 = clock.now  # the grid's anchor: the clock reading start() took
    starts = []
    for _ in range(50):
        starts.append(timer.wait())
        clock.work(300_000)  # 0.3 ms of work, well within the 1 ms period
    offsets = np.array(starts) - t0 - np.arange(50) * 1_000_000
    assert (offsets >= 0).all(), "a tick started before its deadline"
    assert offsets.max() < 5_000  # the fake clock's granularity, not a drift
    assert timer.overruns == 0
    s = timer.stats()
    assert s.ticks == 50 and s.overruns == 0 and s.skipped_ticks == 0
    assert s.rate_hz == pytest.approx(1000.0, rel=0.01)


def test_overrun_is_counted_and_skipped_to_next_future_grid_point():
    timer, clock = fake_timer(0.001)
    timer.start()
    t0 = clock.now
    timer.wait()
    clock.work(2_500_000)  # the first tick takes 2.5 periods
    t1 = timer.wait()
    assert timer.overran
    assert timer.overruns == 1
    # Late by ~1.5 ms past deadline 1 ms: deadlines at 1 ms and 2 ms are skipped, tick at 3 ms.
    assert timer.last_skipped == 2
    assert timer.last_late_ns == pytest.approx(1_500_000, abs=10_000)
    assert (t1 - t0) // 1_000_000 == 3 and (t1 - t0) % 1_000_000 < 10_000
    # No burst afterwards: the following ticks keep a full period apart.
    previous = t1
    for _ in range(5):
        start = timer.wait()
        assert not timer.overran
        assert start - previous >= 1_000_000 - 10_000
        previous = start
    s = timer.stats()
    assert s.overruns == 1 and s.skipped_ticks == 2
    assert s.rate_hz < 1000.0  # the skipped deadlines show in the achieved rate


def test_start_reanchors_grid_without_counting_the_pause_as_overrun():
    timer, clock = fake_timer(0.001)
    timer.start()
    timer.wait()
    clock.work(50_000_000)  # an episode reset of 50 ms
    timer.start()
    timer.wait()
    assert timer.overruns == 0
    assert timer.stats().rate_hz == 0.0  # no interval inside one segment yet


def test_lap_and_section_record_medians():
    timer, clock = fake_timer(0.01)
    timer.start()
    for _ in range(9):
        timer.wait()
        clock.work(100_000)
        timer.lap(0)
        with timer.section("policy"):
            clock.work(2_000_000)
        clock.work(300_000)
        timer.lap(timer.section_index("act"))
    s = timer.stats()
    assert s.sections_us["observe"] == pytest.approx(100, abs=10)
    assert s.sections_us["policy"] == pytest.approx(2000, abs=10)
    assert s.sections_us["act"] == pytest.approx(300, abs=10)


def test_section_that_never_ran_is_nan_and_unknown_name_fails():
    timer, _ = fake_timer()
    timer.start()
    timer.wait()
    assert np.isnan(timer.stats().sections_us["act"])
    with pytest.raises(KeyError, match="unknown section 'policyy'"):
        timer.section("policyy")


def test_ring_keeps_counts_exact_beyond_capacity():
    timer, clock = fake_timer(0.001, capacity=8)
    timer.start()
    for i in range(20):
        timer.wait()
        clock.work(1_500_000 if i == 3 else 10_000)
    s = timer.stats()
    assert s.ticks == 20 and s.overruns == 1
    assert timer.stats(since=15).ticks == 5


def test_fast_mode_never_waits():
    period = 60.0
    timer = CycleTimer(period, realtime=False)
    timer.start()
    t = time.monotonic()
    for _ in range(1000):
        timer.wait()
    assert time.monotonic() - t < period  # waiting for even one tick would take a period
    s = timer.stats()
    assert s.lateness_max_us == 0 and s.overruns == 0 and s.ticks == 1000


def test_real_clock_skips_after_a_slow_tick_without_a_burst():
    period = 0.01
    timer = CycleTimer(period)
    timer.start()
    starts = []
    for i in range(12):
        starts.append(timer.wait())
        if i == 4:
            time.sleep(0.025)  # overrun: 2.5 periods of work
    assert timer.overruns >= 1 and timer.stats().skipped_ticks >= 2
    # Grid slot of each tick (robust to a few ms of scheduling jitter on a loaded machine).
    slots = np.round((np.array(starts) - starts[0]) / timer.period_ns).astype(int)
    steps = np.diff(slots)
    assert (steps >= 1).all(), f"two ticks in one period (a catch-up burst): slots {slots}"
    assert steps[4] >= 3, f"the tick after the overrun did not skip the missed deadlines: {slots}"


@pytest.mark.parametrize("period", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_period_is_a_timing_error(period):
    with pytest.raises(TimingError, match="period"):
        CycleTimer(period)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl timer slack is Linux-only")
def test_realtime_start_lowers_the_threads_timer_slack():
    import ctypes
    import threading

    libc = ctypes.CDLL(None)
    seen = {}

    def body() -> None:
        libc.prctl(29, 50_000, 0, 0, 0)  # PR_SET_TIMERSLACK: the kernel default, 50 µs
        seen["before"] = libc.prctl(30, 0, 0, 0, 0)  # PR_GET_TIMERSLACK
        CycleTimer(0.001, realtime=False).start()
        seen["fast"] = libc.prctl(30, 0, 0, 0, 0)
        CycleTimer(0.001).start()
        seen["realtime"] = libc.prctl(30, 0, 0, 0, 0)

    thread = threading.Thread(target=body)  # a fresh thread: the test runner's stays as it was
    thread.start()
    thread.join()
    assert seen["before"] == 50_000 and seen["fast"] == 50_000 and seen["realtime"] == 1


def test_realtime_priority_sets_and_restores_sched_fifo():
    import os

    from liquidnode.controller.errors import TimingError
    from liquidnode.controller.timing import realtime_priority

    with realtime_priority(None) as granted:
        assert granted is False
    with pytest.raises(TimingError, match="100"), realtime_priority(100):
        pass
    before = os.sched_getscheduler(0)
    with realtime_priority(10) as granted:
        if granted:
            assert os.sched_getscheduler(0) == os.SCHED_FIFO
            assert os.sched_getparam(0).sched_priority == 10
        else:  # not root / no CAP_SYS_NICE: the policy is left alone
            assert os.sched_getscheduler(0) == before
    assert os.sched_getscheduler(0) == before
