"""scripts/halfcheetah_jitter.py: its variants of stress's jitter cell are what they claim,
and it leaves the physics and the policy as it found them."""

import importlib.util
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from liquidnode import Policy
from liquidnode.sim import stress
from liquidnode.sim.randomization.perturbed_physics import PerturbedPhysics
from liquidnode.sim.randomization.spec import RandomizationSpec, TimingSpec

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "halfcheetah_jitter.py"
POLICY = Path(__file__).resolve().parents[2] / "policies" / "HalfCheetah-v5-cfc.safetensors"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("halfcheetah_jitter", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _physics(jitter: float, seed: int) -> SimpleNamespace:
    timing = replace(RandomizationSpec(), timing=TimingSpec(dt_jitter=jitter))
    return SimpleNamespace(spec=timing, rng=np.random.default_rng(seed), nominal_substep=0.01)


def test_whole_steps_are_the_nominal_step_and_substeps_keep_the_nominal_period(script):
    whole, sub = _physics(0.4, 1), _physics(0.4, 1)
    seen_whole, seen_sub = set(), set()
    for _ in range(500):
        steps, h, period = script._whole_steps(whole, 5)
        assert h == 0.01 and period == pytest.approx(steps * 0.01)
        seen_whole.add(steps)
        steps, h, period = script._substeps(sub, 5)
        assert period == pytest.approx(0.05) and h == pytest.approx(0.05 / steps)
        seen_sub.add(steps)
    assert seen_whole == seen_sub == {3, 4, 5, 6, 7}


def test_the_stress_variant_is_the_stress_cell_and_nothing_is_left_patched(script):
    policy = Policy.load(POLICY)
    step, draw = policy.step, PerturbedPhysics.draw_period
    spec = replace(RandomizationSpec(), timing=TimingSpec(dt_jitter=0.4))
    summary, _ = stress.run_cell(policy, "HalfCheetah-v5", spec, 2, 2_000_000)
    cell = np.array([e.return_ for e in summary.episodes])
    np.testing.assert_array_equal(script.run(policy, "stress", 0.4, 2, 2_000_000), cell)
    told = script.run(policy, "nominal-dt", 0.4, 2, 2_000_000)
    assert not np.array_equal(told, cell)  # the policy was told another dt: another run
    substeps = script.run(policy, "substeps", 0.4, 2, 2_000_000)
    assert not np.array_equal(substeps, cell)
    assert policy.step == step and PerturbedPhysics.draw_period is draw


def test_low_pass_puts_the_policy_s_own_filter_in(script):
    policy = Policy.load(POLICY)
    filtered = script.with_low_pass(policy, 7.0)
    assert filtered.metadata.action == {**policy.metadata.action, "low_pass_hz": 7.0}
    assert filtered.low_pass is not None and policy.low_pass is None
    for name, value in policy.tensors().items():
        np.testing.assert_array_equal(filtered.tensors()[name], value, err_msg=name)
