"""``scripts/idp_distill.py``, the recipe of the shipped double-pendulum file, end to end.

A tiny run (two iterations of four short episodes) must write an ordinary policy file: the
student's cell with action feedback, the observation statistics of ``--init-from``, and a
provenance that names both randomisations of ``--mix`` with their fractions and the teacher.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from liquidnode.controller.policy import Policy
from liquidnode.policies import POLICY_DIR

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "idp_distill.py"
INIT = POLICY_DIR / "InvertedDoublePendulum-v5-cfc.safetensors"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(SCRIPT), "--init-from", str(INIT), "--fresh-cell", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)


def test_a_tiny_distillation_writes_a_feedback_policy_with_its_mixes(tmp_path: Path) -> None:
    out = tmp_path / "student.safetensors"
    proc = _run(
        "--action-feedback",
        "--units",
        "8",
        "--backbone-units",
        "8",
        "--iterations",
        "2",
        "--envs",
        "4",
        "--ticks",
        "5",
        "--randomize",
        "InvertedDoublePendulum-v5-tick",
        "--mix",
        "InvertedDoublePendulum-v5-onetick=0.25",
        "--mix",
        "InvertedDoublePendulum-v5-pushes=0.25",
        "--seed",
        "3",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("iter ") == 2
    student, init = Policy.load(out), Policy.load(INIT)
    meta = student.metadata
    assert meta.action["feedback"] is True and meta.cell["units"] == 8
    assert meta.cell["input_size"] == 9 + 1  # the observation, then the previous action
    np.testing.assert_array_equal(student.obs_mean, init.obs_mean)
    np.testing.assert_array_equal(student.obs_std, init.obs_std)
    prov = meta.provenance
    assert prov["randomization"]["latency"]["ticks"] == [0.0, 1.0]
    mixes = prov["mix"]
    assert [m["fraction"] for m in mixes] == [0.25, 0.25]
    assert mixes[0]["latency"]["ticks"] == 1.0  # -onetick: a fixed value
    assert mixes[1]["push"]["impulse"] == [0.0, 1.9]  # -pushes
    assert prov["teacher"]["r"] == [300.0, 1000.0] and prov["steps"] > 0
    assert prov["evaluation"]["episodes"] == 20
    # The file runs in the numpy runtime, the fed-back (squashed) action last in its state;
    # the double pendulum's action range is [-1, 1], so it equals the action.
    action = student.step(np.zeros(9), dt=0.05)
    assert action.shape == (1,)
    np.testing.assert_allclose(student.state[-1:], action, atol=1e-6)  # float32 state


def test_mix_fractions_that_leave_no_main_episode_are_refused(tmp_path: Path) -> None:
    proc = _run(
        "--mix",
        "InvertedDoublePendulum-v5-onetick=0.5",
        "--mix",
        "InvertedDoublePendulum-v5-pushes=0.5",
        "--envs",
        "4",
        "--out",
        str(tmp_path / "x.safetensors"),
    )
    assert proc.returncode == 2 and "leave no episode" in proc.stderr


def test_early_weight_counts_the_first_ticks_more(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--early-weight w``: tick ``t`` weighs ``1 + w exp(-t / early_ticks)`` in the loss.

    Labels equal the student's own output except for an error of 1 at one tick; with a zero
    learning rate the returned loss is that tick's weight over the sum of the weights.
    """
    import torch

    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    from idp_distill import train_epochs

    from liquidnode.controller.train.agent import Actor, build_cell

    torch.manual_seed(0)
    actor = Actor(build_cell("cfc", 3, 1, 4, 4, 0), 1, "tanh", -2.0)
    n_seq, n_tick = 2, 40
    x = np.random.default_rng(0).normal(size=(n_seq, n_tick, 3)).astype(np.float32)
    ts = np.ones((n_seq, n_tick), np.float32)
    starts = torch.zeros(n_seq, n_tick)
    starts[:, 0] = 1.0
    h0 = torch.zeros(n_seq, actor.state_size)
    with torch.no_grad():
        means = actor.unroll(torch.as_tensor(x), torch.as_tensor(ts), starts, h0)
    t = np.arange(n_tick)
    for tick in (0, 39):
        label = means[..., 0].numpy().copy()
        label[:, tick] += 1.0
        data = {"x": x, "ts": ts, "label": label, "mask": np.ones((n_seq, n_tick), np.float32)}
        optimizer = torch.optim.SGD(actor.parameters(), lr=0.0)
        for w in (0.0, 2.0):
            weights = 1.0 + w * np.exp(-t / 10.0)
            rng = np.random.default_rng(0)
            loss = train_epochs(actor, optimizer, data, 1, n_seq, rng, w, 10.0)
            assert loss == pytest.approx(weights[tick] / weights.sum(), rel=1e-4)


def test_a_told_student_starts_as_the_file_it_is_warm_started_from(tmp_path: Path) -> None:
    """``--latency-input`` without ``--fresh-cell``: the file's cell gets a zero weight for the
    latency, so before any training the exported student (a file with ``latency_input``) acts
    as the file does, whatever latency it is told."""
    from liquidnode.controller.export.fold_latency import fold_latency

    plain = tmp_path / "plain.safetensors"  # the shipped file is told: one that is not
    fold_latency(Policy.load(INIT)).save(plain)
    out = tmp_path / "told.safetensors"
    argv = [sys.executable, str(SCRIPT), "--init-from", str(plain), "--action-feedback"]
    argv += ["--latency-input", "0.1", "--iterations", "0", "--out", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    student, init = Policy.load(out), Policy.load(plain)
    assert init.latency_input is None
    assert student.metadata.latency_input == {"low": 0.0, "high": 1.5, "mean": 0.5, "std": 0.29}
    assert student.metadata.cell["input_size"] == 9 + 1 + 1  # observation, latency, action
    rng = np.random.default_rng(0)
    obs = init.obs_mean + init.obs_std * rng.normal(size=(40, 9))
    for told in (0.0, 1.0):
        student.reset()
        init.reset()
        student.set_latency(told)
        for o in obs:
            np.testing.assert_allclose(student.step(o, 0.05), init.step(o, 0.05), atol=1e-6)
