"""--log / --no-log / --no-state and the checks open_recorder makes before a run."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pytest

from liquidnode.controller.errors import LogFileError
from liquidnode.controller.logs.options import add_log_arguments, default_log_path, open_recorder
from liquidnode.controller.logs.recorder import McapRecorder


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_log_arguments(parser)
    parser.add_argument("--policy", default=None)
    return parser.parse_args(argv)


def test_no_log_gives_none() -> None:
    assert open_recorder(_args(["--no-log"]), "sim") is None


def test_log_and_no_log_exclude_each_other() -> None:
    with pytest.raises(SystemExit):
        _args(["--log", "x.mcap", "--no-log"])


def test_default_path_is_timestamped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    first = default_log_path("sim", when)
    assert first == Path("runs/20260102T030405Z/sim.mcap")
    first.parent.mkdir(parents=True)
    first.write_bytes(b"")
    assert default_log_path("sim", when) == Path("runs/20260102T030405Z-2/sim.mcap")
    rec = open_recorder(_args([]), "deploy", {"env": "X"})
    assert rec is not None
    rec.close()
    (path,) = list((tmp_path / "runs").glob("*/deploy.mcap"))
    assert path.read_bytes()[:8] == b"\x89MCAP0\r\n"


def test_explicit_path_policy_and_no_state(tmp_path: Path) -> None:
    policy = tmp_path / "p.safetensors"
    policy.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    log = tmp_path / "deep" / "dir" / "run.mcap"
    rec = open_recorder(
        _args(["--log", str(log), "--no-state", "--policy", str(policy)]), "deploy", {"port": "p"}
    )
    assert isinstance(rec, McapRecorder) and not rec.store_state
    rec.start({"seed": 1})
    rec.close()
    from liquidnode.controller.logs import read_log

    contents = read_log(log)
    assert contents.policy_bytes == policy.read_bytes()
    run = contents.metadata["run"]
    assert run["port"] == "p" and run["command"] == "deploy" and run["seed"] == 1
    assert run["policy_path"] == str(policy)


def test_unwritable_path_fails_before_the_run(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LogFileError, match="cannot write log"):
        open_recorder(_args(["--log", str(blocker / "sub" / "run.mcap")]), "sim")
    with pytest.raises(LogFileError, match="cannot write log"):
        open_recorder(_args(["--log", str(tmp_path)]), "sim")  # a directory


def test_full_disk_fails_before_the_run(tmp_path: Path) -> None:
    with pytest.raises(LogFileError, match="MB free"):
        McapRecorder(tmp_path / "x.mcap", min_free_bytes=1 << 62)


def test_dev_full_fails_before_the_run() -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    with pytest.raises(LogFileError, match="cannot write log"):
        McapRecorder("/dev/full", min_free_bytes=0)
