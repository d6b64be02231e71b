"""Float32 C export vs Policy.step: every cell type, 1,000 steps with variable dt, within 1e-5."""

from __future__ import annotations

import numpy as np
import pytest

from liquidnode.controller.export import export_policy
from liquidnode.controller.export.check import reference, sequence
from liquidnode.controller.export.host_build import CompiledPolicy
from tests.controller.export.cases import ALL, SHIPPED

TOL = 1e-5


@pytest.mark.parametrize("name", sorted(ALL))
def test_c_float_matches_policy_step(name, tmp_path):
    policy = ALL[name]()
    export_policy(policy, tmp_path, "c", "f32", prefix="pol")
    compiled = CompiledPolicy(tmp_path, "pol", policy.obs_dim, policy.act_dim, policy.state_dim)
    obs, dt = sequence(policy, 1000, seed=1)
    ref_a, ref_s = reference(policy, obs, dt)
    act, states = compiled.run(obs, dt)
    assert np.abs(ref_a).max() > 0.05  # the policy does something
    assert np.max(np.abs(act - ref_a)) <= TOL
    assert np.all(np.abs(states - ref_s) <= TOL)


def test_compiled_policy_steps_like_a_policy(tmp_path):
    policy = SHIPPED["InvertedPendulum-v5-ncp"]()
    export_policy(policy, tmp_path, "c", "f32", prefix="ncp")
    compiled = CompiledPolicy(tmp_path, "ncp", policy.obs_dim, policy.act_dim, policy.state_dim)
    rng = np.random.default_rng(0)
    start = rng.uniform(-0.5, 0.5, policy.state_dim).astype(np.float32)
    policy.state = start
    compiled.state = start
    np.testing.assert_array_equal(compiled.state, start)
    for _ in range(20):
        obs = rng.normal(size=policy.obs_dim)
        np.testing.assert_allclose(compiled.step(obs, 0.04), policy.step(obs, 0.04), atol=TOL)
    compiled.reset()
    assert not compiled.state.any()


def test_generated_source_has_no_libm_malloc_or_vla(tmp_path):
    policy = ALL["cfc-no_gate-gelu-2layers"]()
    files = export_policy(policy, tmp_path, "c", "f32", prefix="pol")
    text = "\n".join(f.read_text() for f in files)
    assert "#include <math.h>" not in text and "malloc" not in text
    assert "pol_state" in text and "PROGMEM" in text
    for fn in ("expf(", "tanhf(", "erff(", "sqrtf("):
        assert fn not in text
