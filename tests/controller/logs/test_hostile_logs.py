"""Crafted logs: each gets one LogFileError naming the message, never KeyError/TypeError."""

from __future__ import annotations

import json
import os

import pytest
from mcap.writer import Writer

from liquidnode.cli import main
from liquidnode.controller.errors import LogFileError
from liquidnode.controller.logs import schema
from liquidnode.controller.logs.episode import load_episode, read_log
from liquidnode.controller.logs.summary import summarize


def _tick(episode=0, tick=0, **kw):
    body = {
        "episode": episode,
        "tick": tick,
        "t": tick * 0.02,
        "dt": 0.02,
        "obs": [0.0, 0.1],
        "action": [0.5],
        "sent": [0.5],
        "reward": 1.0,
        "lateness_us": 3.0,
        "sections": {"observe_us": 1.0, "policy_us": 2.0, "act_us": 1.0},
    }
    body.update(kw)
    return body  # fmt: skip


def write_log(path, messages, run=None) -> None:
    """An MCAP log in liquidnode's layout holding ``messages`` [(topic, body)] as given."""
    with open(path, "wb") as f:
        w = Writer(f)
        w.start()
        ids = {}
        for topic, body in schema.CHANNELS:
            sid = w.register_schema(body["title"], "jsonschema", schema.to_json_bytes(body))
            ids[topic] = w.register_channel(topic, "json", sid)
        w.add_metadata(schema.LOG_METADATA, {"format_version": "1", "command": "sim"})
        run = {"rate_hz": 50.0, "plant": {"name": "p", "rate_hz": 50.0}} if run is None else run
        w.add_metadata(schema.RUN_METADATA, {k: json.dumps(v) for k, v in run.items()})
        for i, (topic, body) in enumerate(messages):
            w.add_message(ids[topic], i, json.dumps(body).encode(), i, i)
        w.finish()


T, S, E = schema.TICK_TOPIC, schema.STATE_TOPIC, schema.EVENT_TOPIC
GOOD = [(T, _tick(tick=0)), (T, _tick(tick=1))]


def _without(key):
    body = _tick(tick=1)
    body.pop(key)
    return body


CASES = {
    "missing_obs": ([GOOD[0], (T, _without("obs"))], "message 1 .*field 'obs' is missing"),
    "missing_episode": ([(T, _without("episode"))], "message 0 .*field 'episode' is missing"),
    "ragged_obs": ([GOOD[0], (T, _tick(tick=1, obs=[1.0]))], "message 1 .*obs has 1 values"),
    "string_dt": ([(T, _tick(dt="fast"))], "message 0 .*dt must be a number"),
    "string_in_obs": ([(T, _tick(obs=["a", 1]))], "obs must be a list of numbers"),
    "obs_not_list": ([(T, _tick(obs=3))], "obs must be a list of numbers"),
    "float_tick": ([(T, _tick(tick=1.5))], "tick must be an integer >= 0"),
    "huge_tick": ([(T, _tick(tick=2**64))], "tick must be an integer >= 0"),
    "huge_int_obs": ([(T, _tick(obs=[10**400, 0]))], "obs must be a list of numbers"),
    "duplicate_tick": ([*GOOD, (T, _tick(tick=1))], "tick 1 twice \\(messages 1 and 2\\)"),
    "ragged_state": (
        [
            (S, {"episode": 0, "tick": 0, "state": [1.0]}),
            (S, {"episode": 0, "tick": 1, "state": [1.0, 2.0]}),
        ],
        "message 1 .*state has 2 values",
    ),
    "event_detail": ([(E, {"kind": "x", "episode": 0, "tick": 0, "detail": []})], "detail"),
    "not_object": ([(T, [1, 2])], "not an object"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_malformed_message_gets_one_line_with_its_index(tmp_path, name):
    messages, message = CASES[name]
    path = tmp_path / f"{name}.mcap"
    write_log(path, messages)
    with pytest.raises(LogFileError, match=message) as exc:
        load_episode(path)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    ("run", "message"),
    [
        ({"plant": "pendulum"}, "plant must be an object"),
        ({"rate_hz": "fast"}, "rate_hz must be a finite number > 0"),
        ({"rate_hz": -5}, "rate_hz must be a finite number > 0"),
        ({"plant": {"rate_hz": 0}}, "plant.rate_hz must be a finite number > 0"),
        ({"plant": {"info": {"env_id": 5}}}, "plant.info.env_id must be a string"),
        ({"plant": {"info": []}}, "plant.info must be an object"),
        ({"seed": "x"}, "seed must be an integer"),
    ],
)
def test_bad_run_metadata_gets_one_line(tmp_path, run, message):
    path = tmp_path / "bad.mcap"
    write_log(path, GOOD, run=run)
    with pytest.raises(LogFileError, match=f"run metadata: {message}"):
        read_log(path)


def test_a_well_formed_crafted_log_reads_and_summarises(tmp_path):
    path = tmp_path / "ok.mcap"
    write_log(path, GOOD)
    assert summarize(path)["ticks"] == 2
    assert load_episode(path).obs.shape == (2, 2)


def test_fifo_and_device_logs_are_refused_without_reading(tmp_path):
    fifo = tmp_path / "fifo.mcap"
    os.mkfifo(fifo)
    with pytest.raises(LogFileError, match=r"not a regular file \(a FIFO\)"):
        read_log(fifo)
    with pytest.raises(LogFileError, match=r"not a regular file \(a device\)"):
        read_log("/dev/zero")


@pytest.mark.parametrize("command", ["logs", "replay"])
def test_cli_prints_one_line_for_a_crafted_log(tmp_path, capsys, command):
    path = tmp_path / "bad.mcap"
    write_log(path, [GOOD[0], (T, _without("obs"))])
    assert main([command, str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "message 1" in err
