"""Action feedback (``action.feedback``): the cell also sees the previous squashed action.

The trainer feeds ``[normalised obs, tanh(previous output)]`` to its torch cell; the numpy
runtime must do exactly that from a policy file, carry the feedback in its state, and every
code export (C float32 and fixed point, ONNX) must step it as the runtime does.
"""

import copy

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from liquidnode.controller.errors import PolicyFileError
from liquidnode.controller.export import export_policy as export_code
from liquidnode.controller.export.check import compare
from liquidnode.controller.export.lowering import lower
from liquidnode.controller.policy import Policy
from liquidnode.controller.policy_file import read_policy_file, write_policy_file
from liquidnode.controller.train.agent import Actor, build_cell
from liquidnode.controller.train.envs import EnvInfo
from liquidnode.controller.train.export import ExportSpec, export_policy
from liquidnode.controller.train.normalization import ObsNormalizer

PERIOD = 0.05
INFO = EnvInfo(
    env_id="InvertedDoublePendulum-v5",
    obs_dim=3,
    act_dim=2,
    obs_low=np.full(3, -np.inf),
    obs_high=np.full(3, np.inf),
    act_low=np.array([-2.0, -1.0]),
    act_high=np.array([2.0, 3.0]),
    control_period_s=PERIOD,
)


def _trained(cell: str = "cfc", seed: int = 3):
    torch.manual_seed(seed)
    # input = 3 observations + 2 fed-back actions
    actor = Actor(build_cell(cell, 5, 2, 12, 16, seed=seed), 2, "tanh", 0.0)
    rng = np.random.default_rng(seed)
    norm = ObsNormalizer(3, clip=5.0)
    norm(rng.normal([0.2, -1.0, 0.0], [0.5, 2.0, 1.0], size=(400, 3)), update=True)
    spec = ExportSpec(
        info=INFO,
        cell=cell,
        squash="tanh",
        time_scale=1.0 / PERIOD,
        act_scale=(INFO.act_high - INFO.act_low) / 2,
        act_offset=(INFO.act_high + INFO.act_low) / 2,
        feedback=True,
    )
    return actor, norm, spec, rng


@pytest.mark.parametrize("cell", ["cfc", "ltc"])
def test_runtime_feeds_back_exactly_what_the_trainer_does_over_1000_steps(cell, tmp_path):
    actor, norm, spec, rng = _trained(cell)
    path = tmp_path / "fb.safetensors"
    export_policy(actor.cell, norm, spec, {}).save(path)
    policy = Policy.load(path)
    assert policy.feedback and policy.obs_dim == 3 and policy.metadata.action["feedback"] is True

    steps = 1000
    obs = rng.normal([0.2, -1.0, 0.0], [0.5, 2.0, 1.0], size=(steps, 3))
    dts = PERIOD * rng.uniform(0.5, 1.5, size=steps)
    h = torch.zeros(1, actor.state_size)
    prev = torch.zeros(1, 2)
    worst = 0.0
    with torch.no_grad():
        for k in range(steps):
            if k == 500:  # an episode boundary: the feedback restarts at zero on both sides
                policy.reset()
                prev = torch.zeros(1, 2)
            x = torch.cat([torch.as_tensor(norm(obs[k][None])), prev], dim=1)
            ts = torch.tensor([dts[k] / PERIOD], dtype=torch.float32)
            mean, h = actor.step(x, h, ts, torch.tensor([1.0 if k in (0, 500) else 0.0]))
            prev = mean
            expected = spec.act_offset + spec.act_scale * mean[0].double().numpy()
            got = policy.step(obs[k], float(dts[k]))
            worst = max(worst, float(np.max(np.abs(got - expected))))
    assert worst < 1e-5, f"max |runtime - torch| = {worst:.3g}"


def test_the_feedback_changes_the_actions_and_lives_in_the_state():
    actor, norm, spec, rng = _trained()
    policy = export_policy(actor.cell, norm, spec, {})
    assert policy.state_dim == policy.cell.state_dim + 2
    obs = rng.normal(size=(40, 3))
    for o in obs[:20]:
        policy.step(o, PERIOD)
    fed = policy.state[-2:]
    assert np.any(fed != 0) and np.all(np.abs(fed) <= 1.0)  # tanh(y) of the last tick
    twin = copy.deepcopy(policy)
    blind = copy.deepcopy(policy)
    a = [policy.step(o, PERIOD) for o in obs[20:]]
    b = [twin.step(o, PERIOD) for o in obs[20:]]
    np.testing.assert_array_equal(a, b)  # the copy carried the feedback too
    c = []
    for o in obs[20:]:  # the same cell with the feedback zeroed before every tick
        blind.state = np.concatenate([blind.state[:-2], np.zeros(2, np.float32)])
        c.append(blind.step(o, PERIOD))
    assert np.max(np.abs(np.array(a) - np.array(c))) > 1e-4
    policy.reset()
    assert not np.any(policy.state)


def test_files_whose_feedback_and_input_size_disagree_are_refused(tmp_path):
    actor, norm, spec, _ = _trained()
    policy = export_policy(actor.cell, norm, spec, {})
    path = tmp_path / "fb.safetensors"
    policy.save(path)
    meta, tensors = read_policy_file(path)

    def written(action: dict, name: str):
        meta.action = action  # written as a hostile tool would, past the writer's checks
        blob = {"liquidnode": meta.to_json()}
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, tmp_path / name, blob)
        with pytest.raises(PolicyFileError, match="refusing to write"):
            write_policy_file(tmp_path / f"w{name}", meta, tensors)  # the writer refuses too
        return tmp_path / name

    # the feedback flag dropped: 5 inputs for 3 observations
    with pytest.raises(PolicyFileError, match="input size 5"):
        Policy.load(written({"squash": "tanh"}, "no_flag.safetensors"))
    with pytest.raises(PolicyFileError, match=r"action\.feedback must be true or false"):
        Policy.load(written({"squash": "tanh", "feedback": "yes"}, "bad_flag.safetensors"))


@pytest.mark.parametrize(("target", "precision"), [("c", "f32"), ("c", "q15"), ("onnx", "f32")])
def test_code_exports_run_the_feedback_of_a_trained_policy(target, precision, tmp_path):
    # the float exports within 1e-5 of Policy.step over 1,000 steps from reset (as every
    # exported cell is, tests/controller/export); q15 within its quantisation (< 0.02)
    actor, norm, spec, _ = _trained()
    policy = export_policy(actor.cell, norm, spec, {})
    assert lower(policy).feedback and lower(policy).cell_in == 5
    files = export_code(policy, tmp_path, target, precision, prefix="fb")
    if target == "onnx":  # the state's layout is declared to whoever loads the model
        import onnx

        props = {p.key: p.value for p in onnx.load(str(files[0])).metadata_props}
        assert props["liquidnode.action_feedback"] == "true"
    else:
        assert "then the previous squashed action" in (tmp_path / "fb.h").read_text()
    got = compare(policy, tmp_path, target, "fb", steps=1000, seed=2)
    tol = 1e-5 if precision == "f32" else 0.02
    assert got["max_abs_action"] <= tol and got["max_abs_state"] <= tol
