"""Export exactness: the numpy runtime reproduces the trainer's deterministic actions."""

import numpy as np
import pytest
import torch

from liquidnode.controller.policy import Policy
from liquidnode.controller.train.agent import Actor, build_cell
from liquidnode.controller.train.envs import EnvInfo
from liquidnode.controller.train.export import ExportSpec, export_policy
from liquidnode.controller.train.normalization import ObsNormalizer

PERIOD = 0.04
INFO = EnvInfo(
    env_id="InvertedPendulum-v5",
    obs_dim=4,
    act_dim=2,
    obs_low=np.full(4, -np.inf),
    obs_high=np.full(4, np.inf),
    act_low=np.array([-3.0, -1.0]),
    act_high=np.array([3.0, 2.0]),
    control_period_s=PERIOD,
)


def _setup(cell: str, seed: int = 0):
    torch.manual_seed(seed)
    actor = Actor(build_cell(cell, 4, 2, 12, 16, seed=seed), 2, "tanh", 0.0)
    rng = np.random.default_rng(seed)
    norm = ObsNormalizer(4, clip=5.0)
    norm(
        rng.normal(loc=[0.1, -2.0, 0.0, 3.0], scale=[0.2, 1.5, 3.0, 0.5], size=(500, 4)),
        update=True,
    )
    spec = ExportSpec(
        info=INFO,
        cell=cell,
        squash="tanh",
        time_scale=1.0 / PERIOD,
        act_scale=(INFO.act_high - INFO.act_low) / 2,
        act_offset=(INFO.act_high + INFO.act_low) / 2,
    )
    return actor, norm, spec, rng


@pytest.mark.parametrize("cell", ["cfc", "ltc", "ncp", "lstm", "gru", "mlp"])
def test_runtime_matches_torch_over_1000_steps_with_variable_dt(cell, tmp_path):
    actor, norm, spec, rng = _setup(cell)
    policy = export_policy(actor.cell, norm, spec, {"note": "test"})
    path = tmp_path / "p.safetensors"
    policy.save(path)
    policy = Policy.load(path)  # the file, not the in-memory object, is what ships

    steps = 1000
    t = np.arange(steps) * PERIOD
    obs_seq = np.stack(
        [0.1 + 0.3 * np.sin(t), -2 + 2 * np.cos(0.7 * t), 4 * np.sin(3 * t), 3 + 0.1 * t], axis=1
    ) + rng.normal(scale=0.05, size=(steps, 4))
    obs_seq[123] = [50.0, -50.0, 0.0, 0.0]  # exercises the normalisation clip
    dts = PERIOD * rng.uniform(0.3, 2.0, size=steps)

    policy.reset()
    h = torch.zeros(1, actor.state_size)
    worst = 0.0
    with torch.no_grad():
        for k in range(steps):
            start = 1.0 if k in (0, 600) else 0.0
            if k == 600:
                policy.reset()  # an episode boundary on both sides
            x = torch.as_tensor(norm(obs_seq[k][None]))
            mean, h = actor.step(
                x,
                h,
                torch.tensor([dts[k] * spec.time_scale], dtype=torch.float32),
                torch.tensor([start]),
            )
            torch_action = spec.act_offset + spec.act_scale * mean[0].double().numpy()
            runtime_action = policy.step(obs_seq[k], float(dts[k]))
            worst = max(worst, float(np.max(np.abs(runtime_action - torch_action))))
    assert worst < 1e-5, f"max |runtime - torch| = {worst:.3g}"


def test_export_metadata_carries_normalisation_mapping_and_env():
    actor, norm, spec, _ = _setup("cfc")
    policy = export_policy(actor.cell, norm, spec, {"steps": 5})
    meta = policy.metadata
    assert meta.env_id == "InvertedPendulum-v5"
    assert meta.action == {"squash": "tanh"}
    assert meta.normalization == {"clip": 5.0}
    assert meta.time_scale == pytest.approx(25.0)
    assert meta.control_rate_hz == pytest.approx(25.0)
    assert meta.action_space["low"] == [-3.0, -1.0]
    assert meta.observation_space["high"] == [None] * 4
    assert meta.provenance["trained"] is True and meta.provenance["steps"] == 5
    np.testing.assert_allclose(policy.obs_mean, norm.mean, rtol=1e-6)
    np.testing.assert_allclose(policy.obs_std, norm.std, rtol=1e-6)
    np.testing.assert_allclose(policy.action_scale, [3.0, 1.5])
    np.testing.assert_allclose(policy.action_offset, [0.0, 0.5])
