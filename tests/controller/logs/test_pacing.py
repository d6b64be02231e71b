"""The writer's pacing: work only in the loop's idle time, never starve, and a real-time
1 kHz loop gets every tick logged."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from liquidnode.controller.logs import McapRecorder, load_episode
from liquidnode.controller.logs.pacing import FLUSH, ITEM, WriterPacer

ROOT = Path(__file__).resolve().parents[3]


def test_unpaced_without_a_rate_or_in_fast_mode() -> None:
    pacer = WriterPacer()
    assert pacer.may_run(FLUSH, time.monotonic_ns())
    pacer.configure({"rate_hz": 1000.0, "mode": "fast"})
    pacer.last_tick = (time.monotonic_ns(), time.monotonic_ns())
    assert pacer.period_ns is None and pacer.may_run(FLUSH, time.monotonic_ns())


def test_work_waits_for_room_before_the_deadline() -> None:
    pacer = WriterPacer(guard_s=350e-6, max_defer_s=10.0)
    pacer.configure({"rate_hz": 100.0, "mode": "realtime"})  # 10 ms period
    now = time.monotonic_ns()
    pacer.last_tick = (now - 1_000_000, now)  # started 1 ms ago: 9 ms of room
    assert pacer.may_run(ITEM, now)
    pacer.last_tick = (now - 9_800_000, now)  # next deadline in 0.2 ms: inside the guard
    assert not pacer.may_run(ITEM, now) and pacer.deferred == 1
    # ...but never longer than max_defer_s
    pacer.max_defer_ns = 0
    assert pacer.may_run(ITEM, now) and pacer.forced == 1


def test_costs_are_learned_and_decay() -> None:
    pacer = WriterPacer()
    pacer.measured(FLUSH, 5_000_000)
    assert pacer._cost_ns[FLUSH] == 5_000_000
    for _ in range(500):
        pacer.measured(FLUSH, 1000)
    assert pacer._cost_ns[FLUSH] < 50_000


def test_a_stalled_loop_is_not_protected() -> None:
    pacer = WriterPacer(max_defer_s=10.0)
    pacer.configure({"rate_hz": 1000.0})
    old = time.monotonic_ns() - 5_000_000  # last tick 5 ms (5 periods) ago
    pacer.last_tick = (old, old)
    assert pacer.may_run(FLUSH, time.monotonic_ns())
    assert abs(pacer.next_wake_s() - 0.002) < 1e-9


def test_next_wake_follows_the_hand_over() -> None:
    pacer = WriterPacer(poll_s=0.002)
    pacer.configure({"rate_hz": 1000.0})
    now = time.monotonic_ns()
    pacer.last_tick = (now - 100_000, now)
    wake = pacer.next_wake_s()
    assert 0.0019 < wake <= 0.00203  # two periods after the last hand-over, plus 20 µs


def test_realtime_1khz_loop_logs_every_tick(tmp_path: Path) -> None:
    from liquidnode.controller.loop import ControlLoop, LoopConfig
    from liquidnode.controller.policy import random_policy
    from liquidnode.sim.mujoco_plant import MjcfPlant

    xml = (ROOT / "sim" / "models" / "pendulum.xml").read_text()
    xml = re.sub(r'timestep="[0-9.]+"', 'timestep="0.001"', xml)
    xml = re.sub(r'(name="liquidnode_frame_skip" data=")[0-9]+', r"\g<1>1", xml)
    model = tmp_path / "pendulum_1khz.xml"
    model.write_text(xml)
    log = tmp_path / "rt.mcap"
    loop = ControlLoop(
        MjcfPlant(model, rate_hz=1000.0),
        random_policy(3, 1, seed=1),
        LoopConfig(max_ticks=400),
        recorder=McapRecorder(log),
    )
    summary = loop.run(episodes=1, seed=0)
    ep = load_episode(log)
    assert ep.ticks == summary.episodes[0].ticks == 400
    np.testing.assert_array_equal(ep.tick, np.arange(400))
    assert ep.metadata["run"]["mode"] == "realtime" and ep.metadata["run"]["rate_hz"] == 1000.0
    # The logged dt is what the loop measured between tick starts, so the ticks' times add up;
    # absolute deadlines never start a tick early, so 399 periods take at least 399 ms however
    # busy the machine is (late ticks only make it longer).
    assert np.all(ep.dt[1:] > 0)
    np.testing.assert_allclose(np.diff(ep.t), ep.dt[1:], atol=1e-6)
    assert ep.dt[1:].sum() >= 399 * 1e-3 - 1e-4
