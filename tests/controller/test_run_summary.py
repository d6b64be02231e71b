"""What a run reports: the per-episode callback and line, and the plant line for people."""

from __future__ import annotations

import numpy as np

from liquidnode.controller.loop import ControlLoop, LoopConfig
from liquidnode.controller.policy import random_policy
from liquidnode.controller.run_summary import EpisodeResult, format_plant_summary
from liquidnode.sim import PENDULUM_XML, make_plant


def test_on_episode_end_gets_each_result_before_the_next_reset():
    plant = make_plant(PENDULUM_XML)
    resets: list[int] = []
    reset = plant.reset

    def counting_reset(seed=None):
        resets.append(seed)
        return reset(seed)

    plant.reset = counting_reset
    seen: list[tuple[EpisodeResult, int]] = []
    policy = random_policy(3, 1, seed=0)
    loop = ControlLoop(
        plant,
        policy,
        LoopConfig(realtime=False, max_ticks=7),
        on_episode_end=lambda result: seen.append((result, len(resets))),
    )
    summary = loop.run(episodes=3, seed=5)
    assert [r for r, _ in seen] == summary.episodes
    assert [n for _, n in seen] == [1, 2, 3]  # called before the following reset
    assert [r.seed for r, _ in seen] == [5, 6, 7] and all(r.ticks == 7 for r, _ in seen)


def test_an_episode_cut_short_by_ctrl_c_is_reported_too():
    plant = make_plant(PENDULUM_XML)
    act = plant.act
    calls = 0

    def act_then_interrupt(action: np.ndarray) -> None:
        nonlocal calls
        calls += 1
        if calls == 10:  # third tick of the second episode
            raise KeyboardInterrupt
        act(action)

    plant.act = act_then_interrupt
    seen: list[EpisodeResult] = []
    loop = ControlLoop(
        plant,
        random_policy(3, 1, seed=0),
        LoopConfig(realtime=False, max_ticks=7),
        on_episode_end=seen.append,
    )
    summary = loop.run(episodes=3, seed=0)
    assert summary.interrupted and seen == summary.episodes
    assert [r.ticks for r in seen] == [7, 2] and seen[1].end == "stopped"


def test_episode_line():
    result = EpisodeResult(0, 7, 1000.0, 1000, False, True, 35.24, 0, 0)
    assert result.format_line() == (
        "episode 0 (seed 7): return 1000.00, 1000 ticks, late p99 35.2 µs, overruns 0, truncated"
    )
    faulty = EpisodeResult(2, None, -3.5, 12, True, False, 0.0, 1, 2)
    assert faulty.format_line() == (
        "episode 2: return -3.50, 12 ticks, late p99 0.0 µs, overruns 1, faults 2, terminated"
    )


def test_plant_summary_for_people():
    sim = {"physics_step_s": 0.02, "frame_skip": 2, "sim_time_s": 40.000000000000654}
    assert format_plant_summary(sim) == ["plant: physics step 0.02 s, frame skip 2, sim time 40 s"]
    serial = {
        "link": {
            "port": "/dev/pts/3",
            "rtt_us": {"p50": 92.123, "p99": 190.0, "max": 16630.2, "n": 2000},
            "crc_errors": 0,
        },
        "device": {"id": 7, "last_cmd_seq": None},
    }
    assert format_plant_summary(serial) == [
        "plant link: port /dev/pts/3, rtt (p50 92.12 µs, p99 190 µs, max 16,630 µs, n 2000), "
        "crc errors 0",
        "plant device: id 7, last cmd seq -",
    ]
    assert format_plant_summary({}) == []


def test_unmeasured_returns_are_n_a_and_null_never_zero():
    import dataclasses
    import json

    plant = make_plant(PENDULUM_XML)
    summary = ControlLoop(
        plant, random_policy(3, 1, seed=0), LoopConfig(realtime=False, max_ticks=5)
    ).run(episodes=2)
    measured = summary.to_json()
    assert all(isinstance(e["return"], float) for e in measured["episodes"])
    assert measured["returns_unmeasured"] is None

    serial = dataclasses.replace(summary, returns_unmeasured="reward not sent over serial")
    out = json.loads(json.dumps(serial.to_json()))
    assert [e["return"] for e in out["episodes"]] == [None, None]
    assert out["returns_unmeasured"] == "reward not sent over serial"
    text = serial.format_text().splitlines()
    rows = [line.split() for line in text[1:3]]
    assert [row[1] for row in rows] == ["n/a", "n/a"]
    assert "return n/a (reward not sent over serial)" in text
