"""A signal to ``train`` (main process alone, or its whole process group) stops the worker
processes, saves a checkpoint and exits with 128 + the signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from liquidnode.controller.train import checkpoint as ckpt
from liquidnode.controller.train.config import TrainConfig
from liquidnode.controller.train.envs import env_info

pytestmark = pytest.mark.slow


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "zombie" not in f.read()
    except OSError:
        return False


@pytest.mark.parametrize(
    ("signum", "group"), [(signal.SIGINT, False), (signal.SIGTERM, True), (signal.SIGINT, True)]
)
def test_a_signal_stops_workers_saves_a_checkpoint_and_exits(tmp_path, signum, group):
    run = tmp_path / "run"
    argv = ["train", "--env", "InvertedPendulum-v5", "--units", "4", "--steps", "10000000",
            "--envs", "2", "--rollout-steps", "64", "--eval-interval", "0", "--run-dir", str(run),
            "--no-progress", "--no-tensorboard"]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "liquidnode", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell job
    )
    try:
        line = proc.stderr.readline()
        assert line.startswith("train:"), (line, proc.communicate())
        deadline = time.monotonic() + 120
        while len(_children(proc.pid)) < 2:  # both workers are up
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        workers = _children(proc.pid)
        time.sleep(2.0)  # training steps are under way
        if group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)  # the old code deadlocked here
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    assert "checkpoint" in err and "--resume" in err
    for pid in workers:
        assert not _alive(pid)
    state = ckpt.load(
        run / "checkpoints" / "latest.pt", env_info("InvertedPendulum-v5"), TrainConfig(units=4)
    )
    assert state["global_step"] > 0
