"""A fuzz campaign against everything liquidnode reads: policy files, logs, MJCF numerics and
serial devices.

Four classes of crafted input, each built from a valid one by random mutations:

- ``policy``: a valid policy file (CfC, LTC, wired CfC) with its metadata JSON mutated
  (values replaced by hostile ones, keys deleted or added, deep nesting, non-strings), its
  tensor header entries mutated, bytes flipped, truncated, a wrong header length, or a
  non-regular path; read by ``Policy.load``, then three ``step`` calls.
- ``log``: a valid crafted log (ticks, states, events, run metadata) with message fields
  replaced, deleted or added, duplicate messages, ragged arrays, run or log metadata mutated,
  bytes flipped or truncated; read by ``read_log``, ``summarize`` and every episode's arrays.
- ``mjcf``: ``sim/models/pendulum.xml`` with ``timestep``, ``liquidnode_frame_skip``,
  ``liquidnode_max_ticks``, ``liquidnode_reset_noise`` and the requested rate drawn from a
  pool of hostile numbers; built by ``MjcfPlant``, reset, two ticks.
- ``device``: a :class:`~firmware_bridge.fake_device.FakeDevice` on a pty announcing odd
  sizes, periods, watchdogs, versions or limits, or answering HELLO with garbage, then
  misbehaving mid-run (garbage, silence, other versions, ESTOP, watchdog, NaN/huge values,
  disconnects); driven by ``SerialPlant`` + ``ControlLoop`` with an MCAP log.

Each case ends in one outcome: ``ok`` (read or run fine), ``refused`` (one
:class:`~controller.errors.LiquidNodeError`: the clean line a user sees) or ``link_lost``
(devices: LinkError during the run), all acceptable; or a defect: ``traceback`` (any other
exception), ``hang`` (over the case's time bound), ``data_lost`` (a device run that ended
without error but whose log is incomplete or holds fewer ticks than the run made) or
``unsafe_exit`` (the device's last frames were not COMMAND(safe) then ESTOP although the
port was writable).

``python scripts/fuzz_campaign.py --help`` runs it; the test suite runs a bounded sample.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from liquidnode.benchmarks.fuzz_inputs import (
    device_script,
    mutate_policy,
    valid_policy_files,
    write_mutated_log,
    write_mutated_mjcf,
)
from liquidnode.controller.errors import LinkError, LiquidNodeError
from liquidnode.controller.shutdown import TimeBoundExceeded, hard_time_bound

CLASSES = ("policy", "log", "mjcf", "device")
DEFECTS = ("traceback", "hang", "data_lost", "unsafe_exit")


# ----------------------------------------------------------------------------- outcomes
@dataclass
class Outcome:
    """One case: its class, result (``ok``/``refused``/``link_lost`` or a defect), a note."""

    cls: str
    result: str
    note: str = ""
    seconds: float = 0.0


@dataclass
class Tally:
    """Outcome counts per class, and the first defects in full."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    defects: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, outcome: Outcome, seed: int) -> None:
        self.counts.setdefault(outcome.cls, Counter())[outcome.result] += 1
        self.seconds[outcome.cls] = self.seconds.get(outcome.cls, 0.0) + outcome.seconds
        if outcome.result in DEFECTS and len(self.defects) < 50:
            self.defects.append(
                {"class": outcome.cls, "seed": seed, "result": outcome.result,
                 "note": outcome.note}
            )  # fmt: skip

    def total(self, cls: str | None = None) -> int:
        classes = [cls] if cls else list(self.counts)
        return sum(sum(self.counts.get(c, Counter()).values()) for c in classes)

    def defect_count(self) -> int:
        return sum(c[d] for c in self.counts.values() for d in DEFECTS)

    def to_json(self) -> dict[str, Any]:
        return {
            "cases": {c: self.total(c) for c in self.counts},
            "outcomes": {c: dict(v) for c, v in self.counts.items()},
            "seconds": {c: round(s, 1) for c, s in self.seconds.items()},
            "defects": self.defect_count(),
            "first_defects": self.defects,
        }


def _run_case(cls: str, bound_s: float, body: Callable[[], str]) -> Outcome:
    """Run ``body`` (returns the result name) under a hard time bound, classifying errors."""
    t0 = time.monotonic()
    try:
        with hard_time_bound(bound_s):
            result, note = body(), ""
    except TimeBoundExceeded:
        result, note = "hang", f"over {bound_s:g} s"
    except LinkError as exc:
        result, note = "link_lost", str(exc)[:200]
    except LiquidNodeError as exc:
        result, note = "refused", str(exc)[:200]
    except Exception as exc:  # the defect this campaign hunts
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{Path(tb.filename).name}:{tb.lineno}"
        result, note = "traceback", f"{type(exc).__name__}: {str(exc)[:160]} at {where}"
    return Outcome(cls, result, note, time.monotonic() - t0)


# ----------------------------------------------------------------------------- policy files
def policy_case(bases: list[bytes], rng: np.random.Generator, directory: Path) -> Outcome:
    """Mutate one of ``bases``, load it and step it."""
    from liquidnode.controller.policy import Policy

    path = directory / "case.safetensors"
    roll = rng.random()
    if roll < 0.01:
        target: Path | str = "/dev/zero"
    elif roll < 0.02:
        target = directory
    else:
        path.write_bytes(mutate_policy(bases[int(rng.integers(len(bases)))], rng))
        target = path

    def body() -> str:
        policy = Policy.load(target)
        for _ in range(3):
            policy.step(np.zeros(policy.obs_dim), 0.02)
        return "ok"

    return _run_case("policy", 10.0, body)


# ----------------------------------------------------------------------------- logs
def log_case(rng: np.random.Generator, directory: Path) -> Outcome:
    """Craft one mutated log, read it back, summarise it, touch every array."""
    from liquidnode.controller.logs.episode import read_log
    from liquidnode.controller.logs.summary import summarize

    path = directory / "case.mcap"
    write_mutated_log(path, rng)

    def body() -> str:
        contents = read_log(path)
        summarize(contents)
        for ep in contents.episodes:
            _ = (ep.obs.sum(), ep.sent.shape, ep.duration_s, ep.episode_return, ep.seed)
        return "ok"

    return _run_case("log", 10.0, body)


# ----------------------------------------------------------------------------- MJCF numerics
def mjcf_case(rng: np.random.Generator, directory: Path) -> Outcome:
    """Pendulum MJCF with hostile numerics and rate; build, reset, two ticks."""
    from liquidnode.sim.mjcf_plant import MjcfPlant

    path = directory / "case.xml"
    rate = write_mutated_mjcf(path, rng)

    def body() -> str:
        plant = MjcfPlant(path, rate_hz=rate)
        plant.connect()
        try:
            plant.reset(int(rng.integers(1000)))
            for _ in range(2):
                plant.act(np.zeros(plant.spec.act_dim))
                plant.observe()
        finally:
            plant.disconnect()
        return "ok"

    return _run_case("mjcf", 20.0, body)


# ----------------------------------------------------------------------------- devices
def device_case(
    rng: np.random.Generator, directory: Path, duration_s: float = 0.25, script: Any = None
) -> Outcome:
    """One session against ``script`` (default: :func:`device_script`): handshake, a short
    run with an MCAP log, shutdown; then the checks."""
    from liquidnode.controller.logs.episode import read_log
    from liquidnode.controller.logs.recorder import McapRecorder
    from liquidnode.controller.loop import ControlLoop, LoopConfig
    from liquidnode.controller.policy import random_policy
    from liquidnode.firmware_bridge.fake_device import FakeDevice
    from liquidnode.firmware_bridge.protocol import Command, Estop
    from liquidnode.firmware_bridge.serial_plant import SerialPlant

    script = script if script is not None else device_script(rng)
    device = FakeDevice(script, seed=int(rng.integers(2**31))).start()
    obs_timeout, handshake = 0.15, 0.3
    plant = SerialPlant(
        device.port,
        obs_dim=4,
        act_dim=1,
        obs_timeout_s=obs_timeout,
        handshake_timeout_s=handshake,
        ping_every=int(rng.integers(0, 4)),
    )
    log = directory / "device.mcap"
    state: dict[str, Any] = {}
    disconnects = any(s.action == "disconnect" for s in script.steps)

    def body() -> str:
        plant.connect()
        recorder = McapRecorder(log, command="fuzz", min_free_bytes=0)
        loop = ControlLoop(plant, random_policy(4, 1, seed=0), LoopConfig(duration_s=duration_s),
                           recorder=recorder)  # fmt: skip
        state["loop"] = loop
        try:
            summary = loop.run()
        finally:
            state["summary"] = loop.summary
            plant.disconnect()
        contents = read_log(log)
        logged = sum(e.ticks for e in contents.episodes)
        made = sum(e.ticks for e in summary.episodes)
        if not contents.complete or logged != made or summary.log_errors:
            raise _DataLostError(f"log complete={contents.complete}, {logged} of {made} ticks")
        return "ok"

    outcome = _run_case("device", handshake + 0.5 + duration_s + obs_timeout + 3.0, body)
    if outcome.note.startswith("_DataLostError"):
        outcome.result, outcome.note = "data_lost", outcome.note
    if outcome.result in ("ok", "link_lost") and plant.device is not None and not disconnects:
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline and not (
            device.received and isinstance(device.received[-1].message, Estop)
        ):
            time.sleep(0.005)
        last = [f.message for f in device.received[-2:]]
        safe = plant.spec.safe_action.tolist()
        if not (
            len(last) == 2
            and isinstance(last[0], Command)
            and list(last[0].values) == safe
            and isinstance(last[1], Estop)
        ):
            outcome.result, outcome.note = "unsafe_exit", f"last frames {last!r:.160}"
    device.close()
    with contextlib.suppress(OSError):
        log.unlink()
    return outcome


class _DataLostError(Exception):
    """A run that reported success with an incomplete log."""


# ----------------------------------------------------------------------------- campaign
def run_campaign(
    counts: dict[str, int],
    seed: int = 0,
    directory: Path | None = None,
    progress: Callable[[str, int, Tally], None] | None = None,
) -> Tally:
    """Run ``counts[cls]`` cases of each class (case ``i`` seeded ``(seed, cls, i)``).

    Args:
        counts: cases per class, e.g. ``{"policy": 4000, "device": 1000}``.
        seed: campaign seed; a defect's ``seed`` in the tally reproduces it with ``counts``
            ``{cls: seed + 1}`` ... see ``scripts/fuzz_campaign.py --replay``.
        directory: scratch folder (a temporary one by default).
        progress: called after every case with (class, index, tally).
    """
    tally = Tally()
    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        bases = valid_policy_files(directory) if counts.get("policy") else []
        for cls in CLASSES:
            for i in range(counts.get(cls, 0)):
                case_seed = case_seed_of(seed, cls, i)
                tally.add(run_one(cls, case_seed, directory, bases), case_seed)
                if progress is not None:
                    progress(cls, i, tally)
    return tally


def case_seed_of(seed: int, cls: str, index: int) -> int:
    """The seed of case ``index`` of class ``cls`` in a campaign seeded ``seed``."""
    return (seed * 1_000_003 + CLASSES.index(cls) * 100_000_007 + index) % 2**63


def run_one(cls: str, case_seed: int, directory: Path, bases: list[bytes] | None = None) -> Outcome:
    """Run the one case of class ``cls`` that ``case_seed`` describes."""
    rng = np.random.default_rng(case_seed)
    if cls == "policy":
        return policy_case(bases or valid_policy_files(directory), rng, directory)
    if cls == "log":
        return log_case(rng, directory)
    if cls == "mjcf":
        return mjcf_case(rng, directory)
    if cls == "device":
        return device_case(rng, directory)
    raise ValueError(f"unknown class {cls!r}; one of {CLASSES}")


def environment() -> dict[str, Any]:
    """Where the campaign ran (for the report)."""
    import platform

    from liquidnode import __version__

    return {
        "liquidnode": __version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }
