"""ControlLoop: tick order, dt, NaN guards, safe stop on every exit, overruns, validation.

A small numpy plant (a damped point mass) stands in for a simulation so that each behaviour
can be provoked on purpose; the last tests close the loop with the real Policy on MuJoCo.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from liquidnode.controller.errors import PlantError, SpaceMismatchError, TimingError
from liquidnode.controller.loop import ControlLoop, LoopConfig
from liquidnode.controller.plant import Observation, Plant, PlantSpec
from liquidnode.controller.policy import random_policy
from liquidnode.controller.records import Event, TickRecord


class PointMass(Plant):
    """1-D damped point mass: obs (position m, velocity m/s), action force N in [-1, 1]."""

    def __init__(
        self,
        period: float = 0.01,
        episode_ticks: int = 20,
        nan_obs_at: int | None = None,
        fail_at: int | None = None,
        interrupt_at: int | None = None,
        self_paced: bool = False,
    ) -> None:
        self.spec = PlantSpec(
            name="point-mass",
            obs_names=("x", "v"),
            obs_units=("m", "m/s"),
            act_names=("force",),
            act_units=("N",),
            action_low=np.array([-1.0]),
            action_high=np.array([1.0]),
            safe_action=np.array([0.0]),
            control_period_s=period,
        )
        self.self_paced = self_paced
        self.episode_ticks = episode_ticks
        self.nan_obs_at, self.fail_at, self.interrupt_at = nan_obs_at, fail_at, interrupt_at
        self.acts: list[np.ndarray] = []
        self.safe_stops = 0
        self.connected = False
        self.device_time = 0.0

    def connect(self) -> None:
        self.connected = True

    def reset(self, seed: int | None = None) -> Observation:
        self.x = np.array([0.1 * (seed or 0), 0.0])
        self.n = 0
        return Observation(self.x.copy(), device_time_s=self.device_time)

    def act(self, action: np.ndarray) -> None:
        self.acts.append(action.copy())
        dt = self.spec.control_period_s
        self.x = self.x + dt * np.array([self.x[1], float(action[0]) - 0.5 * self.x[1]])
        self.n += 1
        if self.n == self.fail_at:
            raise PlantError("simulated plant failure")
        if self.n == self.interrupt_at:
            raise KeyboardInterrupt

    def observe(self) -> Observation:
        if self.self_paced:
            time.sleep(0.001)
            self.device_time += 0.004  # the device claims its own 4 ms sample spacing
        values = self.x.copy()
        if self.n == self.nan_obs_at:
            values[1] = np.nan
        return Observation(
            values,
            reward=1.0,
            terminated=self.n >= self.episode_ticks,
            device_time_s=self.device_time,
        )

    def disconnect(self) -> None:
        self.connected = False

    def safe_stop(self) -> None:
        self.safe_stops += 1
        super().safe_stop()

    def summary(self) -> dict[str, Any]:
        return {"acts": len(self.acts)}


class ScriptedPolicy:
    """Returns a scripted action per call and remembers every (obs, dt)."""

    obs_dim, act_dim = 2, 1

    def __init__(
        self, actions: dict[int, float] | None = None, work_s: dict[int, float] | None = None
    ):
        self.actions = actions or {}
        self.work_s = work_s or {}
        self.calls: list[tuple[np.ndarray, float]] = []
        self._state = np.zeros(3, np.float32)

    def reset(self) -> None:
        self._state[:] = 0

    def step(self, obs: np.ndarray, dt: float) -> np.ndarray:
        n = len(self.calls)
        self.calls.append((obs.copy(), dt))
        self._state += 1
        if n in self.work_s:
            time.sleep(self.work_s[n])
        return np.array([self.actions.get(n, 0.5)])

    @property
    def state(self) -> np.ndarray:
        return self._state.copy()


class ListRecorder:
    """Recorder that keeps everything in lists (the loop's side of the Recorder protocol)."""

    def __init__(self) -> None:
        self.metadata: dict[str, Any] | None = None
        self.ticks: list[TickRecord] = []
        self.events: list[Event] = []
        self.closed = 0

    def start(self, metadata: dict[str, Any]) -> None:
        self.metadata = metadata

    def tick(self, record: TickRecord) -> None:
        self.ticks.append(record)

    def event(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        self.closed += 1


def kinds(recorder: ListRecorder, kind: str) -> list[Event]:
    return [e for e in recorder.events if e.kind == kind]


def test_episodes_returns_ticks_and_documented_json_keys():
    plant, rec = PointMass(episode_ticks=15), ListRecorder()
    summary = ControlLoop(plant, ScriptedPolicy(), LoopConfig(realtime=False), recorder=rec).run(
        episodes=3, seed=7
    )
    assert [(e.ticks, e.return_, e.terminated, e.seed) for e in summary.episodes] == [
        (15, 15.0, True, 7),
        (15, 15.0, True, 8),
        (15, 15.0, True, 9),
    ]
    out = summary.to_json()
    for key in ("episodes", "rate_hz", "lateness_us", "overruns", "sections_us", "plant", "faults"):
        assert key in out
    assert set(out["episodes"][0]) >= {"return", "ticks"}
    assert set(out["lateness_us"]) == {"p50", "p99", "max"}
    assert set(out["sections_us"]) == {"observe", "policy", "act"}
    assert out["plant"] == {"acts": 45 + 1}  # + the safe stop
    assert out["faults"] == 0
    assert out["mode"] == "fast"
    assert len(rec.ticks) == 45 and rec.closed == 1
    assert [e.kind for e in rec.events].count("episode_start") == 3
    assert plant.safe_stops == 1


def test_fast_mode_feeds_nominal_dt_and_sent_action_is_clamped():
    policy = ScriptedPolicy(actions={0: 5.0})
    plant, rec = PointMass(), ListRecorder()
    ControlLoop(plant, policy, LoopConfig(realtime=False), recorder=rec).run()
    assert {dt for _, dt in policy.calls} == {0.01}
    assert plant.acts[0].tolist() == [1.0]  # clamped to the limit
    assert rec.ticks[0].action.tolist() == [5.0] and rec.ticks[0].sent.tolist() == [1.0]
    assert kinds(rec, "clamp")[0].tick == 0


def test_realtime_dt_is_the_measured_elapsed_time():
    policy, rec = ScriptedPolicy(), ListRecorder()
    ControlLoop(PointMass(period=0.005, episode_ticks=10), policy, LoopConfig(), recorder=rec).run()
    assert policy.calls[0][1] == 0.005  # nothing measured yet on the first tick
    dts = np.array([dt for _, dt in policy.calls[1:]])
    starts = np.array([r.mono_time_ns for r in rec.ticks])
    assert dts == pytest.approx(np.diff(starts) * 1e-9, abs=1e-12)
    assert [r.dt_s for r in rec.ticks[1:]] == dts.tolist()
    assert dts.sum() == pytest.approx(9 * 0.005, rel=0.5)  # paced, not as fast as possible


def test_self_paced_plant_uses_the_devices_sample_spacing_and_never_sleeps():
    policy = ScriptedPolicy()
    plant = PointMass(period=0.004, episode_ticks=10, self_paced=True)
    loop = ControlLoop(plant, policy, LoopConfig())
    assert loop.mode == "self_paced" and not loop.timer.realtime
    loop.run()
    assert [dt for _, dt in policy.calls[1:]] == pytest.approx([0.004] * 9)


def test_non_finite_observation_skips_the_policy_and_holds_the_action():
    policy = ScriptedPolicy(actions={0: 0.3, 1: 0.7})
    plant, rec = PointMass(nan_obs_at=2), ListRecorder()
    summary = ControlLoop(plant, policy, LoopConfig(realtime=False), recorder=rec).run()
    # Tick 2 saw the NaN: the policy ran on ticks 0, 1, 3, ... only.
    assert summary.episodes[0].ticks == 20 and len(policy.calls) == 20 - 1
    assert all(np.isfinite(obs).all() for obs, _ in policy.calls)
    assert plant.acts[2].tolist() == [0.7]  # the previous sent action, held
    guard = kinds(rec, "nan_guard")
    assert [(e.tick, e.detail) for e in guard] == [(2, {"channels": [1], "source": "obs"})]
    assert np.isnan(rec.ticks[2].action).all()
    assert summary.faults == 1 and summary.episodes[0].faults == 1


def test_non_finite_action_is_guarded():
    policy = ScriptedPolicy(actions={0: 0.4, 3: float("nan")})
    plant, rec = PointMass(), ListRecorder()
    summary = ControlLoop(plant, policy, LoopConfig(realtime=False), recorder=rec).run()
    assert plant.acts[3].tolist() == [0.5]  # held: tick 2 sent the default 0.5
    assert [e.detail["source"] for e in kinds(rec, "nan_guard")] == ["action"]
    assert summary.faults == 1


def test_safe_stop_and_recorder_close_when_the_plant_fails():
    plant, rec = PointMass(fail_at=5), ListRecorder()
    loop = ControlLoop(plant, ScriptedPolicy(), LoopConfig(realtime=False), recorder=rec)
    with pytest.raises(PlantError, match="simulated plant failure"):
        loop.run(episodes=2)
    assert plant.safe_stops == 1 and rec.closed == 1
    assert loop.summary is not None and loop.summary.episodes[0].ticks == 4
    assert kinds(rec, "episode_end")[0].detail["ticks"] == 4


def test_ctrl_c_returns_a_partial_summary_after_safe_stop():
    plant = PointMass(interrupt_at=3)
    summary = ControlLoop(plant, ScriptedPolicy(), LoopConfig(realtime=False)).run(episodes=3)
    assert summary.interrupted and plant.safe_stops == 1
    assert len(summary.episodes) == 1 and summary.episodes[0].ticks == 2
    assert "interrupted" in summary.format_text()


def test_slow_policy_overruns_are_counted_skipped_and_not_caught_up():
    period = 0.02
    policy = ScriptedPolicy(work_s={3: 0.05})  # tick 3 takes 2.5 periods
    rec = ListRecorder()
    summary = ControlLoop(
        PointMass(period=period, episode_ticks=10), policy, LoopConfig(), recorder=rec
    ).run()
    assert summary.timing.overruns >= 1 and summary.episodes[0].overruns >= 1
    assert summary.timing.skipped_ticks >= 2
    events = kinds(rec, "overrun")
    assert events and events[0].tick == 4 and events[0].detail["skipped_ticks"] >= 2
    starts = np.array([r.mono_time_ns for r in rec.ticks])
    # Grid slot of each tick (robust to a few ms of scheduling jitter on a loaded machine).
    # Catching up would start missed ticks back to back, two or more in one slot.
    slots = np.round((starts - starts[0]) * 1e-9 / period).astype(int)
    steps = np.diff(slots)
    assert (steps >= 1).all(), f"burst of ticks after an overrun: slots {slots}"
    assert steps[3] >= 3, f"the tick after the overrun did not wait for the grid: {slots}"


def test_max_ticks_and_duration_truncate():
    s = ControlLoop(
        PointMass(episode_ticks=100), ScriptedPolicy(), LoopConfig(realtime=False, max_ticks=7)
    ).run()
    assert s.episodes[0].ticks == 7 and s.episodes[0].truncated and not s.episodes[0].terminated
    s = ControlLoop(
        PointMass(period=0.01, episode_ticks=1000), ScriptedPolicy(), LoopConfig(duration_s=0.05)
    ).run()
    assert 3 <= s.episodes[0].ticks <= 7 and s.episodes[0].truncated


def test_mismatched_policy_names_both_shapes():
    policy = random_policy(3, 2, seed=0)
    with pytest.raises(
        SpaceMismatchError,
        match=r"observation \(3,\).*action \(2,\).*point-mass.*observation \(2,\).*action \(1,\)",
    ):
        ControlLoop(PointMass(), policy, LoopConfig())


def test_loop_rate_inconsistent_with_plant_period_names_both_numbers():
    with pytest.raises(TimingError, match=r"loop rate 250 Hz.*0\.004 s.*0\.01 s \(100 Hz\)"):
        ControlLoop(PointMass(period=0.01), ScriptedPolicy(), LoopConfig(rate_hz=250))
    ControlLoop(PointMass(period=0.01), ScriptedPolicy(), LoopConfig(rate_hz=100))  # consistent


def test_recorder_metadata_names_policy_file_hash_plant_seed_and_mode(tmp_path):
    policy = random_policy(2, 1, seed=3)
    path = tmp_path / "p.safetensors"
    policy.save(path)
    rec = ListRecorder()
    ControlLoop(
        PointMass(), policy, LoopConfig(realtime=False), recorder=rec, policy_path=path
    ).run(seed=4)
    import hashlib

    meta = rec.metadata
    assert meta["policy_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["policy"]["obs_dim"] == 2 and meta["seed"] == 4 and meta["mode"] == "fast"
    assert meta["plant"]["name"] == "point-mass" and meta["rate_hz"] == pytest.approx(100)
    assert meta["liquidnode_version"]
    assert rec.ticks[0].state is not None and rec.ticks[0].state.shape == (policy.state_dim,)


def test_real_policy_on_mujoco_is_deterministic_in_fast_mode():
    from liquidnode.sim import make_plant

    def returns() -> list[float]:
        plant = make_plant("InvertedPendulum-v5")
        spec = plant.spec
        policy = random_policy(spec.obs_dim, spec.act_dim, seed=5)
        s = ControlLoop(plant, policy, LoopConfig(realtime=False)).run(episodes=2, seed=11)
        plant.disconnect()
        return [e.return_ for e in s.episodes]

    first = returns()
    assert first == returns()
    assert all(r > 0 for r in first)


def test_run_duration_spans_episodes_until_it_elapses():
    plant = PointMass(episode_ticks=5)  # 50 ms episodes at 100 Hz
    loop = ControlLoop(plant, ScriptedPolicy(), LoopConfig(run_duration_s=0.3))
    t0 = time.monotonic()
    summary = loop.run(episodes=None, seed=3)
    elapsed = time.monotonic() - t0
    episodes = summary.episodes
    assert len(episodes) >= 2
    assert [e.seed for e in episodes] == list(range(3, 3 + len(episodes)))
    assert all(e.terminated and e.ticks == 5 for e in episodes[:-1])
    assert elapsed >= 0.3  # never stops before the run's duration
    last = episodes[-1]
    assert last.terminated or (last.truncated and last.ticks < 5)


class FaultingPointMass(PointMass):
    """Reports a device fault (as a serial device's watchdog trip) in its first episode."""

    def __init__(self) -> None:
        super().__init__(episode_ticks=5)
        self.resets = 0

    def reset(self, seed: int | None = None) -> Observation:
        self.resets += 1
        return super().reset(seed)

    def drain_events(self) -> list[Event]:
        if self.resets == 1 and self.n == 3:
            return [Event("fault", detail={"code": "watchdog"})]
        return []


def test_a_faulted_episode_ends_a_run_of_episodes_none():
    plant = FaultingPointMass()
    summary = ControlLoop(plant, ScriptedPolicy(), LoopConfig(run_duration_s=30.0)).run(
        episodes=None
    )
    assert len(summary.episodes) == 1 and summary.episodes[0].faults == 1
    assert plant.resets == 1  # never reset again after the fault


class HalfDeadband(PointMass):
    """A plant that applies only half of each command (as a device with its own limits might)
    and says so: ``act`` returns what it applied."""

    def act(self, action: np.ndarray) -> np.ndarray:
        applied = np.asarray(action, dtype=np.float64) * 0.5
        super().act(applied)
        return applied


def test_the_log_records_what_the_plant_applied_not_what_was_sent():
    plant, rec = HalfDeadband(episode_ticks=5), ListRecorder()
    ControlLoop(plant, ScriptedPolicy(), LoopConfig(realtime=False), recorder=rec).run()
    assert [t.sent.tolist() for t in rec.ticks] == [[0.25]] * 5  # the policy asked for 0.5
    assert [t.action.tolist() for t in rec.ticks] == [[0.5]] * 5
