"""``liquidnode sweep``: a two-trial sweep of tiny trainings on a real two-node Ray cluster,
resumed; and the sweep file's checks (no Ray needed for those)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from liquidnode.cli import main
from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.policy import Policy

pytest.importorskip("torch", reason="sweep trains policies: needs the [train] extra")

#: Two trainings of 512 steps each: seconds, not minutes.
TINY = """
name = "tiny"
[train]
env = "InvertedPendulum-v5"
units = 8
steps = 512
envs = 1
rollout_steps = 256
minibatches = 4
epochs = 2
eval_interval = 0
final_eval_episodes = 2
[grid]
seed = [0, 1]
[random]
lr = {loguniform = [1e-4, 1e-3]}
"""


@pytest.mark.cluster
def test_a_tiny_sweep_runs_its_trials_as_train_runs_and_resumes(ray_cluster, tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    argv = ["sweep", str(config), "--address", ray_cluster, "--dir", str(tmp_path / "sweep")]
    capsys.readouterr()
    assert main([*argv, "--max-concurrent", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    trials = result["trials"]
    assert sorted(t["seed"] for t in trials) == [0, 1]
    assert {t["status"] for t in trials} == {"ok"}
    for t in trials:
        policy = Policy.load(t["policy"])
        assert policy.is_trained
        assert policy.metadata.provenance["seed"] == t["seed"]
        assert policy.metadata.provenance["config"]["lr"] == pytest.approx(t["config"]["lr"])
        run = Path(t["policy"]).parent
        assert (run / "checkpoints" / "latest.pt").is_file()
        assert list((run / "tb").glob("events.out.tfevents.*"))
    assert len({t["config"]["lr"] for t in trials}) == 2  # each trial drew its own lr
    best = max(trials, key=lambda t: t["final_return"])
    assert result["best"] == best

    mtimes = {t["policy"]: Path(t["policy"]).stat().st_mtime_ns for t in trials}
    assert main([*argv, "--json"]) == 0  # again: the finished sweep is restored, not rerun
    again = json.loads(capsys.readouterr().out)
    assert sorted(again["trials"], key=lambda t: t["seed"]) == sorted(
        trials, key=lambda t: t["seed"]
    )
    assert {p: Path(p).stat().st_mtime_ns for p in mtimes} == mtimes


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[train]\nunits = 8\nbogus = 1\n", "train.bogus: not a train option"),
        ("[train]\nout = 'x.safetensors'\n", "train.out: not a train option (the sweep sets it"),
        ("[grid]\nseed = 3\n", "grid.seed: expected a non-empty list"),
        ("[random]\nlr = {normal = [0, 1]}\n", "random.lr: expected one of"),
        ("[random]\nlr = {uniform = [0.1]}\n", "random.lr: uniform takes 2 values"),
        ("[grid]\ncell = ['cfc', 'transformer']\n", "unknown cell 'transformer'"),
        ("[train]\nseed = 1\n[grid]\nseed = [1, 2]\n", "seed: set in more than one table"),
        ("[search]\nsamples = 0\n", "search.samples: expected a whole number >= 1"),
        ("[train\n", "invalid TOML"),
    ],
)
def test_a_bad_sweep_file_is_one_error_naming_the_field(tmp_path, text, message):
    from liquidnode.cluster.sweep import load_sweep

    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(LiquidNodeError, match=r"^sweep .*bad\.toml: ") as info:
        load_sweep(path)
    assert message in str(info.value)


def test_the_robustness_sweep_in_the_repo_is_valid():
    from liquidnode.cluster.sweep import load_sweep, trial_config

    root = Path(__file__).resolve().parents[2]
    spec = load_sweep(root / "benchmarks" / "robustness_sweep.toml")
    assert spec.trials == 21  # 7 candidates x 3 seeds
    variant = spec.grid["variant"][0]
    cfg = trial_config(spec, {"variant": variant, "seed": 1}, Path("/tmp/s"), "t0")
    assert (cfg.cell, cfg.units, cfg.seed) == (variant["cell"], variant["units"], 1)
    assert cfg.randomize == "InvertedPendulum-v5"
    assert cfg.run_dir == "/tmp/s/runs/t0"


@pytest.mark.cluster
def test_a_sweep_interrupted_with_ctrl_c_resumes_where_it_stopped(ray_cluster, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    config = tmp_path / "tiny.toml"
    config.write_text(TINY.replace("steps = 512", "steps = 4096"))
    out = tmp_path / "sweep"
    argv = ["sweep", str(config), "--address", ray_cluster, "--dir", str(out), "--json"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "liquidnode", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C reaches the command even when this test runs with SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 300
        while not list(out.glob("runs/*/tb")) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.5)
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    first_ids = {p.name for p in out.glob("runs/*")}

    resumed = subprocess.run(
        [sys.executable, "-m", "liquidnode", *argv], capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "sweep: resuming" in resumed.stderr
    result = json.loads(resumed.stdout)
    assert {t["status"] for t in result["trials"]} == {"ok"}
    assert {Path(t["policy"]).parent.name for t in result["trials"]} >= first_ids
