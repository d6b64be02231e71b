"""Smoke run of the benchmarks at tiny sizes, and the pieces they stand on."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from liquidnode.benchmarks import report
from liquidnode.benchmarks.harness import Check, Section, interleaved, percentile
from liquidnode.benchmarks.transformer import CausalTransformerPolicy

NAMES = (
    "policy_latency",
    "constant_cost",
    "loop_timing",
    "serial_rtt",
    "sim_overhead",
    "device",
    "robustness",
)


def test_end_to_end_tiny_run_json_and_readme(tmp_path):
    """Every comparison runs (or says why not) in one process; the README section is written."""
    readme = tmp_path / "README.md"
    readme.write_text("# project\n\nintro\n")
    cmd = [sys.executable, "-m", "liquidnode.benchmarks", "--tiny", "--json", "--update-readme"]
    proc = subprocess.run(
        [*cmd, "--readme", str(readme)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert set(out["sections"]) == set(NAMES)
    assert out["meta"]["machine"]["cores"] >= 1
    for key, sec in out["sections"].items():
        if sec["unavailable"] is None:
            assert sec["rows"], key
            assert all(len(r) == len(sec["columns"]) for r in sec["rows"]), key
        else:
            assert "failed" not in sec["unavailable"], (key, sec["unavailable"])
    targets = {t["target"] for t in out["targets"]}
    assert any("ncps torch" in t for t in targets)
    text = readme.read_text()
    assert text.startswith("# project\n\nintro\n")
    assert text.count(report.START) == 1 and text.count(report.END) == 1
    assert "Policy step latency" in text and "## Benchmarks" in text  # heading added with markers


def test_policy_latency_outputs_match_ncps():
    pytest.importorskip("ncps")
    from liquidnode.benchmarks import policy_latency

    sec = policy_latency.run(tiny=True)
    assert sec.unavailable is None
    assert len(sec.rows) == 3
    for name, data in sec.data.items():
        if isinstance(data, dict) and "max_abs_error" in data:
            assert max(data["max_abs_error"].values()) <= 1e-5, name
            assert data["torch_us"] > 0 and data["runtime_us"] > 0


def test_c_floor_matches_ncps():
    torch = pytest.importorskip("torch")
    from ncps.torch import CfC

    from liquidnode.benchmarks.cfloor import FloorUnavailableError, build_floor

    torch.manual_seed(0)
    module = CfC(17, 64, proj_size=6, backbone_units=128).eval()
    sd = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    try:
        floor = build_floor(sd, 17, 64, 128, 6)
    except FloorUnavailableError as exc:
        pytest.skip(str(exc))
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(100, 17)).astype(np.float32)
    ts = rng.uniform(0.5, 1.5, size=100).astype(np.float32)
    with torch.inference_mode():
        ref = module(torch.from_numpy(xs)[None], timespans=torch.from_numpy(ts)[None])[0][0]
    got = np.stack([floor.step(x, float(t)).copy() for x, t in zip(xs, ts, strict=True)])
    assert np.max(np.abs(got - ref.numpy())) <= 1e-5
    assert floor.run_in_c(100) > 0


def test_transformer_prefill_equals_stepping_and_cache_grows():
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(120, 17)).astype(np.float32)
    stepped = CausalTransformerPolicy(seed=1)
    ys = np.stack([stepped.step(o) for o in obs])
    filled = CausalTransformerPolicy(seed=1)
    filled.prefill(obs[:100])
    yf = np.stack([filled.step(o) for o in obs[100:]])
    np.testing.assert_allclose(yf, ys[100:], atol=1e-4)
    assert filled.context == 120
    small = filled.cache_bytes
    filled.prefill(rng.normal(size=(1000, 17)).astype(np.float32))
    assert filled.cache_bytes * 120 == small * 1120  # grows with the context
    assert 30_000 < filled.n_params < 60_000  # about the CfC-64 policy's 43,910


def test_readme_update_replaces_only_the_marked_section(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"top\n{report.START}\nold table\n{report.END}\nbottom\n")
    report.update_readme(readme, "new table\n")
    assert readme.read_text() == f"top\n{report.START}\nnew table\n{report.END}\nbottom\n"


def test_interleaved_orders_candidates_by_cost():
    def cheap():
        return None

    def costly():
        return sum(range(2000))

    t = interleaved({"cheap": cheap, "costly": costly}, rounds=5, calls=20, warmup=2)
    assert t["costly"] > t["cheap"] > 0
    assert percentile([1.0, 2.0, 3.0], 50) == 2.0


def test_text_report_lists_unavailable_and_targets():
    secs = [
        Section("a", "A", columns=["x"], rows=[[1]], checks=[Check("fast", "2x", False)]),
        Section("b", "B", unavailable="no serial bridge"),
    ]
    meta = {
        "mode": "tiny",
        "date": "d",
        "wall_s": 1.0,
        "command": "c",
        "machine": {"cpu": "cpu", "cores": 2, "os": "os", "python": "3", "numpy": "2"},
    }
    text = report.to_text(secs, meta)
    assert "unavailable: no serial bridge" in text and "[NOT met] fast: 2x" in text
    assert "| fast | 2x | NOT met |" in report.to_markdown(secs, meta)
    secs[0].rows = [["max |d|"]]
    assert "max \\|d\\|" in report.to_markdown(secs, meta)


def test_bench_cli_help():
    from liquidnode.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["bench", "--quick", "--json", "--only", "loop_timing"])
    assert args.quick and args.json and args.only == ["loop_timing"]
