"""ONNX export in onnxruntime vs Policy.step: every cell type, 1,000 steps with variable dt."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from liquidnode.controller.export import ExportError, export_policy
from liquidnode.controller.export.check import reference, run_onnx, sequence
from liquidnode.controller.export.onnx_export import OPSET
from tests.controller.export.cases import ALL, SHIPPED

TOL = 1e-5


@pytest.mark.parametrize("name", sorted(ALL))
def test_onnx_matches_policy_step(name, tmp_path):
    policy = ALL[name]()
    (path,) = export_policy(policy, tmp_path, "onnx", prefix="pol")
    obs, dt = sequence(policy, 1000, seed=2)
    ref_a, ref_s = reference(policy, obs, dt)
    act, states = run_onnx(path, obs, dt, policy.state_dim)
    assert np.abs(ref_a).max() > 0.05
    assert np.max(np.abs(act - ref_a)) <= TOL
    assert np.all(np.abs(states - ref_s) <= TOL)


def test_onnx_interface_metadata_and_batch(tmp_path):
    policy = SHIPPED["InvertedPendulum-v5-ltc"]()
    (path,) = export_policy(policy, tmp_path, "onnx", prefix="ltc")
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == ["obs", "dt", "state"]
    assert [o.name for o in model.graph.output] == ["action", "state_out"]
    assert model.opset_import[0].version == OPSET
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["liquidnode.control_rate_hz"]) == 25.0
    assert json.loads(props["liquidnode.env_id"]) == "InvertedPendulum-v5"
    assert json.loads(props["liquidnode.provenance"])["trained"] is True
    assert json.loads(props["liquidnode.action_space"])["low"] == [-3.0]
    assert json.loads(props["liquidnode.action_feedback"]) is False

    # a batch of three different states steps each row as the policy does
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(5)
    obs = rng.normal(size=(3, 4)).astype(np.float32)
    state = rng.uniform(-0.5, 0.5, (3, 16)).astype(np.float32)
    dt = np.array([[0.03], [0.04], [0.05]], np.float32)
    action, state_out = sess.run(None, {"obs": obs, "dt": dt, "state": state})
    for row in range(3):
        policy.state = state[row]
        expected = policy.step(obs[row].astype(np.float64), float(dt[row, 0]))
        np.testing.assert_allclose(action[row], expected, atol=TOL)
        np.testing.assert_allclose(state_out[row], policy.state, atol=TOL)


def test_onnx_is_float32_only(tmp_path):
    with pytest.raises(ExportError, match="float32 only"):
        export_policy(SHIPPED["InvertedPendulum-v5-cfc"](), tmp_path, "onnx", "q15")
