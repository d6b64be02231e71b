"""``sim`` takes the one shutdown path on SIGTERM and SIGHUP as on Ctrl-C; exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from liquidnode.controller.logs.episode import read_log
from liquidnode.controller.policy import random_policy
from liquidnode.controller.shutdown import (
    Interrupted,
    TimeBoundExceeded,
    hard_time_bound,
    run_exit_code,
    stop_signals,
)
from liquidnode.sim import PENDULUM_XML


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sim_on_a_signal_prints_the_summary_and_completes_the_log(tmp_path, signum):
    policy = tmp_path / "pendulum.safetensors"
    random_policy(3, 1, seed=0).save(policy)
    log = tmp_path / "run.mcap"
    argv = ["sim", "--env", str(PENDULUM_XML), "--policy", str(policy), "--log", str(log)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "liquidnode", *argv, "--max-ticks", "5000", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = ""
        while not line.startswith("log: "):  # printed when the log opens: the loop is next
            line = proc.stderr.readline()
            assert line or proc.poll() is None, proc.communicate()
        time.sleep(1.0)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    summary = json.loads(out)
    assert summary["interrupted"] and summary["stop_reason"] == name
    contents = read_log(log)
    assert contents.complete
    assert [e["detail"]["reason"] for e in contents.events if e["kind"] == "run_end"] == [name]
    assert 0 < contents.episodes[0].ticks < 5000


def test_sigterm_raises_interrupted_in_the_main_thread_and_a_second_is_ignored(capsys):
    import os

    caught = None
    before = signal.getsignal(signal.SIGTERM)  # another library (ray) may have set one
    with stop_signals():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs between bytecodes
                time.sleep(0.001)
        except Interrupted as exc:
            caught = exc
            os.kill(os.getpid(), signal.SIGTERM)  # during shutdown: ignored, not raised
            time.sleep(0.01)
    assert caught is not None and caught.exit_code == 143 and caught.reason == "SIGTERM"
    assert "while stopping" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before  # restored


def test_a_bare_keyboard_interrupt_after_sigterm_leaves_as_sigterm():
    """Ray's blocking calls turn the handler's exception into a bare KeyboardInterrupt."""
    import os

    def leaving(signum: int | None) -> KeyboardInterrupt | None:
        try:
            with stop_signals():
                try:
                    if signum is not None:
                        os.kill(os.getpid(), signum)
                        for _ in range(1000):
                            time.sleep(0.001)
                except Interrupted:
                    pass
                raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            return exc
        return None

    after_term = leaving(signal.SIGTERM)
    assert isinstance(after_term, Interrupted)
    assert after_term.exit_code == 143 and after_term.reason == "SIGTERM"
    assert type(leaving(None)) is KeyboardInterrupt  # no signal: left as it is


def test_an_error_after_a_stop_signal_leaves_as_that_signal():
    """An import or library call cut short by the signal fails with its own error: the
    signal, which came first, is what the command reports (one line, 128+N)."""
    import os

    with pytest.raises(Interrupted) as info, stop_signals():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):
                time.sleep(0.001)
        except Interrupted:
            raise ImportError("initialization failed") from None
    assert info.value.exit_code == 143 and isinstance(info.value.__cause__, ImportError)
    with pytest.raises(ImportError), stop_signals():  # no signal: the error is the error
        raise ImportError("initialization failed")


def test_an_ignored_signal_stays_ignored():
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, old)


def test_hard_time_bound_interrupts_a_blocked_wait():
    import threading

    with pytest.raises(TimeBoundExceeded) as info, hard_time_bound(0.05):
        threading.Event().wait(30)
    assert info.value.exit_code == 3


def test_exit_codes():
    assert run_exit_code(None) == 0
    assert run_exit_code(None, ["writing log x failed (No space left on device)"]) == 4
    assert run_exit_code(KeyboardInterrupt()) == 130
    assert run_exit_code(Interrupted(signal.SIGHUP)) == 129


def test_a_full_disk_mid_run_is_not_reported_as_success(tmp_path):
    import resource

    policy = tmp_path / "pendulum.safetensors"
    random_policy(3, 1, seed=0).save(policy)
    log = tmp_path / "run.mcap"

    def small_disk():  # writes past 256 kB fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (256_000, 256_000))

    argv = ["sim", "--env", str(PENDULUM_XML), "--policy", str(policy), "--log", str(log)]
    r = subprocess.run(
        [sys.executable, "-m", "liquidnode", *argv, "--fast", "--max-ticks", "4000", "--json"],
        capture_output=True,
        text=True,
        preexec_fn=small_disk,
        timeout=120,
    )
    assert r.returncode == 4, r.stderr  # log incomplete
    out = json.loads(r.stdout)
    assert out["log_errors"] and "failed" in out["error"]
    assert out["episodes"][0]["ticks"] == 4000  # the control loop went on
    assert "Traceback" not in r.stderr


def test_hard_time_bound_gives_an_enclosing_alarm_back_its_time():
    import threading

    previous = signal.signal(signal.SIGALRM, lambda *a: None)
    try:
        signal.setitimer(signal.ITIMER_REAL, 100.0)
        with hard_time_bound(1.0):
            pass
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 90 < left <= 100  # still armed
        with hard_time_bound(1000.0):  # the enclosing alarm fires first: nothing installed
            assert signal.getsignal(signal.SIGALRM) is not None
        with pytest.raises(TimeBoundExceeded), hard_time_bound(0.05):
            threading.Event().wait(5)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _signal_on_open(monkeypatch, signum: int) -> list:
    """Make the commands' ``open_recorder`` send ``signum`` to this process as soon as the log
    file exists, and give the handler every chance to run there; returns the logs opened."""
    import os

    from liquidnode.controller.logs import options

    real = options.open_recorder
    opened = []

    def open_then_signal(*args, **kwargs):
        recorder = real(*args, **kwargs)
        opened.append(recorder)
        os.kill(os.getpid(), signum)
        for _ in range(100):  # the handler runs between these bytecodes, unless held back
            time.sleep(0.001)
        return recorder

    monkeypatch.setattr(options, "open_recorder", open_then_signal)
    return opened


def test_a_signal_right_after_the_log_is_created_still_finishes_it(tmp_path, monkeypatch, capsys):
    """The window between creating the log and the loop's first tick belongs to the shutdown
    path: the log gets its run metadata, a run_end event with the signal and its footer."""
    from liquidnode.cli import main

    policy = tmp_path / "pendulum.safetensors"
    random_policy(3, 1, seed=0).save(policy)
    log = tmp_path / "run.mcap"
    opened = _signal_on_open(monkeypatch, signal.SIGTERM)
    argv = ["sim", "--env", str(PENDULUM_XML), "--policy", str(policy), "--log", str(log)]
    rc = main([*argv, "--fast", "--max-ticks", "50", "--json"])
    out, err = capsys.readouterr()
    assert len(opened) == 1
    assert rc == 143, err
    contents = read_log(log)
    assert contents.complete and contents.episodes == []
    assert [e["detail"]["reason"] for e in contents.events if e["kind"] == "run_end"] == ["SIGTERM"]
    assert contents.metadata["run"]["seed"] is not None  # the run metadata was written too
    summary = json.loads(out)
    assert summary["stop_reason"] == "SIGTERM" and summary["episodes"] == []


def test_deferred_signals_hold_a_signal_until_the_block_ends():
    import os

    from liquidnode.controller.shutdown import deferred_signals

    steps = []
    with pytest.raises(Interrupted) as info, stop_signals():
        with deferred_signals():
            with deferred_signals():  # nested: the outer block raises
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(100):
                    time.sleep(0.001)
                steps.append("inner")
            steps.append("outer")
        steps.append("after")  # never: raised when the outer block ended
    assert steps == ["inner", "outer"] and info.value.reason == "SIGTERM"
    with pytest.raises(TimeBoundExceeded), hard_time_bound(0.01), deferred_signals():
        time.sleep(0.05)  # the alarm fires here, held back
        steps.append("slept")
    assert steps[-1] == "slept"
