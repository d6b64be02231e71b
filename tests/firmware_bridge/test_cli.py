"""End to end: ``liquidnode twin`` + ``liquidnode deploy`` as separate processes over a pty."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from liquidnode.controller.policy import Policy

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "policies" / "InvertedPendulum-v5-cfc.safetensors"
CLI = [sys.executable, "-m", "liquidnode"]

pytestmark = pytest.mark.slow


class Twin:
    """``liquidnode twin`` in a subprocess; ``port`` is the first stdout line's path."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "twin", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        line = self.proc.stdout.readline()
        assert line.startswith("port: /dev/pts/"), (line, self.proc.stderr.read())
        self.port = line.split(" ", 1)[1].strip()

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        _, err = self.proc.communicate(timeout=10)
        return err


def deploy(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "deploy", "--no-log", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_twin_and_deploy_balance_the_pendulum_with_the_shipped_policy():
    # a generous watchdog: a CI machine may stall the host for more than 3 periods
    twin = Twin("--env", "InvertedPendulum-v5", "--watchdog-ms", "300")
    try:
        r = deploy("--port", twin.port, "--policy", str(POLICY), "--duration", "3", "--json")
    finally:
        twin_err = twin.stop()
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for key in ("episodes", "rate_hz", "lateness_us", "overruns", "sections_us", "plant", "faults"):
        assert key in out
    link = out["link"]
    assert set(link["rtt_us"]) >= {"p50", "p99"} and link["rtt_us"]["p50"] > 0
    assert {"crc_errors", "dropped", "reconnects"} <= set(link)
    assert link["crc_errors"] == 0 and link["reconnects"] == 0 and out["error"] is None
    policy = Policy.load(POLICY)
    assert out["nominal_rate_hz"] == pytest.approx(policy.metadata.control_rate_hz)
    assert "twin: " in twin_err and "Traceback" not in twin_err
    if not (policy.metadata.provenance or {}).get("trained"):
        pytest.skip("the shipped policy is the untrained placeholder: balancing not asserted")
    ep = out["episodes"][0]
    assert not ep["terminated"], out  # the pole stayed up for the whole run
    assert ep["ticks"] >= 0.8 * 3 * policy.metadata.control_rate_hz
    assert out["faults"] == 0


def test_deploy_refuses_a_policy_that_does_not_match_the_device():
    twin = Twin("--env", str(ROOT / "sim" / "models" / "pendulum.xml"))
    try:
        r = deploy("--port", twin.port, "--policy", str(POLICY), "--duration", "1")
    finally:
        twin.stop()
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert "policy has 4 observations and 1 actions" in lines[0]
    assert "has 3 observations" in lines[0]


def test_deploy_exits_with_a_clear_message_when_the_device_vanishes():
    # the twin serves 5 s: deploy (a fresh interpreter) must be connected before it vanishes
    twin = Twin("--env", "InvertedPendulum-v5", "--duration", "5")
    r = deploy("--port", twin.port, "--policy", str(POLICY), "--duration", "20", "--json")
    twin.stop()
    assert r.returncode == 3  # run fault: link lost and not restored
    assert "Traceback" not in r.stderr
    assert "liquidnode deploy: error: link to" in r.stderr and "lost" in r.stderr
    out = json.loads(r.stdout)  # the partial summary is still printed
    assert out["error"] and out["link"]["reconnects"] == 0


def _logged_ticks(path: Path) -> int:
    """Ticks a reader finds in a log that is still being written (0 before its first chunk)."""
    from liquidnode.controller.errors import LogFileError
    from liquidnode.controller.logs import load_episode

    try:
        return load_episode(path).ticks if path.exists() else 0
    except LogFileError:
        return 0


def test_deploy_reconnects_when_the_device_comes_back(tmp_path):
    link = str(tmp_path / "robot")
    first = Twin("--env", "InvertedPendulum-v5", "--link", link)
    # --duration also bounds reconnecting: long enough for a second twin to start on a busy CI
    # (10 s was not, once, with two trainings running beside the suite on 2 cores)
    args = ["--port", link, "--policy", str(POLICY), "--duration", "20", "--reconnect", "--json"]
    log = tmp_path / "deploy.mcap"
    proc = subprocess.Popen(
        [*CLI, "deploy", "--log", str(log), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    second = None
    try:
        deadline = time.monotonic() + 60
        while _logged_ticks(log) < 10 and time.monotonic() < deadline:  # the loop is running
            time.sleep(0.02)  # poll interval
        first.stop()  # unplugged
        time.sleep(0.5)  # the cable stays out for 0.5 s: the outage under test
        second = Twin("--env", "InvertedPendulum-v5", "--link", link)  # plugged back in
        out_s, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        if second is not None:
            second.stop()
    assert proc.returncode == 0, err
    out = json.loads(out_s)
    assert out["link"]["reconnects"] == 1 and out["link"]["link_losses"] == 1
    assert "Traceback" not in err
    assert not os.path.exists(link)  # the twin removed its symlink on exit


def test_twin_rejects_a_bad_watchdog_in_one_line():
    r = subprocess.run(
        [*CLI, "twin", "--env", "InvertedPendulum-v5", "--watchdog-ms", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and r.stdout == ""
    assert (
        r.stderr.strip() == "liquidnode twin: error: --watchdog-ms must be within 1..65535, got 0"
    )


def test_deploy_duration_spans_episodes_and_returns_are_not_measured(tmp_path):
    from liquidnode.controller.policy import random_policy

    untrained = tmp_path / "untrained.safetensors"
    random_policy(4, 1, seed=0, env_id="InvertedPendulum-v5").save(untrained)
    twin = Twin("--env", "InvertedPendulum-v5", "--watchdog-ms", "300")
    try:  # an untrained policy drops the pole within a second: several episodes in 4 s
        r = deploy("--port", twin.port, "--policy", str(untrained), "--duration", "4", "--json")
        text = deploy("--port", twin.port, "--policy", str(untrained), "--duration", "1")
    finally:
        twin.stop()
    assert r.returncode == 0, r.stderr
    assert "UNTRAINED" in r.stderr
    out = json.loads(r.stdout)
    episodes = out["episodes"]
    assert len(episodes) >= 2, out
    assert all(e["terminated"] for e in episodes[:-1])  # the device ended them, deploy re-armed
    assert all(e["return"] is None for e in episodes)
    assert out["returns_unmeasured"] == "reward not sent over serial"
    assert text.returncode == 0, text.stderr
    assert "return n/a (reward not sent over serial)" in text.stdout


def test_deploy_of_a_policy_told_its_latency_needs_the_measured_one(tmp_path):
    """A serial robot does not know its actuation latency: a policy with a latency input is
    refused in one line without ``--latency-ms`` and told it (in control periods, logged in
    every episode's start) with it."""
    from liquidnode.controller.latency_input import LatencyInput
    from liquidnode.controller.logs import load_episodes
    from liquidnode.controller.policy import random_policy

    told = tmp_path / "told.safetensors"
    random_policy(
        4,
        1,
        seed=0,
        env_id="InvertedPendulum-v5",
        latency_input=LatencyInput().as_metadata(),
        control_rate_hz=25.0,
        time_scale=25.0,
    ).save(told)
    log = tmp_path / "told.mcap"
    twin = Twin("--env", "InvertedPendulum-v5", "--watchdog-ms", "300")
    try:
        refused = deploy("--port", twin.port, "--policy", str(told), "--duration", "1")
        argv = ["--log", str(log), "--port", twin.port, "--policy", str(told), "--duration", "1"]
        r = subprocess.run(
            [*CLI, "deploy", *argv, "--latency-ms", "10"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    finally:
        twin.stop()
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert "does not know it" in lines[-1] and "--latency-ms" in lines[-1], refused.stderr
    assert "Traceback" not in refused.stderr
    assert r.returncode == 0, r.stderr
    episodes = load_episodes(log)
    assert episodes and all(e.latency_ticks == pytest.approx(0.25) for e in episodes)
