"""Round trip through the real recorder and reader; bad logs give clear errors."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from mcap.writer import Writer

from liquidnode.controller.errors import LogFileError
from liquidnode.controller.logs import McapRecorder, load_episode, load_episodes, read_log
from liquidnode.controller.records import Event, TickRecord
from tests.controller.logs.conftest import make_tick, write_log


def test_round_trip_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    written = write_log(path, episodes=2, ticks=40)
    episodes = load_episodes(path)
    assert [e.index for e in episodes] == [0, 1]
    for ep, rows in zip(episodes, written, strict=True):
        assert ep.ticks == 40 and ep.complete
        np.testing.assert_array_equal(ep.tick, np.arange(40))
        # bit-for-bit: JSON floats round-trip float64 exactly, float32 state widened exactly
        assert np.array_equal(ep.obs, np.stack([r.obs for r in rows]))
        assert np.array_equal(ep.action, np.stack([r.action for r in rows]))
        assert np.array_equal(ep.sent, np.stack([r.sent for r in rows]))
        assert np.array_equal(ep.dt, [r.dt_s for r in rows])
        assert np.array_equal(ep.reward, [r.reward for r in rows])
        assert ep.state is not None and ep.state.dtype == np.float32
        assert np.array_equal(ep.state, np.stack([r.state for r in rows]))
        assert np.array_equal(ep.wall_time_ns, [r.wall_time_ns for r in rows])
        assert np.array_equal(ep.lateness_us, [r.lateness_us for r in rows])
        assert np.array_equal(ep.policy_us, np.full(40, 20.0))
        assert ep.t[0] == 0.0 and np.all(np.diff(ep.t) >= 0)
        assert [e["kind"] for e in ep.events] == ["episode_start", "episode_end"]
        assert ep.seed == ep.index and ep.episode_return == 12.5 + ep.index
    meta = episodes[0].metadata
    assert meta["log"]["format_version"] == "1" and meta["log"]["command"] == "test"
    assert meta["run"] == {"seed": 0, "rate_hz": 1000.0, "env_id": "Test-v0"}
    assert load_episode(path, -1).index == 1


def test_non_finite_values_become_nan(tmp_path: Path) -> None:
    path = tmp_path / "nan.mcap"
    rng = np.random.default_rng(1)
    rec = McapRecorder(path)
    rec.start({})
    r = make_tick(0, 0, rng)
    r.action = np.array([np.nan, np.inf])
    r.obs = np.array([1.0, -np.inf, 2.0, 3.0])
    rec.tick(r)
    rec.event(Event("nan_guard", 0, 0, detail={"channels": [0, 1], "value": float("nan")}))
    rec.close()
    ep = load_episode(path)
    assert np.isnan(ep.action).all() and np.isnan(ep.obs[0, 1]) and ep.obs[0, 3] == 3.0
    assert ep.events[0]["detail"] == {"channels": [0, 1], "value": None}


def test_no_state(tmp_path: Path) -> None:
    path = tmp_path / "nostate.mcap"
    write_log(path, episodes=1, ticks=10, store_state=False)
    ep = load_episode(path)
    assert ep.state is None and ep.ticks == 10
    assert ep.metadata["log"]["store_state"] == "false"


def test_policy_is_attached(tmp_path: Path) -> None:
    policy = tmp_path / "p.safetensors"
    policy.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    path = tmp_path / "pol.mcap"
    write_log(path, episodes=1, ticks=3, policy_path=policy)
    log = read_log(path)
    assert log.policy_bytes == policy.read_bytes()
    assert log.metadata["policy"]["size"] == len(policy.read_bytes())
    assert len(log.metadata["policy"]["sha256"]) == 64


def test_recorder_call_only_copies_and_enqueues(tmp_path: Path) -> None:
    """tick() serialises and writes nothing on the caller's thread (the writer thread does),
    and copies the record's arrays, so the caller may reuse its buffers at once. What logging
    costs a 1 kHz loop is measured by bench_overhead.py next to this file, not asserted here."""
    rng = np.random.default_rng(2)
    rows = [make_tick(0, i, rng, state_dim=64) for i in range(2000)]
    expected_obs = np.stack([r.obs for r in rows])
    writer_threads: set[str] = set()
    with McapRecorder(tmp_path / "cheap.mcap") as rec:
        for name in ("add_message", "flush"):
            original = getattr(rec._writer, name)

            def spy(*args, _original=original, **kwargs):
                writer_threads.add(threading.current_thread().name)
                return _original(*args, **kwargs)

            setattr(rec._writer, name, spy)
        rec.start({})
        for r in rows:
            rec.tick(r)
            r.obs[:] = np.nan  # the caller reuses its buffer
        assert threading.current_thread().name not in writer_threads
    assert writer_threads == {"liquidnode-log-cheap.mcap"}
    ep = load_episode(tmp_path / "cheap.mcap")
    assert ep.ticks == 2000
    np.testing.assert_array_equal(ep.obs, expected_obs)


def test_truncation_at_any_point_reads_a_prefix(tmp_path: Path) -> None:
    path = tmp_path / "full.mcap"
    write_log(path, episodes=1, ticks=200, pace_s=5e-4, flush_interval_s=1e-3, poll_s=1e-4)
    data = path.read_bytes()
    full = load_episode(path)
    cut_path = tmp_path / "cut.mcap"
    seen = set()
    for cut in range(200, len(data), max(1, len(data) // 97)):
        cut_path.write_bytes(data[:cut])
        try:
            eps = load_episodes(cut_path)
        except LogFileError as exc:
            assert "truncated before its metadata" in str(exc)
            continue
        n = eps[0].ticks if eps else 0
        assert not (eps and eps[0].complete)
        if n:
            np.testing.assert_array_equal(eps[0].obs, full.obs[:n])
        seen.add(n)
    assert len(seen) > 5  # the cuts fell at many different places


def test_not_mcap(tmp_path: Path) -> None:
    bad = tmp_path / "notes.mcap"
    bad.write_text("hello world, not a log")
    with pytest.raises(LogFileError, match="not an MCAP log"):
        load_episode(bad)
    tiny = tmp_path / "tiny.mcap"  # shorter than the 8-byte magic: still named for what it is
    tiny.write_text("hi\n")
    with pytest.raises(LogFileError, match=r"not an MCAP log \(it starts with b'hi\\n'"):
        load_episode(tiny)
    empty = tmp_path / "empty.mcap"
    empty.write_bytes(b"")
    with pytest.raises(LogFileError, match="empty"):
        load_episode(empty)
    with pytest.raises(LogFileError, match="cannot open"):
        load_episode(tmp_path / "missing.mcap")


def test_mcap_from_another_tool_or_version(tmp_path: Path) -> None:
    other = tmp_path / "other.mcap"
    with open(other, "wb") as f:
        w = Writer(f)
        w.start()
        w.finish()
    with pytest.raises(LogFileError, match="not a liquidnode log"):
        load_episode(other)
    future = tmp_path / "future.mcap"
    with open(future, "wb") as f:
        w = Writer(f)
        w.start()
        w.add_metadata("liquidnode.log", {"format_version": "99", "liquidnode_version": "9.0"})
        w.finish()
    with pytest.raises(LogFileError, match="format version '99'"):
        load_episode(future)


def test_corrupt_middle(tmp_path: Path) -> None:
    path = tmp_path / "c.mcap"
    write_log(path, episodes=1, ticks=200, pace_s=5e-4, flush_interval_s=1e-3, poll_s=1e-4)
    data = bytearray(path.read_bytes())
    mid = data.index(b'"obs":', len(data) // 2)  # inside a chunk, which has a CRC
    data[mid : mid + 6] = b"\xff" * 6
    path.write_bytes(bytes(data))
    with pytest.raises(LogFileError, match="corrupt"):
        load_episode(path)


def test_episode_index_out_of_range(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    write_log(path, episodes=1, ticks=2)
    with pytest.raises(LogFileError, match="has 1 episode"):
        load_episode(path, 3)


def test_state_dtype_survives_tick_record_contract(tmp_path: Path) -> None:
    rec = McapRecorder(tmp_path / "s.mcap")
    rec.start({})
    state = np.array([1e-45, 3.4028235e38, -0.0, 0.1], np.float32)
    rec.tick(
        TickRecord(
            0, 0, 1, 1, 0.01, np.zeros(1), np.zeros(1), np.zeros(1), 0.0, state, 0.0, 0.0, 0.0, 0.0
        )
    )
    rec.close()
    assert load_episode(tmp_path / "s.mcap").state.tobytes() == state.tobytes()


def test_standard_mcap_tools_read_it(tmp_path: Path) -> None:
    """The indexed (seeking) reader that viewers use sees schemas, channels and every tick."""
    from mcap.reader import make_reader

    path = tmp_path / "std.mcap"
    write_log(path, episodes=1, ticks=30)
    with open(path, "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        assert summary is not None and summary.statistics.message_count == 30 * 2 + 2
        assert {s.encoding for s in summary.schemas.values()} == {"jsonschema"}
        assert {c.message_encoding for c in summary.channels.values()} == {"json"}
        ticks = list(reader.iter_messages(topics=["/liquidnode/tick"]))
    assert len(ticks) == 30
    assert all(m.log_time > 1_600_000_000 * 10**9 for _, _, m in ticks)  # Unix-epoch ns


def test_a_malformed_record_is_skipped_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "bad_record.mcap"
    rng = np.random.default_rng(3)
    rec = McapRecorder(path)
    rec.start({})
    for i in range(5):
        r = make_tick(0, i, rng)
        if i == 2:
            r.obs = np.array(["not", "a", "number", "!"])
        rec.tick(r)
    rec.close()
    assert rec.skipped_items == 1 and "skipped it" in rec.errors[0]
    log = read_log(path)
    np.testing.assert_array_equal(log.episodes[0].tick, [0, 1, 3, 4])
    assert log.events[-1]["kind"] == "log_error"
