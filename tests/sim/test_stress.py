"""``liquidnode stress`` and its core on real MuJoCo: JSON keys, latency degrades, smoothness."""

from __future__ import annotations

import json

import numpy as np
import pytest

from liquidnode.cli import main
from liquidnode.controller.errors import LiquidNodeError
from liquidnode.sim.randomization import SpecError
from liquidnode.sim.stress import DEFAULT_GRID, load_grid, retained, smoothness


def test_stress_json_keys_and_latency_degrades_the_double_pendulum(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text("[axes]\nlatency = [0.0, 4.0]\n[[combined]]\nname = 'both'\nmass = 1.0\n")
    png = tmp_path / "heat.png"
    code = main(
        [
            "stress",
            "--env",
            "InvertedDoublePendulum-v5",
            "--grid",
            str(grid),
            "--episodes",
            "2",
            "--plot",
            str(png),
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"nominal", "cells"}
    assert set(out["nominal"]) == {"mean_return", "falls", "smoothness"}
    assert set(out["nominal"]["smoothness"]) == {"mean_delta_pct", "sign_change_pct"}
    keys = {"perturbation", "value", "mean_return", "retained", "falls", "smoothness"}
    assert [set(c) for c in out["cells"]] == [keys] * 3
    zero, late, both = out["cells"]
    assert (zero["perturbation"], zero["value"]) == ("latency", 0.0)
    assert zero["mean_return"] == out["nominal"]["mean_return"] and zero["retained"] == 100.0
    assert out["nominal"]["mean_return"] > 9000 and out["nominal"]["falls"] == 0
    assert late["retained"] < 50 and late["falls"] == 2  # four ticks late: it falls
    assert both["perturbation"] == "combined" and both["value"] == "both"
    assert png.stat().st_size > 10_000


def test_smoothness_of_known_sequences():
    low, high = np.array([-1.0]), np.array([1.0])
    chatter = np.array([[0.5], [-0.5]] * 5)
    assert smoothness([chatter], low, high) == {"mean_delta_pct": 50.0, "sign_change_pct": 100.0}
    ramp = np.linspace(-1, 1, 11)[:, None]
    sm = smoothness([ramp], low, high)
    assert sm["mean_delta_pct"] == pytest.approx(10.0) and sm["sign_change_pct"] == 0.0


def test_retained_is_relative_to_the_nominal_magnitude():
    assert retained(900.0, 1000.0) == pytest.approx(90.0)
    assert retained(-6.0, -4.0) == pytest.approx(50.0)


def test_default_grid_covers_the_required_perturbations():
    cells = load_grid(DEFAULT_GRID)
    latency = [c.value for c in cells if c.perturbation == "latency"]
    assert latency == [0.0, 0.25, 0.5, 1.0, 1.5]
    names = {c.perturbation for c in cells}
    assert {"mass", "obs_noise", "dt_jitter", "push", "combined"} <= names
    masses = [c.value for c in cells if c.perturbation == "mass"]
    assert min(masses) == 0.5 and max(masses) == 1.5


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[axes]\nlatncy = [1.0]\n", "axes.latncy"),
        ("[axes]\nmass = [1.0, 'x']\n", "axes.mass[1]"),
        ("[[combined]]\nname = 'a'\nmass = -1\n", "combined[0].mass"),
    ],
)
def test_grid_errors_name_the_field(tmp_path, text, field):
    grid = tmp_path / "g.toml"
    grid.write_text(text)
    with pytest.raises(SpecError, match=field.replace("[", r"\[")):
        load_grid(grid)
    assert issubclass(SpecError, LiquidNodeError)


def test_shipped_grids_by_name_and_the_initial_spread_axis():
    from liquidnode.sim.stress import cell_spec

    cells = load_grid("starts")
    assert [(c.perturbation, c.value) for c in cells] == [
        ("initial_spread", v) for v in (1.25, 1.5, 1.75, 2.0)
    ]
    spec = cell_spec(cells[1].settings, total_mass=10.0)
    assert spec.initial_state.spread.lo == spec.initial_state.spread.hi == 1.5
    assert not spec.is_nominal
    assert load_grid("quick") == load_grid(DEFAULT_GRID.with_name("quick.toml"))
    with pytest.raises(SpecError):
        load_grid("no-such-grid")
