"""The robustness benchmark's table: grouping of stress cells, statistics over seeds."""

from __future__ import annotations

import pytest

from liquidnode.benchmarks import robustness


def _record(name: str, seed: int, nominal: float, latency_far: float, falls: int) -> dict:
    cells = [
        {"perturbation": "latency", "value": 0.5, "mean_return": nominal, "falls": 0},
        {"perturbation": "latency", "value": 1.0, "mean_return": nominal / 2, "falls": 0},
        {"perturbation": "latency", "value": 1.5, "mean_return": latency_far, "falls": falls},
        {"perturbation": "mass", "value": 0.4, "mean_return": 100.0, "falls": 0},
        {"perturbation": "held_out", "value": "held_out", "mean_return": 7.0, "falls": falls},
    ]
    smooth = {"mean_delta_pct": 2.0 * seed, "sign_change_pct": 10.0}
    return {
        "candidate": name,
        "seed": seed,
        "episodes": 4,
        "stress": {"nominal": {"mean_return": nominal, "smoothness": smooth}, "cells": cells},
    }


def test_per_policy_groups_cells_by_perturbation():
    figs = robustness.per_policy(_record("CfC", 1, 1000.0, 40.0, falls=4))
    assert figs["nominal"] == 1000.0
    assert figs["latency <= 1 tick"] == pytest.approx(750.0)  # mean of 1000 and 500
    assert figs["latency > 1 tick"] == 40.0
    assert figs["mass"] == 100.0
    assert figs["combined"] == 7.0  # a [[combined]] cell is named by its own table
    assert "push" not in figs  # no such cell in this grid
    assert figs["falls_pct"] == pytest.approx(100.0 * 8 / (4 * 5))
    assert figs["delta_pct"] == 2.0


def test_summarize_gives_mean_and_std_over_seeds_in_candidate_order():
    records = [
        _record("LSTM", 1, 900.0, 10.0, 0),
        _record("CfC", 1, 1000.0, 20.0, 0),
        _record("CfC", 2, 800.0, 40.0, 0),
    ]
    columns, rows = robustness.summarize(records, {"CfC": 5521, "LSTM": 4897})
    assert [r[0] for r in rows] == ["CfC", "LSTM"]
    cfc = dict(zip(columns, rows[0], strict=True))
    assert cfc["params"] == 5521 and cfc["seeds"] == 2
    assert cfc["nominal"] == "900 ± 100"
    assert cfc["latency > 1 tick"] == "30 ± 10"
    assert cfc["push"] == "-"
    lstm = dict(zip(columns, rows[1], strict=True))
    assert lstm["nominal"] == "900"  # one seed: no spread
    table = robustness.to_markdown(columns, rows)
    assert table.splitlines()[0].startswith("| cell | params | seeds | nominal |")
    assert len(table.splitlines()) == 4


def test_baselines_are_sized_near_the_cfc_parameter_count():
    pytest.importorskip("torch")
    pytest.importorskip("ncps")
    counts = {c.name: robustness.parameter_count(c, 4, 1) for c in robustness.CANDIDATES}
    for name in ("LSTM", "GRU", "MLP"):
        assert 0.75 < counts[name] / counts["CfC"] < 1.25, counts


def test_bench_runs_it_in_full_mode_only():
    sec = robustness.run(quick=True)
    assert sec.unavailable is not None and "full mode only" in sec.unavailable


def test_section_notes_describe_the_records_not_the_defaults():
    records = [_record("CfC", 4, 1000.0, 20.0, 0), _record("CfC", 7, 800.0, 40.0, 0)]
    for r in records:
        r["steps"] = 40_960
    cfg = robustness.BenchConfig(seeds=[1, 2, 3], steps=100, episodes=50)
    sec = robustness.section(cfg, records, {"CfC": 1})
    assert "40960 steps" in sec.notes[0] and "seeds [4, 7]" in sec.notes[0]
    assert "4 episodes per cell" in sec.notes[1]
    assert sec.rows[0][:3] == ["CfC", 1, 2]
