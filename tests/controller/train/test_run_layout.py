"""Where ``liquidnode train`` writes (its own run folder, never the shipped policies/) and
what its progress bar shows."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from liquidnode.cli import main
from liquidnode.controller.train.config import (
    TrainConfig,
    new_run_dir,
    run_paths,
    with_run_paths,
)
from liquidnode.policies import default_policy_path

TINY = [
    "--units", "4", "--backbone-units", "8", "--envs", "1", "--rollout-steps", "128",
    "--minibatches", "2", "--epochs", "1", "--final-eval-episodes", "1",
]  # fmt: skip


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


def test_planned_steps_round_up_to_whole_rollouts():
    cfg = TrainConfig(steps=20_000, envs=4, rollout_steps=512)
    assert cfg.planned_steps() == 20_480
    assert cfg.planned_steps(start=18_432) == 20_480
    assert TrainConfig(steps=4096, envs=4, rollout_steps=512).planned_steps() == 4096


def test_run_paths_default_resume_and_explicit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    now = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
    assert new_run_dir(now) == Path("runs/train/20260101T120000Z")
    Path("runs/train/20260101T120000Z").mkdir(parents=True)
    assert new_run_dir(now) == Path("runs/train/20260101T120000Z-2")

    fresh = run_paths(TrainConfig())
    assert fresh.run_dir.parent == Path("runs/train")
    assert fresh.policy == fresh.run_dir / "policy.safetensors"
    assert fresh.checkpoint == fresh.run_dir / "checkpoints" / "latest.pt"
    assert fresh.tensorboard == fresh.run_dir / "tb"

    resumed = run_paths(TrainConfig(resume="runs/train/a/checkpoints/latest.pt"))
    assert resumed.run_dir == Path("runs/train/a")

    explicit = run_paths(TrainConfig(out="p.safetensors", run_dir="elsewhere"))
    assert explicit.policy == Path("p.safetensors")
    assert explicit.checkpoint == Path("elsewhere/checkpoints/latest.pt")

    resolved = with_run_paths(TrainConfig())
    assert run_paths(resolved) == run_paths(resolved)  # resolved once: the same folder again


def test_default_run_writes_its_own_folder_and_nothing_into_policies(tmp_path, monkeypatch, capsys):
    shipped = Path(default_policy_path()).parent
    before = _tree(shipped)
    monkeypatch.chdir(tmp_path)
    rc = main(["train", *TINY, "--steps", "128", "--eval-interval", "0", "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    first = err.splitlines()[0]
    match = re.fullmatch(
        r"train: InvertedPendulum-v5 cfc, seed 0; writing (runs/train/\d{8}T\d{6}Z)/ "
        r"\(checkpoints/, tb/, policy.safetensors\)",
        first,
    )
    assert match, first
    run = tmp_path / match.group(1)
    assert (run / "policy.safetensors").is_file()
    assert (run / "checkpoints" / "latest.pt").is_file()
    assert any((run / "tb").glob("events.out.tfevents.*"))
    assert f"wrote {match.group(1)}/policy.safetensors" in out
    assert _tree(shipped) == before


def test_out_file_gets_only_the_policy_and_the_run_folder_the_rest(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out_file = tmp_path / "mine" / "p.safetensors"
    argv = [*TINY, "--steps", "128", "--eval-interval", "0", "--no-progress", "--no-tensorboard"]
    rc = main(["train", *argv, "--out", str(out_file), "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert err.splitlines()[0].endswith(f"(checkpoints/, tb/); policy to {out_file}")
    assert sorted(p.name for p in out_file.parent.iterdir()) == ["p.safetensors"]
    (run,) = (tmp_path / "runs" / "train").iterdir()
    assert (run / "checkpoints" / "latest.pt").is_file()
    assert not (run / "policy.safetensors").exists()
    import json

    summary = json.loads(out)
    assert summary["policy"] == str(out_file) and summary["run_dir"] == str(
        run.relative_to(tmp_path)
    )


@pytest.mark.parametrize("eval_interval", [0, 1])
def test_progress_bar_ends_at_its_total_and_shows_no_minus_inf(
    tmp_path, monkeypatch, capsys, eval_interval
):
    monkeypatch.chdir(tmp_path)
    argv = [*TINY, "--steps", "200", "--eval-episodes", "1", "--no-tensorboard"]
    rc = main(["train", *argv, "--eval-interval", str(eval_interval)])
    err = capsys.readouterr().err
    assert rc == 0, err
    lines = err.splitlines()
    assert lines[1] == (
        "train: --steps 200 rounded up to 256 (whole rollouts of 1 envs x 128 steps = 128)"
    )
    assert "-inf" not in err and "nan" not in err
    bars = re.findall(r"(\d+)/(\d+) \[[^\]]*\]", err)
    assert bars and all(int(n) <= int(total) == 256 for n, total in bars)
    assert bars[-1] == ("256", "256")
    if eval_interval:  # the starting point's evaluation is the first best
        assert re.search(r"best_eval=-?\d", err) and "best_eval=-]" not in err
    else:
        assert "best_eval=-" in err and not re.search(r"best_eval=-?\d", err)
