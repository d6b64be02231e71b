"""Every way out of ``deploy`` leaves the device safe, the log complete and the summary printed.

``deploy`` runs as a subprocess against the virtual robot served from this process on a pty;
the robot keeps the frames it received, so the tests see what the host sent last.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from liquidnode.controller.logs.episode import read_log
from liquidnode.firmware_bridge.protocol import Command, Estop

from .conftest import start_twin, stop_twin
from .test_firmware_avr import avr_build  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "policies" / "InvertedPendulum-v5-cfc.safetensors"
CLI = [sys.executable, "-m", "liquidnode"]

pytestmark = pytest.mark.slow


def _deploy(port: str, log: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *CLI,
            "deploy",
            "--port",
            port,
            "--policy",
            str(POLICY),
            "--log",
            str(log),
            "--json",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _wait_armed(robot, proc, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while robot.core.armed_count == 0:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "deploy never armed the device"
        time.sleep(0.02)


def _last_two(robot):
    deadline = time.monotonic() + 2.0  # the last bytes may still be in the pty
    while time.monotonic() < deadline:
        frames = list(robot.received)
        if frames and isinstance(frames[-1].message, Estop):
            break
        time.sleep(0.01)
    return [f.message for f in list(robot.received)[-2:]]


def _assert_left_safe(robot) -> None:
    cmd, estop = _last_two(robot)
    assert isinstance(cmd, Command) and list(cmd.values) == [0.0], cmd
    assert isinstance(estop, Estop) and estop.source == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_leaves_the_device_safe_the_log_complete_and_prints_the_summary(tmp_path, signum):
    robot = start_twin(watchdog_ms=500)
    log = tmp_path / "run.mcap"
    try:
        proc = _deploy(robot.port, log, "--duration", "60")
        _wait_armed(robot, proc)
        time.sleep(0.5)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=20)
        _assert_left_safe(robot)
    finally:
        stop_twin(robot)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    summary = json.loads(out)
    assert summary["interrupted"] and summary["stop_reason"] == signal.Signals(signum).name
    assert summary["episodes"][0]["ticks"] > 0
    contents = read_log(log)
    assert contents.complete
    ends = [e for e in contents.events if e["kind"] == "run_end"]
    assert [e["detail"]["reason"] for e in ends] == [signal.Signals(signum).name]


def test_link_loss_sends_safe_then_estop_logs_it_and_exits_3(tmp_path):
    robot = start_twin(watchdog_ms=500)
    log = tmp_path / "run.mcap"
    try:
        proc = _deploy(robot.port, log, "--duration", "60", "--obs-timeout-ms", "300")
        _wait_armed(robot, proc)
        time.sleep(0.3)
        robot.stop()  # the device goes silent; the pty stays writable
        out, err = proc.communicate(timeout=20)
        robot._thread.join(timeout=2)
        robot._receive()  # take in what the host wrote after the device stopped serving
        _assert_left_safe(robot)
    finally:
        robot.close()
    assert proc.returncode == 3, err
    assert "lost: no observation within 300 ms" in err and "Traceback" not in err
    summary = json.loads(out)
    assert summary["error"] and summary["stop_reason"] == "LinkError"
    assert [e["kind"] for e in summary["link"]["events"]] == ["link_lost"]
    contents = read_log(log)
    assert contents.complete
    lost = [e for e in contents.events if e["kind"] == "link_lost"]
    assert len(lost) == 1 and lost[0]["detail"]["safe_stop_sent"] is True
    assert contents.events[-1]["kind"] == "run_end"


def test_duration_bounds_reconnecting_to_a_port_that_never_returns(tmp_path):
    robot = start_twin(watchdog_ms=500)
    log = tmp_path / "run.mcap"
    try:
        proc = _deploy(robot.port, log, "--duration", "4", "--reconnect")
        _wait_armed(robot, proc)
        robot.close()  # unplugged for good
        out, err = proc.communicate(timeout=30)  # the old code was still running at 60 s
    finally:
        robot.close()
    assert proc.returncode == 3, err
    assert "duration ended" in err
    assert json.loads(out)["link"]["link_losses"] == 1
    assert read_log(log).complete


def test_sigterm_during_the_handshake_exits_at_once_and_leaves_the_device_disarmed(tmp_path):
    from liquidnode.firmware_bridge.twin import open_pty

    master, slave, port = open_pty()  # a port where nobody answers: deploy waits for HELLO
    try:
        proc = _deploy(port, tmp_path / "run.mcap", "--duration", "60")
        deadline = time.monotonic() + 30
        hello = b""
        while not hello:  # the first HELLO: deploy is inside the handshake
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            with contextlib.suppress(BlockingIOError):
                hello = os.read(master, 64)
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and out == ""
    assert err.strip().splitlines()[-1] == "liquidnode deploy: interrupted (SIGTERM)"


def test_sighup_right_after_the_log_is_created_still_finishes_it(tmp_path, monkeypatch, capsys):
    """Between the log's creation and the first tick a signal is the run's to handle: the log
    ends with run_end and its footer, the device is left disarmed (in-process, so the signal
    comes at exactly that point)."""
    from liquidnode.cli import main

    from ..test_shutdown_cli import _signal_on_open

    robot = start_twin(watchdog_ms=500)
    log = tmp_path / "run.mcap"
    opened = _signal_on_open(monkeypatch, signal.SIGHUP)
    try:
        argv = ["deploy", "--port", robot.port, "--policy", str(POLICY), "--log", str(log)]
        rc = main([*argv, "--duration", "30", "--json"])
        out, err = capsys.readouterr()
        assert robot.core.armed_count == 0  # stopped before the episode began
    finally:
        stop_twin(robot)
    assert len(opened) == 1
    assert rc == 129, err
    contents = read_log(log)
    assert contents.complete and contents.episodes == []
    assert [e["detail"]["reason"] for e in contents.events if e["kind"] == "run_end"] == ["SIGHUP"]
    assert json.loads(out)["stop_reason"] == "SIGHUP"


def test_kill_9_leaves_the_device_to_its_watchdog(tmp_path):
    from liquidnode.firmware_bridge.protocol import DeviceState

    robot = start_twin(watchdog_ms=150)
    log = tmp_path / "run.mcap"
    try:
        proc = _deploy(robot.port, log, "--duration", "60")
        _wait_armed(robot, proc)
        time.sleep(1.0)
        proc.kill()
        proc.communicate(timeout=20)
        killed = time.monotonic()
        while robot.core.state is DeviceState.ARMED and time.monotonic() - killed < 2.0:
            time.sleep(0.005)
        state = robot.core.state
    finally:
        stop_twin(robot)
    assert state is DeviceState.WATCHDOG  # the device made itself safe without the host
    episode = read_log(log).episodes[0]  # the killed run's log reads back up to its last chunk
    assert episode.ticks > 0


@pytest.mark.usefixtures("avr_build")
def test_sigterm_leaves_the_emulated_avr_firmware_in_estop(tmp_path):
    """The same on the C reference firmware in simavr: after SIGTERM the device is in ESTOP
    (the host's ESTOP arrived), not WATCHDOG (which is what silence alone would give)."""
    import serial

    from liquidnode.controller.policy import random_policy
    from liquidnode.firmware_bridge.protocol import ObservationMsg

    from .firmware_session import STATE_ESTOP
    from .test_firmware_avr import start_avr

    policy = tmp_path / "board.safetensors"
    random_policy(4, 2, seed=0).save(policy)
    session = start_avr()
    try:
        session.serial.close()
        log = tmp_path / "run.mcap"
        proc = subprocess.Popen(
            [*CLI, "deploy", "--port", session.port, "--policy", str(policy), "--log", str(log),
             "--duration", "60", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while _ticks_logged(log) < 20:  # the loop is running
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        session.serial = serial.Serial(session.port, 115200, timeout=0.005, exclusive=True)
        _, frame = session.wait_for(
            lambda f: isinstance(f.message, ObservationMsg), 2.0, "OBSERVATION"
        )
        state = frame.message.state
    finally:
        session.close()
    assert proc.returncode == 143, err
    assert json.loads(out)["stop_reason"] == "SIGTERM"
    assert state == STATE_ESTOP
    assert read_log(log).complete


def _ticks_logged(path: Path) -> int:
    from liquidnode.controller.errors import LogFileError

    try:
        return read_log(path).episodes[0].ticks if path.exists() else 0
    except (LogFileError, IndexError):
        return 0


def test_a_full_disk_makes_deploy_exit_4_with_the_error_in_json(tmp_path):
    import resource

    LIMIT = 60_000  # the header and the attached policy (~26 kB) fit, 4 s of ticks do not

    def small_disk():  # writes past LIMIT bytes fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))

    robot = start_twin(watchdog_ms=500, rate_hz=50)
    log = tmp_path / "run.mcap"
    try:
        r = subprocess.run(
            [*CLI, "deploy", "--port", robot.port, "--policy", str(POLICY), "--log", str(log),
             "--duration", "4", "--json"],
            capture_output=True, text=True, cwd=ROOT, timeout=60, preexec_fn=small_disk,
        )  # fmt: skip
        _assert_left_safe(robot)
    finally:
        stop_twin(robot)
    assert r.returncode == 4, r.stderr  # log incomplete; the robot was still driven and stopped
    out = json.loads(r.stdout)
    assert out["log_errors"] and "failed" in out["error"]
    assert "Traceback" not in r.stderr
