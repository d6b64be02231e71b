"""Crafted inputs for the fuzz campaign (:mod:`.fuzz_campaign`): valid policy files, logs,
MJCF models and device scripts, and the random mutations that make them hostile.

- JSON: :func:`mutate_json_at` replaces, deletes or adds one node of a JSON value (the
  campaign draws the node and a value from :func:`hostile_values`; the property tests draw
  them with hypothesis).
- policy files: :func:`mutate_policy` mutates the metadata JSON, the tensor header, flips
  bytes, truncates, or writes a wrong header length.
- logs: :func:`write_mutated_log` writes a small valid log (:func:`valid_log_messages`,
  :func:`write_log`) with fields replaced, deleted or added, duplicate messages, ragged
  vectors, run or log metadata mutated, zstd chunks, flipped bytes or a truncation.
- MJCF: :func:`write_mutated_mjcf` sets the pendulum's timestep and liquidnode numerics, and
  picks a rate, from a pool of hostile numbers.
- devices: :func:`device_script` draws a :class:`~firmware_bridge.fake_device.Script`,
  mostly sane, sometimes absurd (sizes, periods, watchdogs, versions, limits, garbage for a
  handshake), with up to three mid-run misbehaviours.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


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


def flip_bytes(data: bytes, rng: np.random.Generator, n: int) -> bytes:
    buf = bytearray(data)
    for _ in range(n):
        i = int(rng.integers(len(buf))) if buf else 0
        if buf:
            buf[i] = int(rng.integers(256))
    return bytes(buf)


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
        return flip_bytes(data, rng, int(rng.integers(1, 8)))
    elif op == 6:
        return data[: int(rng.integers(len(data)))]
    else:
        return struct.pack("<Q", int(rng.integers(0, 2**63))) + data[8:]
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


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


def write_mutated_log(path: Path, rng: np.random.Generator) -> None:
    """Write a valid log with one random mutation to ``path`` (see the module docstring)."""
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
            data = flip_bytes(data, rng, int(rng.integers(1, 16)))
        else:
            data = data[: int(rng.integers(len(data)))]
        path.write_bytes(data)


_NUMBERS = ["0", "-1", "1", "2.5", "10", "1e-9", "1e12", "1e300", "nan", "inf", "-inf", "0.002",
            "0.01", "7", "100000", "100001"]  # fmt: skip


def write_mutated_mjcf(path: Path, rng: np.random.Generator) -> float | None:
    """Write the pendulum MJCF with hostile numerics to ``path``; return a control rate to
    ask for (None: the model's own), also possibly hostile."""
    from liquidnode.sim import PENDULUM_XML

    text = PENDULUM_XML.read_text()
    pick = lambda: _NUMBERS[int(rng.integers(len(_NUMBERS)))]  # noqa: E731
    if rng.random() < 0.6:
        text = text.replace('timestep="0.002"', f'timestep="{pick()}"')
    for name in ("liquidnode_frame_skip", "liquidnode_max_ticks", "liquidnode_reset_noise"):
        if rng.random() < 0.5:
            old = next(line for line in text.splitlines() if f'name="{name}"' in line)
            text = text.replace(old, f'    <numeric name="{name}" data="{pick()}"/>')
    path.write_text(text)
    rate = None if rng.random() < 0.5 else float(pick())
    return rate


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
