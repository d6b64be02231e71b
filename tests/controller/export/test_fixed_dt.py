"""Fixed-point export specialised for one control period: the CfC time gate folded for it."""

from __future__ import annotations

import numpy as np
import pytest

from liquidnode.controller.export import ExportError, export_policy, lower
from liquidnode.controller.export.check import sequence
from liquidnode.controller.export.fixed_point import EPS_TANH, build, fixed_ts_q12
from liquidnode.controller.export.host_build import CompiledPolicy
from tests.controller.export.cases import ALL, SHIPPED, pendulum_returns


def _period(policy) -> float:
    rate = policy.metadata.control_rate_hz
    return 1.0 / rate if rate else 1.0 / float(policy.metadata.time_scale)


def _compiled(policy, tmp_path, precision, fixed_dt):
    files, info = build(lower(policy), "pq", precision, fixed_dt)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    compiled = CompiledPolicy(tmp_path, "pq", policy.obs_dim, policy.act_dim, policy.state_dim)
    return compiled, info, files


@pytest.mark.parametrize(
    ("name", "precision"),
    [
        ("InvertedPendulum-v5-cfc", "q15"),
        ("InvertedPendulum-v5-cfc", "q7"),
        ("InvertedPendulum-v5-ncp", "q7"),
        ("cfc-default-backbone", "q7"),
        ("wired_cfc-no_gate", "q15"),
    ],
)
def test_fixed_dt_step_within_the_derived_bound(name, precision, tmp_path):
    policy = ALL[name]() if name in ALL else SHIPPED[name]()
    period = _period(policy)
    compiled, info, _ = _compiled(policy, tmp_path, precision, period)
    plan = lower(policy)
    # a dt a little off the period with the same Q12 ts is stepped too (the bound covers it)
    near = period + 0.4 * 2.0**-12 / plan.time_scale
    assert fixed_ts_q12(plan, near) == fixed_ts_q12(plan, period)
    obs, _ = sequence(policy, 200, seed=4)
    worst = 0.0
    for k in range(len(obs)):
        dt = period if k % 2 == 0 else near
        policy.state = compiled.state
        expected = policy.step(obs[k].astype(np.float64), dt)
        action = compiled.step(obs[k], dt)
        assert np.all(np.abs(action - expected) <= info.bound_action), k
        assert np.all(np.abs(compiled.state - policy.state) <= info.bound_state), k
        worst = max(worst, float(np.max(np.abs(action - expected))))
    assert worst > EPS_TANH / 10


def test_fixed_dt_header_and_folded_heads(tmp_path):
    policy = SHIPPED["InvertedPendulum-v5-cfc"]()
    _, _, files = _compiled(policy, tmp_path, "q15", 0.04)
    h, c = files["pq.h"], files["pq.c"]
    assert "#define PQ_FIXED_DT_US 40000" in h
    assert "#define PQ_FIXED_TS_Q12 4096" in h  # 0.04 s * time_scale 25 = 1.0 in Q12
    assert "int pq_step(pq_state *s" in h and "int pq_step(pq_state *s" in c
    # ff1, ff2 and the folded gate: three 16 x 64 heads instead of four
    assert "pq_head2_w[1024]" in c and "pq_head3_w" not in c
    (tmp_path / "general").mkdir()
    _, _, general = _compiled(policy, tmp_path / "general", "q15", None)
    assert "pq_head3_w[1024]" in general["pq.c"] and "void pq_step" in general["pq.h"]


def test_fixed_dt_step_refuses_another_dt(tmp_path):
    policy = SHIPPED["InvertedPendulum-v5-cfc"]()
    compiled, _, _ = _compiled(policy, tmp_path, "q7", 0.04)
    obs, _ = sequence(policy, 3, seed=1)
    compiled.step(obs[0], 0.04)
    before = compiled.state.copy()
    with pytest.raises(ExportError, match=r"specialised for one control period.*dt = 0\.05"):
        compiled.step(obs[1], 0.05)
    assert np.array_equal(compiled.state, before)  # not stepped
    with pytest.raises(ExportError, match=r"refused dt = 0\.02"):
        compiled.run(obs, np.array([0.04, 0.04, 0.02], np.float32))


@pytest.mark.parametrize(
    ("name", "target", "precision", "message"),
    [
        ("ltc-ncp", "c", "q15", "a ltc policy"),
        ("cfc-pure", "c", "q7", "pure mode"),
        ("InvertedPendulum-v5-cfc", "c", "f32", "fixed-point C option"),
        ("InvertedPendulum-v5-cfc", "onnx", "f32", "fixed-point C option"),
    ],
)
def test_fixed_dt_refused_without_a_time_gate(name, target, precision, message, tmp_path):
    policy = ALL[name]() if name in ALL else SHIPPED[name]()
    with pytest.raises(ExportError, match=message):
        export_policy(policy, tmp_path, target, precision, fixed_dt=0.04)


def test_fixed_dt_outside_the_bound_range_is_refused(tmp_path):
    with pytest.raises(ExportError, match="outside"):
        export_policy(SHIPPED["InvertedPendulum-v5-cfc"](), tmp_path, "c", "q15", fixed_dt=1.0)


@pytest.mark.parametrize("precision", ["q15", "q7"])
def test_fixed_dt_closed_loop_return_within_one_percent(precision, tmp_path):
    policy = SHIPPED["InvertedPendulum-v5-cfc"]()
    compiled, _, _ = _compiled(policy, tmp_path, precision, _period(policy))
    returns = pendulum_returns(policy, compiled)
    print(f"CfC {precision} fixed dt: return float {returns['float']:.1f}, {returns['fixed']:.1f}")
    assert returns["float"] > 900
    assert abs(returns["fixed"] - returns["float"]) <= 0.01 * returns["float"]
