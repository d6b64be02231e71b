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
import json
import math
import os
import struct
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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


# ----------------------------------------------------------------------------- JSON mutation
def hostile_values(rng: np.random.Generator) -> Any:
    """A value a careless reader chokes on."""
    pool: list[Callable[[], Any]] = [
        lambda: None, lambda: True, lambda: -1, lambda: 0, lambda: 1, lambda: 2**63,
        lambda: -1e308, lambda: 1e308, lambda: 1.5, lambda: "x", lambda: "", lambda: [],
        lambda: {}, lambda: [None], lambda: ["a", 1], lambda: {"type": "cfc"},
        lambda: [0.0] * int(rng.integers(0, 300)), lambda: "nan",
        lambda: json.loads("[" * 200 + "]" * 200),
        lambda: float(rng.normal() * 10 ** rng.integers(0, 40)),
        lambda: int(rng.integers(-(2**31), 2**31)), lambda: "é" * 40,
    ]  # fmt: skip
    return pool[int(rng.integers(len(pool)))]()


def _paths(obj: Any) -> list[tuple[Any, ...]]:
    """Every path (tuple of keys / indices) into a JSON value, the root included."""
    out: list[tuple[Any, ...]] = [()]
    stack: list[tuple[Any, tuple[Any, ...]]] = [(obj, ())]
    while stack:
        node, path = stack.pop()
        items = (
            node.items()
            if isinstance(node, dict)
            else enumerate(node)
            if isinstance(node, list)
            else ()
        )
        for k, v in items:
            out.append((*path, k))
            if isinstance(v, (dict, list)) and len(out) < 5000:
                stack.append((v, (*path, k)))
    return out


def mutate_json(obj: Any, rng: np.random.Generator, value: Callable[[], Any] | None = None) -> Any:
    """``obj`` (a deep copy) with one random node replaced, deleted, or a key added."""
    value = value or (lambda: hostile_values(rng))
    return mutate_json_at(obj, int(rng.integers(2**31)), int(rng.integers(3)), value())


def mutate_json_at(obj: Any, index: int, op: int, value: Any) -> Any:
    """``obj`` (a deep copy) with its node number ``index`` (modulo the node count, in
    :func:`_paths` order) replaced by ``value`` (``op`` 0), deleted (1), or given a sibling
    ``value`` (2: a new key in an object, an inserted item in a list)."""
    obj = json.loads(json.dumps(obj))
    paths = _paths(obj)
    path = paths[index % len(paths)]
    if not path:
        return value
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    if op == 0:
        parent[path[-1]] = value
    elif op == 1:
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[f"extra_{index % 100}"] = value
    else:
        parent.insert(int(path[-1]), value)
    return obj


def _flip_bytes(data: bytes, rng: np.random.Generator, n: int) -> bytes:
    buf = bytearray(data)
    for _ in range(n):
        i = int(rng.integers(len(buf))) if buf else 0
        if buf:
            buf[i] = int(rng.integers(256))
    return bytes(buf)


# ----------------------------------------------------------------------------- policy files
def valid_policy_files(directory: Path) -> list[bytes]:
    """The bytes of three valid policy files (CfC, LTC, wired CfC; 4 obs, 1 action)."""
    from liquidnode.controller.policy import random_policy

    out = []
    cells: list[dict[str, Any]] = [
        {"cell": "cfc"},
        {"cell": "ltc"},
        {"cell": "wired_cfc", "units": 8},
    ]
    for i, kw in enumerate(cells):
        path = directory / f"base{i}.safetensors"
        random_policy(4, 1, seed=i, **kw).save(path)
        out.append(path.read_bytes())
    return out


def mutate_policy(data: bytes, rng: np.random.Generator) -> bytes:
    """A policy file's bytes with one random mutation (see the module docstring)."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    op = int(rng.integers(8))
    if op <= 2:  # the liquidnode metadata, the most structured part
        meta = json.loads(header["__metadata__"]["liquidnode"])
        for _ in range(int(rng.integers(1, 4))):
            meta = mutate_json(meta, rng)
        header["__metadata__"]["liquidnode"] = json.dumps(meta)
    elif op == 3:
        header["__metadata__"]["liquidnode"] = hostile_values(rng)
    elif op == 4:
        header = mutate_json(header, rng)
    elif op == 5:
        return _flip_bytes(data, rng, int(rng.integers(1, 8)))
    elif op == 6:
        return data[: int(rng.integers(len(data)))]
    else:
        return struct.pack("<Q", int(rng.integers(0, 2**63))) + data[8:]
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


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
def _tick(episode: int, tick: int, rng: np.random.Generator) -> dict[str, Any]:
    return {
        "episode": episode, "tick": tick, "t": tick * 0.04, "dt": 0.04,
        "obs": [float(v) for v in rng.normal(size=4)], "action": [0.1], "sent": [0.1],
        "reward": 1.0, "lateness_us": 5.0,
        "sections": {"observe_us": 1.0, "policy_us": 2.0, "act_us": 1.0},
    }  # fmt: skip


def valid_log_messages(rng: np.random.Generator) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """Messages [(topic, body)] and run metadata of a small valid two-episode log."""
    from liquidnode.controller.logs import schema

    msgs: list[tuple[str, Any]] = []
    for ep in range(2):
        msgs.append((schema.EVENT_TOPIC, {"kind": "episode_start", "episode": ep, "tick": -1,
                                          "detail": {"seed": ep}}))  # fmt: skip
        for t in range(5):
            msgs.append((schema.TICK_TOPIC, _tick(ep, t, rng)))
            msgs.append((schema.STATE_TOPIC, {"episode": ep, "tick": t, "state": [0.0] * 3}))
        msgs.append((schema.EVENT_TOPIC, {"kind": "episode_end", "episode": ep, "tick": 5,
                                          "detail": {"return": 5.0}}))  # fmt: skip
    run = {
        "rate_hz": 25.0, "mode": "fast", "seed": 0, "episodes": 2, "max_ticks": None,
        "plant": {"name": "InvertedPendulum-v5", "rate_hz": 25.0, "obs_names": ["a"] * 4,
                  "info": {"source": "gymnasium", "env_id": "InvertedPendulum-v5"}},
        "policy_path": "p.safetensors", "policy_sha256": "0" * 64,
    }  # fmt: skip
    return msgs, run


def write_log(
    path: Path,
    messages: list[tuple[str, Any]],
    run: dict[str, Any] | Any,
    log_meta: dict[str, str] | None = None,
    compress: bool = False,
) -> None:
    """An MCAP file in liquidnode's layout holding ``messages`` and ``run`` exactly as given
    (chunks uncompressed as liquidnode writes them, or zstd as other tools may)."""
    from mcap.writer import CompressionType, Writer

    from liquidnode.controller.logs import schema

    with open(path, "wb") as f:
        w = Writer(f, compression=CompressionType.ZSTD if compress else CompressionType.NONE)
        w.start()
        ids = {}
        for topic, body in schema.CHANNELS:
            sid = w.register_schema(body["title"], "jsonschema", schema.to_json_bytes(body))
            ids[topic] = w.register_channel(topic, "json", sid)
        w.add_metadata(schema.LOG_METADATA, log_meta or {"format_version": "1", "command": "sim"})
        if isinstance(run, dict):
            w.add_metadata(schema.RUN_METADATA, {str(k): json.dumps(v) for k, v in run.items()})
        for i, (topic, body) in enumerate(messages):
            w.add_message(ids[topic], i, json.dumps(body).encode(), i, i)
        w.finish()


def log_case(rng: np.random.Generator, directory: Path) -> Outcome:
    """Craft one mutated log, read it back, summarise it, touch every array."""
    from liquidnode.controller.logs.episode import read_log
    from liquidnode.controller.logs.summary import summarize

    path = directory / "case.mcap"
    msgs, run = valid_log_messages(rng)
    log_meta = None
    op = int(rng.integers(9))
    for _ in range(int(rng.integers(1, 3))):
        i = int(rng.integers(len(msgs)))
        if op <= 2:
            msgs[i] = (msgs[i][0], mutate_json(msgs[i][1], rng))
        elif op == 3:
            msgs.insert(i, msgs[i])  # a duplicate tick, state or event
        elif op == 4:
            topic, bodyj = msgs[i]
            key = "obs" if "obs" in bodyj else "state" if "state" in bodyj else None
            if key and isinstance(bodyj.get(key), list) and bodyj[key]:
                bodyj = dict(bodyj, **{key: bodyj[key][: int(rng.integers(len(bodyj[key])))]})
                msgs[i] = (topic, bodyj)
        elif op <= 6:
            run = mutate_json(run, rng)
        elif op == 7:
            log_meta = mutate_json({"format_version": "1", "command": "sim"}, rng)
            log_meta = log_meta if isinstance(log_meta, dict) else {"x": "y"}
            log_meta = {str(k): str(v) for k, v in log_meta.items()}
    write_log(path, msgs, run, log_meta, compress=bool(rng.random() < 0.3))
    if op == 8:
        data = path.read_bytes()
        if rng.random() < 0.5:
            data = _flip_bytes(data, rng, int(rng.integers(1, 16)))
        else:
            data = data[: int(rng.integers(len(data)))]
        path.write_bytes(data)

    def body() -> str:
        contents = read_log(path)
        summarize(contents)
        for ep in contents.episodes:
            _ = (ep.obs.sum(), ep.sent.shape, ep.duration_s, ep.episode_return, ep.seed)
        return "ok"

    return _run_case("log", 10.0, body)


# ----------------------------------------------------------------------------- MJCF numerics
_NUMBERS = ["0", "-1", "1", "2.5", "10", "1e-9", "1e12", "1e300", "nan", "inf", "-inf", "0.002",
            "0.01", "7", "100000", "100001"]  # fmt: skip


def mjcf_case(rng: np.random.Generator, directory: Path) -> Outcome:
    """Pendulum MJCF with hostile numerics and rate; build, reset, two ticks."""
    from liquidnode.sim import PENDULUM_XML
    from liquidnode.sim.mjcf_plant import MjcfPlant

    text = PENDULUM_XML.read_text()
    pick = lambda: _NUMBERS[int(rng.integers(len(_NUMBERS)))]  # noqa: E731
    if rng.random() < 0.6:
        text = text.replace('timestep="0.002"', f'timestep="{pick()}"')
    for name in ("liquidnode_frame_skip", "liquidnode_max_ticks", "liquidnode_reset_noise"):
        if rng.random() < 0.5:
            old = next(line for line in text.splitlines() if f'name="{name}"' in line)
            text = text.replace(old, f'    <numeric name="{name}" data="{pick()}"/>')
    path = directory / "case.xml"
    path.write_text(text)
    rate = None if rng.random() < 0.5 else float(pick())

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
def device_script(rng: np.random.Generator) -> Any:
    """A random :class:`~firmware_bridge.fake_device.Script`: mostly sane, sometimes absurd."""
    from liquidnode.firmware_bridge.fake_device import ACTIONS, Script, Step

    s = Script(period_us=int(rng.choice([2000, 5000, 10000])), watchdog_ms=200)
    absurd = rng.random()
    if absurd < 0.06:
        s.n_obs = int(rng.choice([0, 1, 3, 5, 58, 255]))
    elif absurd < 0.12:
        s.period_us = int(rng.choice([0, 1, 50, 2_000_001, 0xFFFFFFFF]))
    elif absurd < 0.16:
        s.watchdog_ms = int(rng.choice([0, 10_001, 65535]))
    elif absurd < 0.20:
        s.protocol_version = int(rng.choice([0, 2, 255]))
    elif absurd < 0.26:
        s.low, s.high, s.safe = [
            (1.0, -1.0, 0.0), (math.nan, 1.0, 0.0), (-math.inf, math.inf, 0.0), (-1.0, 1.0, 5.0),
            (-3e38, 3e38, 0.0), (0.0, 0.0, 0.0),
        ][int(rng.integers(6))]  # fmt: skip
    elif absurd < 0.30:
        s.hello_reply = rng.integers(0, 256, int(rng.integers(1, 300)), dtype=np.uint8).tobytes()
    for _ in range(int(rng.integers(0, 4))):
        action = str(rng.choice(ACTIONS))
        values = tuple(
            float(rng.choice([math.nan, math.inf, -math.inf, 3.4e38, -1e30, 0.0]))
            for _ in range(s.n_obs)
        )
        s.steps.append(
            Step(int(rng.integers(0, 30)), action, n=int(rng.integers(1, 400)),
                 seconds=float(rng.uniform(0.0, 0.4)), value=int(rng.choice([0, 2, 7, 255])),
                 values=values)
        )  # fmt: skip
    return s


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
