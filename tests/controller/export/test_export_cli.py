"""``liquidnode export``: files, --check figures, one-line errors; no onnx in the runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from liquidnode.cli import main

ROOT = Path(__file__).resolve().parents[3]


def test_export_c_with_check_prints_json(tmp_path, capsys):
    policy = ROOT / "policies" / "InvertedPendulum-v5-ncp.safetensors"
    rc = main(
        [
            "export",
            "--policy",
            str(policy),
            "--target",
            "c",
            "--out",
            str(tmp_path),
            "--prefix",
            "ncp",
            "--check",
            "200",
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(Path(f).name for f in out["files"]) == ["ncp.c", "ncp.h"]
    assert out["check"]["steps"] == 200
    assert out["check"]["max_abs_action"] <= 1e-5


def test_export_errors_are_one_line(tmp_path, capsys):
    assert main(["export", "--target", "c", "--out", str(tmp_path), "--prefix", "9lives"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a C identifier" in err[0]
    missing = tmp_path / "nope.safetensors"
    assert (
        main(["export", "--target", "onnx", "--policy", str(missing), "--out", str(tmp_path)]) == 2
    )
    assert "nope.safetensors" in capsys.readouterr().err


def test_runtime_never_imports_onnx():
    script = (
        "import sys, numpy as np\n"
        "from liquidnode.controller.policy import Policy\n"
        "from liquidnode.controller.export import lower\n"
        "import liquidnode.cli.export_cmd\n"
        f"p = Policy.load({str(ROOT / 'policies' / 'InvertedPendulum-v5-cfc.safetensors')!r})\n"
        "p.step(np.zeros(4), 0.04); lower(p)\n"
        "print('onnx' in sys.modules, 'onnxruntime' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert proc.stdout.split() == ["False", "False"]


def test_export_q15_reports_the_derived_bound(tmp_path, capsys):
    policy = ROOT / "policies" / "InvertedPendulum-v5-ncp.safetensors"
    rc = main(
        [
            "export",
            "--policy",
            str(policy),
            "--target",
            "c",
            "--precision",
            "q15",
            "--out",
            str(tmp_path),
            "--check",
            "300",
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    bound = out["bound_per_step"]
    assert len(bound["action"]) == 1 and bound["state_max"] > 0
    # free-running over 300 ticks stays far inside the one-step worst case
    assert out["check"]["max_abs_action"] < bound["action"][0]
    assert "Per-step error bound" in (tmp_path / "policy.c").read_text()


def test_export_fixed_dt_checks_at_that_dt_and_refuses_f32(tmp_path, capsys):
    policy = str(ROOT / "policies" / "InvertedPendulum-v5-cfc.safetensors")
    args = ["export", "--policy", policy, "--target", "c", "--out", str(tmp_path)]
    rc = main([*args, "--precision", "q7", "--fixed-dt", "0.04", "--check", "200", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["check"]["steps"] == 200  # stepped at 0.04 s: another dt would have raised
    assert out["check"]["max_abs_action"] < out["bound_per_step"]["action"][0]
    assert "--fixed-dt 0.04" in (tmp_path / "policy.c").read_text()
    assert main([*args, "--fixed-dt", "0.04"]) == 2  # f32
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fixed-point C option" in err[0]


def test_export_of_a_told_policy_needs_the_latency_and_checks_at_it(tmp_path, capsys):
    """The exported step is built for ``--latency-ms`` (folded in) and ``--check`` steps the
    policy told the same latency (25 Hz: 20 ms is half a tick)."""
    from tests.controller.export.cases import LATENCY

    policy = LATENCY["cfc-latency-feedback"]()
    path = tmp_path / "told.safetensors"
    policy.save(path)
    base = ["export", "--policy", str(path), "--target", "c", "--out", str(tmp_path / "c")]
    assert main(base) == 2
    assert "--latency-ms" in capsys.readouterr().err
    assert main([*base, "--latency-ms", "20", "--check", "300", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["check"]["max_abs_action"] <= 1e-5
    header = (tmp_path / "c" / "policy.h").read_text()
    assert '"latency_folded": {"ticks": 0.5}' in header
    plain = ROOT / "policies" / "InvertedPendulum-v5-ncp.safetensors"
    argv = ["export", "--policy", str(plain), "--target", "onnx", "--out", str(tmp_path)]
    assert main([*argv, "--latency-ms", "5"]) == 2
    assert "has no latency input" in capsys.readouterr().err
