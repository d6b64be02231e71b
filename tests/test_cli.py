"""``liquidnode sim`` / ``eval`` end to end on real MuJoCo, help texts, and bad arguments.

Most cases run the real entry point (``liquidnode.cli.main``) in-process with captured
output; help and video run as subprocesses like a user would.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from liquidnode.cli import main
from liquidnode.controller.policy import Policy, random_policy
from liquidnode.policies import default_policy_path
from liquidnode.sim import PENDULUM_XML

DEFAULT = default_policy_path()
DOC_KEYS = {"episodes", "rate_hz", "lateness_us", "overruns", "sections_us", "plant", "faults"}


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        rc = main(list(argv))
    except SystemExit as exc:  # argparse errors and --help
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def policies(tmp_path_factory) -> dict[str, str]:
    """Random policy files matching HalfCheetah-v5 (17 -> 6) and the MJCF pendulum (3 -> 1)."""
    root = tmp_path_factory.mktemp("policies")
    paths = {}
    for name, (obs, act, env) in {
        "cheetah": (17, 6, "HalfCheetah-v5"),
        "pendulum": (3, 1, str(PENDULUM_XML)),
    }.items():
        path = root / f"{name}.safetensors"
        random_policy(obs, act, seed=1, env_id=env).save(path)
        paths[name] = str(path)
    return paths


def test_help_lists_sim_and_eval_and_every_option():
    run = [sys.executable, "-m", "liquidnode"]
    top = subprocess.run([*run, "--help"], capture_output=True, text=True, timeout=60)
    assert top.returncode == 0 and "sim" in top.stdout and "eval" in top.stdout
    sim = subprocess.run([*run, "sim", "--help"], capture_output=True, text=True, timeout=60)
    for opt in (
        "--env",
        "--policy",
        "--episodes",
        "--seed",
        "--rate",
        "--realtime",
        "--fast",
        "--max-ticks",
        "--video",
        "--json",
        "--no-log",
    ):
        assert opt in sim.stdout, opt
    ev = subprocess.run([*run, "eval", "--help"], capture_output=True, text=True, timeout=60)
    for opt in ("--env", "--policy", "--episodes", "--seed", "--json"):
        assert opt in ev.stdout, opt


def test_sim_fast_json_inverted_pendulum_with_the_default_policy(capsys):
    rc, out, err = cli(capsys, "sim", "--fast", "--episodes", "3", "--json", "--no-log")
    assert rc == 0, err
    result = json.loads(out)  # one object on stdout, nothing else
    assert set(result) >= DOC_KEYS
    assert result["env"] == "InvertedPendulum-v5" and result["mode"] == "fast"
    assert result["log"] is None  # --no-log
    assert len(result["episodes"]) == 3
    assert all({"return", "ticks"} <= set(e) for e in result["episodes"])
    assert set(result["lateness_us"]) == {"p50", "p99", "max"}
    assert set(result["sections_us"]) == {"observe", "policy", "act"}


@pytest.mark.parametrize("which", ["cheetah", "pendulum"])
def test_sim_fast_json_halfcheetah_and_mjcf(capsys, policies, which):
    rc, out, err = cli(
        capsys,
        "sim",
        "--policy",
        policies[which],
        "--fast",
        "--episodes",
        "3",
        "--max-ticks",
        "50",
        "--seed",
        "2",
        "--json",
        "--no-log",
    )
    assert rc == 0, err
    result = json.loads(out)
    assert [e["ticks"] for e in result["episodes"]] == [50, 50, 50]
    assert [e["seed"] for e in result["episodes"]] == [2, 3, 4]


@pytest.mark.parametrize("which", ["default", "cheetah", "pendulum"])
def test_eval_is_deterministic_and_reports_mean_and_std(capsys, policies, which):
    args = ["eval", "--episodes", "3", "--json"]
    if which != "default":
        args += ["--policy", policies[which], "--max-ticks", "100"]
    rc, out, err = cli(capsys, *args)
    assert rc == 0, err
    first = json.loads(out)
    assert {"mean_return", "std_return", "returns"} <= set(first)
    assert len(first["returns"]) == 3
    assert first["mean_return"] == pytest.approx(np.mean(first["returns"]))
    assert first["std_return"] == pytest.approx(np.std(first["returns"]))
    _, out2, _ = cli(capsys, *args)
    assert json.loads(out2)["returns"] == first["returns"]


def test_eval_table_output(capsys, policies):
    rc, out, _ = cli(capsys, "eval", "--policy", policies["pendulum"], "--episodes", "2")
    assert rc == 0
    assert "mean return" in out and "episode   1" in out


def test_sim_without_arguments_runs_default_policy_in_real_time(capsys, tmp_path, monkeypatch):
    from liquidnode.policies import default_policy_path

    monkeypatch.chdir(tmp_path)
    # Same defaults as no arguments, bounded to a few ticks so the test stays short.
    rc, out, err = cli(capsys, "sim", "--max-ticks", "5")
    assert rc == 0, err
    assert "mode realtime" in out and "late p99" in out and "overruns" in out
    assert "InvertedPendulum-v5" in err
    untrained = "UNTRAINED" in err
    assert untrained == (not Policy.load(default_policy_path()).is_trained)
    logs = list(tmp_path.glob("runs/*/sim.mcap"))  # sim logs by default
    assert len(logs) == 1

    from liquidnode.controller.logs import load_episode

    episode = load_episode(logs[0])
    assert episode.ticks == json_ticks(out)
    run = episode.metadata["run"]  # what the loop handed to recorder.start
    assert (
        run["policy_sha256"] == hashlib.sha256(Path(default_policy_path()).read_bytes()).hexdigest()
    )
    assert run["mode"] == "realtime" and run["plant"]["name"] == "InvertedPendulum-v5"


def json_ticks(table: str) -> int:
    row = table.splitlines()[1].split()
    return int(row[2])


def test_sim_video_writes_a_gif(tmp_path):
    out = tmp_path / "run.gif"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "liquidnode",
            "sim",
            "--env",
            str(PENDULUM_XML),
            "--policy",
            str(_pendulum_policy(tmp_path)),
            "--fast",
            "--max-ticks",
            "10",
            "--video",
            str(out),
            "--no-log",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "MUJOCO_GL"},
    )
    if proc.returncode != 0 and "cannot render video" in proc.stderr:
        if os.environ.get("LIQUIDNODE_REQUIRE_ALL") == "1":
            pytest.fail(proc.stderr)
        pytest.skip("no offscreen OpenGL (install libegl1 or libosmesa6)")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["video"] == str(out)
    import imageio.v3 as iio

    assert iio.imread(out).shape[0] >= 5


def _pendulum_policy(tmp_path: Path) -> Path:
    path = tmp_path / "pendulum.safetensors"
    random_policy(3, 1, seed=0).save(path)
    return path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sim", "--episodes", "0"], "expected a whole number >= 1"),
        (["sim", "--rate", "-5"], "expected a finite number > 0"),
        (["sim", "--realtime", "--fast"], "not allowed with argument"),
        (["sim", "--env", "NoSuchEnv-v5", "--fast", "--policy", DEFAULT], "unknown environment id"),
        (
            ["sim", "--env", "HalfCheetah-v5", "--fast", "--policy", DEFAULT],
            r"expects observ\S+ \(4,",
        ),
        (["sim", "--rate", "30", "--fast"], r"not a whole multiple of the physics step 0.02 s"),
        (["sim", "--policy", "missing.safetensors"], "missing.safetensors"),
        (["sim", "--video", "out.avi"], "unsupported format '.avi'"),
        (["eval", "--env", "CartPole-v1", "--policy", DEFAULT], "not a MuJoCo environment"),
        (["eval", "--seed", "x"], "expected a whole number >= 0"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    rc, _, err = cli(capsys, *argv, "--no-log") if argv[0] == "sim" else cli(capsys, *argv)
    assert rc == 2
    assert "Traceback" not in err
    first = [line for line in err.splitlines() if "error" in line]
    assert len(first) == 1
    import re

    assert re.search(message, first[0]), err
    assert not list(tmp_path.glob("runs/*/*.mcap"))  # no log left behind by a failed start


def _logged_ticks(path: Path) -> int:
    """Ticks a reader finds in a log that is still being written (0 before its first chunk)."""
    from liquidnode.controller.errors import LogFileError
    from liquidnode.controller.logs import load_episode

    try:
        return load_episode(path).ticks if path.exists() else 0
    except LogFileError:
        return 0


def test_ctrl_c_still_prints_the_summary(tmp_path):
    import signal
    import time

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "liquidnode",
            "sim",
            "--env",
            str(PENDULUM_XML),
            "--policy",
            str(_pendulum_policy(tmp_path)),
            "--log",
            str(tmp_path / "sim.mcap"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell running us in the background (CI under `cmd &`) ignores SIGINT, and the
        # child would inherit that: give it the default disposition, as a terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # 500 ticks at 50 Hz in real time: 10 s unless interrupted
    try:
        deadline = time.monotonic() + 60
        line = ""
        while "sim:" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()  # the start line: the loop is about to run
        while _logged_ticks(tmp_path / "sim.mcap") < 10 and time.monotonic() < deadline:
            time.sleep(0.02)  # poll interval: wait until the loop has run 10 ticks
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted by Ctrl-C" in out and "late p99" in out
    assert "Traceback" not in err
    ticks = json_ticks(out)
    assert 10 <= ticks < 500


def test_env_without_policy_picks_that_envs_shipped_policy(capsys):
    rc, out, err = cli(
        capsys, "eval", "--env", "HalfCheetah-v5", "--episodes", "1", "--max-ticks", "5", "--json"
    )
    assert rc == 0, err
    assert json.loads(out)["policy"].endswith("HalfCheetah-v5-cfc.safetensors")
    rc, _, err = cli(capsys, "sim", "--env", str(PENDULUM_XML), "--fast", "--no-log")
    assert rc == 2
    assert "no shipped policy for environment" in err and "--policy" in err
    assert "InvertedPendulum-v5-cfc.safetensors" in err  # lists what is shipped
