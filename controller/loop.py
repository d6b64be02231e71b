"""The fixed-rate control loop: plant -> policy -> safety -> plant, timed and recorded.

Each tick (see :mod:`controller.plant` for the plant side)::

    wait for the deadline (CycleTimer; no wait in fast mode or for a self-paced plant)
    observe   obs = plant.observe()            (the first tick uses the reset observation)
    policy    action = policy.step(obs, dt)    (skipped if obs is non-finite: action held)
    act       sent, events = safety.filter(action, dt); plant.act(sent)

``dt`` fed to the policy is the measured elapsed time since the previous tick start in
real-time mode, the nominal period in fast mode (or, when the plant timestamps its
observations, as a simulation with a randomised control period does, the difference of those
timestamps), and the measured time between samples for a self-paced plant (the device's
timestamps when it provides them). An episode ends when the
plant reports ``terminated``/``truncated``, after ``max_ticks`` actions or ``duration_s``, or
when the whole run's ``run_duration_s`` elapses (then no further episode starts).

However the loop exits (end, exception, Ctrl-C, SIGTERM/SIGHUP raised as
:class:`controller.shutdown.Interrupted`, the hard time bound) it takes one shutdown path:
the plant is put in its safe state (``plant.safe_stop()``), the plant's last events and a
``run_end`` event (``reason``: ``completed``, ``SIGINT``, ``SIGTERM``, ``time_bound``, or the
exception's class) are logged, and the recorder is closed. An interrupt ends
:meth:`ControlLoop.run` normally with a partial summary (``interrupted=True``); any other
exception propagates and the partial summary stays available as :attr:`ControlLoop.summary`.
:class:`EpisodeResult` and :class:`RunSummary` live in :mod:`controller.run_summary` and are
re-exported here.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from liquidnode.controller.errors import LiquidNodeError, SpaceMismatchError, TimingError
from liquidnode.controller.plant import Observation, Plant
from liquidnode.controller.records import Event, Recorder, TickRecord
from liquidnode.controller.run_metadata import jsonable, plant_spec_json, policy_json, safety_json
from liquidnode.controller.run_summary import EpisodeResult, RunSummary
from liquidnode.controller.safety import SafetyLayer
from liquidnode.controller.shutdown import deferred_signals, stop_reason
from liquidnode.controller.timing import CycleTimer

__all__ = [
    "FAULT_KINDS",
    "ControlLoop",
    "EpisodeResult",
    "LoopConfig",
    "PolicyLike",
    "RunSummary",
]

#: Relative tolerance when comparing a requested loop rate with the plant's period.
_RATE_RTOL = 1e-9
#: Event kinds that count as faults in the summary.
FAULT_KINDS = ("fault", "nan_guard", "estop")


class PolicyLike(Protocol):
    """What the loop needs of a policy (:class:`controller.policy.Policy` is one).

    ``step`` maps an observation ``(obs_dim,)`` and the tick's ``dt`` in seconds to a raw
    action ``(act_dim,)``; ``state`` is the hidden state after the last step, logged with each
    tick, or None for a policy that cannot show it (a device without a host shadow).
    """

    obs_dim: int
    act_dim: int

    def reset(self) -> None: ...
    def step(self, obs: np.ndarray, dt: float) -> np.ndarray: ...
    @property
    def state(self) -> np.ndarray | None: ...


@dataclass
class LoopConfig:
    """How to run the loop."""

    #: Tick rate in Hz; None -> the plant's native rate. Must match the plant's control period
    #: (build the plant at the rate you want; the loop does not resample).
    rate_hz: float | None = None
    #: True: pace ticks by the wall clock. False (fast mode): no waiting, dt = nominal period.
    realtime: bool = True
    #: Maximum actions per episode (None = until the plant ends the episode).
    max_ticks: int | None = None
    #: Maximum wall-clock seconds per episode (None = unlimited).
    duration_s: float | None = None
    #: Maximum wall-clock seconds of the whole run, all episodes together (None = unlimited):
    #: the episode running when it elapses ends truncated and no further episode starts.
    run_duration_s: float | None = None
    #: Busy-spin window before each deadline, seconds (see :class:`controller.timing.CycleTimer`).
    spin_s: float = 200e-6
    #: Actuation latency told to a policy with a latency input, seconds (>= 0), at every
    #: episode start; None: the plant's own (:meth:`controller.plant.Plant.actuation_latency_s`,
    #: a simulation's exact value). A plant that does not know it (a serial robot) needs it set.
    latency_s: float | None = None


class ControlLoop:
    """Runs a policy against a plant at a fixed rate.

    Args:
        plant: the plant (simulation or device); connected by :meth:`run` if needed.
        policy: maps ``(obs, dt)`` to an action (a :class:`controller.policy.Policy`).
        config: rate, mode and episode limits; defaults to ``LoopConfig()``.
        safety: the safety layer; defaults to the plant's limits and safe action.
        recorder: receives run metadata, tick records and events (None: no log).
        open_recorder: creates the recorder when the first :meth:`run` begins (in place of
            ``recorder``), e.g. ``lambda: open_recorder(args, "sim", meta)``: the log file
            is created and started inside the run's shutdown path, with stop signals held back
            until it is (:func:`controller.shutdown.deferred_signals`), so a signal that comes
            as soon as the file exists still ends it with ``run_end`` and the footer.
        policy_path: the file the policy was loaded from (its sha256 goes into the metadata).
        metadata: extra run metadata for the recorder (e.g. the command line).
        on_episode_end: called on the loop's thread with each episode's result as soon as the
            episode ends (one cut short too), before the next reset; e.g. to print a line.

    Raises:
        SpaceMismatchError: the policy's observation/action sizes differ from the plant's.
        TimingError: ``config.rate_hz`` is not the plant's control rate.
    """

    def __init__(
        self,
        plant: Plant,
        policy: PolicyLike,
        config: LoopConfig | None = None,
        safety: SafetyLayer | None = None,
        recorder: Recorder | None = None,
        *,
        open_recorder: Callable[[], Recorder | None] | None = None,
        policy_path: str | os.PathLike[str] | None = None,
        metadata: dict[str, Any] | None = None,
        on_episode_end: Callable[[EpisodeResult], None] | None = None,
    ) -> None:
        self.plant = plant
        self.policy = policy
        self.config = config = config or LoopConfig()
        self.recorder = recorder
        self._open_recorder = open_recorder
        self.policy_path = policy_path
        self.extra_metadata = dict(metadata or {})
        self.on_episode_end = on_episode_end
        spec = plant.spec
        if (policy.obs_dim, policy.act_dim) != (spec.obs_dim, spec.act_dim):
            raise SpaceMismatchError(
                f"policy expects observation ({policy.obs_dim},) and action ({policy.act_dim},) "
                f"but plant {spec.name} has observation ({spec.obs_dim},) and action "
                f"({spec.act_dim},)"
            )
        period = spec.control_period_s
        if config.rate_hz is not None:
            rate = float(config.rate_hz)
            if not (np.isfinite(rate) and rate > 0):
                raise TimingError(f"loop rate must be a positive number of Hz, got {rate}")
            if abs(rate * period - 1.0) > _RATE_RTOL:
                raise TimingError(
                    f"loop rate {rate:g} Hz (period {1.0 / rate:g} s) does not match plant "
                    f"{spec.name}'s control period {period:g} s ({1.0 / period:g} Hz); build the "
                    "plant at the wanted rate or leave the loop rate unset"
                )
        #: ``policy.set_latency`` of a policy with a latency input (set at every episode start).
        self._set_latency: Callable[[float], None] | None = None
        if getattr(policy, "latency_input", None) is not None:
            self._set_latency = policy.set_latency  # type: ignore[attr-defined]
            told = config.latency_s
            if told is not None and not (np.isfinite(told) and told >= 0):
                raise LiquidNodeError(f"actuation latency must be >= 0 s, got {told!r}")
            if told is None and plant.actuation_latency_s() is None:
                raise LiquidNodeError(
                    f"the policy takes the actuation latency as an input and plant {spec.name} "
                    "does not know it: give the measured latency (--latency-ms)"
                )
        self.safety = safety or SafetyLayer.for_spec(spec)
        if self.safety.act_dim != spec.act_dim:
            raise SpaceMismatchError(
                f"safety layer has {self.safety.act_dim} action channels but plant {spec.name} "
                f"has {spec.act_dim}"
            )
        if plant.self_paced:
            self.mode = "self_paced"
        else:
            self.mode = "realtime" if config.realtime else "fast"
        self.timer = CycleTimer(period, realtime=self.mode == "realtime", spin_s=config.spin_s)
        #: The summary of the last (or current, partial) run.
        self.summary: RunSummary | None = None
        self._results: list[EpisodeResult] = []
        self._extra_overruns = 0
        self._extra_skipped = 0
        self._run_end_ns: int | None = None
        #: The KeyboardInterrupt (Ctrl-C, :class:`controller.shutdown.Interrupted`,
        #: :class:`~controller.shutdown.TimeBoundExceeded`) that stopped the last run, or None.
        self.stopped_by: KeyboardInterrupt | None = None

    # ------------------------------------------------------------------ metadata
    def run_metadata(self, episodes: int | None, seed: int | None) -> dict[str, Any]:
        """Run metadata for ``recorder.start``: policy (metadata, path, sha256), plant spec,
        seed, rate, mode, limits, liquidnode version, plus the extra metadata."""
        from liquidnode.controller import __version__

        meta: dict[str, Any] = {
            "liquidnode_version": __version__,
            "started_at_ns": time.time_ns(),
            "mode": self.mode,
            "rate_hz": 1.0 / self.timer.period_s,
            "seed": seed,
            "episodes": episodes,
            "max_ticks": self.config.max_ticks,
            "duration_s": self.config.duration_s,
            "run_duration_s": self.config.run_duration_s,
            "plant": plant_spec_json(self.plant),
            "safety": safety_json(self.safety),
            **policy_json(self.policy, self.policy_path),
        }
        meta.update(jsonable(self.extra_metadata))
        return meta

    # ------------------------------------------------------------------ running
    def run(self, episodes: int | None = 1, seed: int | None = None) -> RunSummary:
        """Run ``episodes`` episodes; episode ``i`` resets the plant with ``seed + i``.

        ``episodes=None``: one episode after another until ``config.run_duration_s`` elapses
        (or Ctrl-C), except that an episode with a fault (a device's watchdog trip or e-stop,
        a NaN guard) ends the run: a faulted plant is never reset automatically.

        Returns:
            The run summary (partial with ``interrupted=True`` after Ctrl-C).

        Raises:
            Whatever the plant, policy or recorder raise (PlantError, LinkError...), after
            ``plant.safe_stop()`` and ``recorder.close()``; :attr:`summary` then holds the
            partial summary.
        """
        if episodes is not None and episodes < 1:
            raise ValueError(f"episodes must be >= 1 or None, got {episodes}")
        self._results = []
        self._extra_overruns = self._extra_skipped = 0
        self.timer.clear()
        self.summary = None
        self.stopped_by = None
        interrupted = False
        reason, error = "completed", None
        try:
            started = self._start_recorder(episodes, seed)
            recorder = self.recorder
            self.plant.connect()
            if recorder is not None and not started:
                recorder.start(self.run_metadata(episodes, seed))
            self._run_end_ns = None
            if self.config.run_duration_s is not None:
                self._run_end_ns = time.monotonic_ns() + round(self.config.run_duration_s * 1e9)
            for index in itertools.count() if episodes is None else range(episodes):
                if index and self._run_over():
                    break
                self._episode(index, None if seed is None else seed + index)
                if episodes is None and self._results[-1].faults:
                    break
        except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP, the hard time bound
            interrupted, reason, self.stopped_by = True, stop_reason(exc), exc
        except BaseException as exc:
            reason, error = stop_reason(exc), str(exc)
            raise
        finally:
            summary = self._shutdown(reason, error, interrupted)
        return summary

    def _start_recorder(self, episodes: int | None, seed: int | None) -> bool:
        """Create and start the recorder with ``open_recorder`` (first run only), signals
        held back meanwhile; True if it did."""
        opener, self._open_recorder = self._open_recorder, None
        if opener is None:
            return False
        with deferred_signals():
            self.recorder = opener()
            if self.recorder is not None:
                self.recorder.start(self.run_metadata(episodes, seed))
        return True

    def _run_over(self) -> bool:
        """True once the run's ``run_duration_s`` has elapsed."""
        return self._run_end_ns is not None and time.monotonic_ns() >= self._run_end_ns

    def _shutdown(self, reason: str, error: str | None, interrupted: bool) -> RunSummary:
        """The one shutdown path: plant to its safe state first, then the plant's last events
        and a ``run_end`` event with ``reason`` into the log, the log closed, the summary built
        and returned. A signal arriving meanwhile does not cut it short (see
        :mod:`controller.shutdown`)."""
        recorder = self.recorder
        try:
            self.plant.safe_stop()
        finally:
            try:
                episode = max(len(self._results) - 1, 0)
                self._emit_plant_events(episode, -1)
                detail: dict[str, Any] = {"reason": reason}
                if error is not None:
                    detail["error"] = error
                self._emit(Event("run_end", detail=detail), episode, -1)
                if recorder is not None:
                    recorder.close()
            finally:
                summary = self.summary = self._summarize(interrupted, reason, error)
        return summary

    def _emit_plant_events(self, episode: int, tick: int) -> int:
        """Log the plant's pending events; return how many were faults."""
        faults = 0
        try:
            events = self.plant.drain_events()
        except Exception:  # a plant's bookkeeping must not hide the real outcome
            return 0
        for event in events:
            faults += event.kind in FAULT_KINDS
            self._emit(event, episode, tick)
        return faults

    def _summarize(
        self, interrupted: bool, reason: str = "completed", error: str | None = None
    ) -> RunSummary:
        timing = self.timer.stats()
        timing = dataclasses.replace(
            timing,
            overruns=timing.overruns + self._extra_overruns,
            skipped_ticks=timing.skipped_ticks + self._extra_skipped,
        )
        try:
            plant_summary = jsonable(self.plant.summary())
        except Exception as exc:  # a summary must not hide the real outcome
            plant_summary = {"error": f"plant.summary() failed: {exc}"}
        return RunSummary(
            episodes=list(self._results),
            mode=self.mode,
            nominal_rate_hz=1.0 / self.timer.period_s,
            timing=timing,
            plant=plant_summary,
            faults=sum(e.faults for e in self._results),
            interrupted=interrupted,
            stop_reason=reason,
            error=error,
            log_errors=list(getattr(self.recorder, "errors", None) or []),
        )

    def _emit(self, event: Event, episode: int, tick: int) -> None:
        event.episode = episode
        event.tick = tick
        if not event.mono_time_ns:
            event.mono_time_ns = time.monotonic_ns()
        if not event.wall_time_ns:
            event.wall_time_ns = time.time_ns()
        if self.recorder is not None:
            self.recorder.event(event)

    def _episode(self, index: int, seed: int | None) -> None:
        plant, policy, safety, timer = self.plant, self.policy, self.safety, self.timer
        recorder, config = self.recorder, self.config
        period = timer.period_s
        self_paced = plant.self_paced
        realtime = timer.realtime
        max_ticks = config.max_ticks
        act_dim = safety.act_dim
        no_action = np.full(act_dim, np.nan)
        all_finite = np.ones(plant.spec.obs_dim, dtype=bool).tobytes()
        policy.reset()
        safety.reset()
        obs: Observation = plant.reset(seed)
        start_detail: dict[str, Any] = {"seed": seed}
        if self._set_latency is not None:  # told at every start: a simulation draws it anew
            told = config.latency_s
            latency_s = plant.actuation_latency_s() if told is None else told
            start_detail["latency_ticks"] = float(latency_s or 0.0) / period
            self._set_latency(start_detail["latency_ticks"])
        self._emit(Event("episode_start", detail=start_detail), index, -1)
        ret, ticks, overruns, faults = 0.0, 0, 0, 0
        terminated = truncated = False
        first_tick = timer.ticks
        prev_start = prev_sample_ns = 0
        prev_device_s: float | None = None
        end_ns = self._run_end_ns
        if config.duration_s is not None:
            episode_end = time.monotonic_ns() + round(config.duration_s * 1e9)
            end_ns = episode_end if end_ns is None else min(end_ns, episode_end)
        timer.start()
        try:
            while True:
                start = timer.wait()
                if timer.overran:
                    overruns += 1
                    detail: dict[str, Any] = {
                        "late_us": timer.last_late_ns / 1e3,
                        "skipped_ticks": timer.last_skipped,
                    }
                    self._emit(Event("overrun", mono_time_ns=start, detail=detail), index, ticks)
                if ticks:
                    obs = plant.observe()
                    ret += obs.reward
                observe_ns = timer.lap(0)
                # dt: the cell's time input, seconds.
                if ticks == 0:
                    dt = period
                elif self_paced:
                    sample_ns = start + observe_ns
                    dt = (sample_ns - prev_sample_ns) * 1e-9
                    dev = obs.device_time_s
                    if dev is not None and prev_device_s is not None and dev > prev_device_s:
                        dt = dev - prev_device_s
                    if dt > 1.5 * period:  # samples were missed: an overrun of the device clock
                        overruns += 1
                        skipped = max(1, round(dt / period) - 1)
                        self._extra_overruns += 1
                        self._extra_skipped += skipped
                        detail = {"late_us": (dt - period) * 1e6, "skipped_ticks": skipped}
                        self._emit(Event("overrun", detail=detail), index, ticks)
                elif realtime:
                    dt = (start - prev_start) * 1e-9
                elif (
                    obs.device_time_s is not None
                    and prev_device_s is not None
                    and obs.device_time_s > prev_device_s
                ):
                    dt = obs.device_time_s - prev_device_s  # a simulation with a jittered period
                else:
                    dt = period
                prev_start = start
                prev_sample_ns = start + observe_ns
                prev_device_s = obs.device_time_s
                if obs.terminated or obs.truncated:
                    terminated, truncated = bool(obs.terminated), bool(obs.truncated)
                    break
                if (max_ticks is not None and ticks >= max_ticks) or (
                    end_ns is not None and start >= end_ns
                ):
                    truncated = True
                    break
                values = obs.values
                finite = np.isfinite(values)
                if finite.tobytes() == all_finite or finite.all():  # bytes first: cheaper
                    action = policy.step(values, dt)
                    policy_ns = timer.lap(1)
                    sent, events = safety.filter(action, dt)
                else:  # do not feed the policy garbage: its state stays clean, action held
                    action = no_action
                    policy_ns = timer.lap(1)
                    sent = safety.hold()
                    detail = {"channels": np.flatnonzero(~finite).tolist(), "source": "obs"}
                    events = [Event("nan_guard", detail=detail)]
                applied = plant.act(sent)
                if applied is not None:  # the plant reports what it really applied
                    sent = applied
                act_ns = timer.lap(2)
                plant_events = plant.drain_events()
                if events or plant_events:
                    for event in (*events, *plant_events):
                        if event.kind in FAULT_KINDS:
                            faults += 1
                        self._emit(event, index, ticks)
                if recorder is not None:
                    recorder.tick(
                        TickRecord(
                            episode=index,
                            tick=ticks,
                            wall_time_ns=time.time_ns(),
                            mono_time_ns=start,
                            dt_s=dt,
                            obs=np.array(values, dtype=np.float64),
                            action=np.array(action, dtype=np.float64),
                            sent=sent,
                            reward=float(obs.reward),
                            state=policy.state,
                            lateness_us=timer.last_lateness_ns / 1e3,
                            observe_us=observe_ns / 1e3,
                            policy_us=policy_ns / 1e3,
                            act_us=act_ns / 1e3,
                        )
                    )
                ticks += 1
        finally:
            faults += self._emit_plant_events(index, ticks)  # e.g. the STATUS that ended it
            stats = timer.stats(since=first_tick)
            self._results.append(
                EpisodeResult(
                    index=index,
                    seed=seed,
                    return_=float(ret),
                    ticks=ticks,
                    terminated=terminated,
                    truncated=truncated,
                    lateness_p99_us=stats.lateness_p99_us,
                    overruns=overruns,
                    faults=faults,
                )
            )
            end = {
                "return": float(ret),
                "ticks": ticks,
                "terminated": terminated,
                "truncated": truncated,
            }
            self._emit(Event("episode_end", detail=end), index, ticks)
            if self.on_episode_end is not None:
                self.on_episode_end(self._results[-1])
