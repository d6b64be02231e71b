"""Baseline cells (LSTM, GRU, MLP): the numpy runtime equals torch, in a policy and in a file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from liquidnode.controller import cells
from liquidnode.controller.cells.gru import GRUCell
from liquidnode.controller.cells.lstm import LSTMCell
from liquidnode.controller.cells.mlp import MLPCell
from liquidnode.controller.errors import PolicyFileError
from liquidnode.controller.policy import Policy, random_policy
from liquidnode.controller.policy_file import read_policy_file, write_policy_file

STEPS = 1000


def _inputs(n_in: int, seed: int = 0) -> np.ndarray:
    """1,000 float32 inputs: slow sines plus noise, with a few large spikes."""
    rng = np.random.default_rng(seed)
    t = np.arange(STEPS)[:, None] * 0.05
    x = np.sin(t * np.arange(1, n_in + 1)) * 2.0 + rng.normal(scale=0.5, size=(STEPS, n_in))
    x[[100, 555]] = 8.0
    return x.astype(np.float32)


def _torch_weights(module: torch.nn.Module) -> dict[str, np.ndarray]:
    """A one-layer ``nn.LSTM`` / ``nn.GRU``'s weights under the runtime's (``*Cell``) names."""
    return {
        name.removesuffix("_l0"): p.detach().numpy().copy() for name, p in module.named_parameters()
    }


@pytest.mark.parametrize("units", [1, 24])
def test_lstm_equals_torch_lstm_over_1000_steps(units):
    torch.manual_seed(units)
    ref = torch.nn.LSTM(5, units, batch_first=True)
    with torch.no_grad():  # larger weights than torch's init: gates saturate now and then
        for p in ref.parameters():
            p.mul_(3.0)
    cell = LSTMCell({"type": "lstm", "input_size": 5, "units": units}, _torch_weights(ref))
    x = _inputs(5)
    with torch.no_grad():
        out, (h_n, c_n) = ref(torch.as_tensor(x)[None])
    state = np.zeros(2 * units, np.float32)
    ys = []
    for k in range(STEPS):
        y, state = cell.step(x[k], state, 1.0)
        ys.append(y.copy())
    np.testing.assert_allclose(np.array(ys), out[0].numpy(), atol=1e-5, rtol=0)
    # the state layout is [h | c]
    np.testing.assert_allclose(state[:units], h_n[0, 0].numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(state[units:], c_n[0, 0].numpy(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("units", [1, 24])
def test_gru_equals_torch_gru_over_1000_steps(units):
    torch.manual_seed(units)
    ref = torch.nn.GRU(5, units, batch_first=True)
    with torch.no_grad():
        for p in ref.parameters():
            p.mul_(3.0)
    cell = GRUCell({"type": "gru", "input_size": 5, "units": units}, _torch_weights(ref))
    x = _inputs(5, seed=1)
    with torch.no_grad():
        out, _ = ref(torch.as_tensor(x)[None])
    h = np.zeros(units, np.float32)
    ys = []
    for k in range(STEPS):
        y, h = cell.step(x[k], h, 0.3)
        ys.append(y.copy())
    np.testing.assert_allclose(np.array(ys), out[0].numpy(), atol=1e-5, rtol=0)


@pytest.mark.parametrize(("frames", "activation"), [(1, "tanh"), (3, "tanh"), (2, "relu")])
def test_mlp_equals_torch_over_stacked_frames(frames, activation):
    torch.manual_seed(frames)
    act = torch.nn.Tanh() if activation == "tanh" else torch.nn.ReLU()
    ref = torch.nn.Sequential(torch.nn.Linear(frames * 4, 16), act, torch.nn.Linear(16, 8), act)
    tensors = {
        "layers.0.weight": ref[0].weight.detach().numpy(),
        "layers.0.bias": ref[0].bias.detach().numpy(),
        "layers.1.weight": ref[2].weight.detach().numpy(),
        "layers.1.bias": ref[2].bias.detach().numpy(),
    }
    config = {
        "type": "mlp",
        "input_size": 4,
        "hidden_units": [16, 8],
        "activation": activation,
        "frames": frames,
    }
    cell = MLPCell(config, tensors)
    assert cell.state_dim == (frames - 1) * 4 and cell.output_dim == 8
    x = _inputs(4, seed=2)
    padded = np.concatenate([np.zeros((frames - 1, 4), np.float32), x])
    # row k: [x_k, x_{k-1}, ..., x_{k-frames+1}], zeros before the first input
    stacked = np.concatenate(
        [padded[frames - 1 - j : frames - 1 - j + STEPS] for j in range(frames)], 1
    )
    with torch.no_grad():
        want = ref(torch.as_tensor(stacked)).numpy()
    state = np.zeros(cell.state_dim, np.float32)
    ys = []
    for k in range(STEPS):
        y, state = cell.step(x[k], state, 1.0)
        ys.append(y.copy())
    np.testing.assert_allclose(np.array(ys), want, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(state, stacked[-1, : cell.state_dim])


@pytest.mark.parametrize("kind", ["lstm", "gru", "mlp"])
def test_random_baseline_policy_survives_its_file(kind, tmp_path):
    policy = random_policy(4, 2, cell=kind, units=8, seed=3, obs_std=np.full(4, 2.0))
    expected_state = {"lstm": 16, "gru": 8, "mlp": 0}[kind]
    assert policy.state_dim == expected_state
    assert policy.metadata.cell["type"] == kind and policy.metadata.cell["proj_size"] == 2
    path = tmp_path / "p.safetensors"
    policy.save(path)
    loaded = Policy.load(path)
    obs = _inputs(4, seed=4).astype(np.float64)[:200]
    a = np.array([policy.step(o, 0.02) for o in obs])
    b = np.array([loaded.step(o, 0.02) for o in obs])
    np.testing.assert_array_equal(a, b)
    assert np.ptp(a[:, 0]) > 1e-3  # the actions really depend on the observations
    np.testing.assert_array_equal(policy.state, loaded.state)
    # reset brings back the first action
    loaded.reset()
    np.testing.assert_array_equal(loaded.step(obs[0], 0.02), a[0])


def test_stacked_mlp_policy_remembers_previous_observations():
    policy = random_policy(3, 1, cell="mlp", units=8, cell_options={"frames": 3})
    assert policy.state_dim == 6
    first = policy.step(np.ones(3), 0.01)
    policy.step(np.full(3, 2.0), 0.01)
    # state: the last two normalised inputs, newest first
    np.testing.assert_array_equal(policy.state, [2, 2, 2, 1, 1, 1])
    policy.reset()
    np.testing.assert_array_equal(policy.step(np.ones(3), 0.01), first)


def test_policy_state_of_an_lstm_is_h_then_c():
    policy = random_policy(2, 1, cell="lstm", units=3, seed=5)
    state = np.array([0.5, -0.2, 0.1, 1.5, -0.7, 0.3], np.float32)
    policy.state = state
    policy.step(np.array([0.4, -1.0]), 0.01)
    ref = torch.nn.LSTMCell(2, 3)
    weights = policy.cell.weights()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            p.copy_(torch.as_tensor(weights[name]))
        h, c = ref(
            torch.tensor([[0.4, -1.0]]),
            (torch.as_tensor(state[None, :3]), torch.as_tensor(state[None, 3:])),
        )
    np.testing.assert_allclose(policy.state[:3], h[0].numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(policy.state[3:], c[0].numpy(), atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"type": "lstm", "input_size": 3, "units": 0}, "cell.units must be an integer >= 1"),
        ({"type": "gru", "input_size": True, "units": 4}, "cell.input_size must be an integer"),
        (
            {"type": "mlp", "input_size": 3, "hidden_units": [], "activation": "tanh", "frames": 1},
            "cell.hidden_units must be a list",
        ),
        (
            {
                "type": "mlp",
                "input_size": 3,
                "hidden_units": [4],
                "activation": "gelu",
                "frames": 1,
            },
            "cell.activation must be one of",
        ),
        (
            {
                "type": "mlp",
                "input_size": 3,
                "hidden_units": [4],
                "activation": "tanh",
                "frames": 0,
            },
            "cell.frames must be an integer >= 1",
        ),
    ],
)
def test_bad_baseline_configs_are_named(config, message):
    problems = cells.check_config(config)
    assert any(message in p for p in problems), problems


def test_policy_file_with_a_misshapen_lstm_tensor_is_refused(tmp_path):
    policy = random_policy(3, 1, cell="lstm", units=4)
    path = tmp_path / "p.safetensors"
    policy.save(path)
    meta, tensors = read_policy_file(path)
    assert meta.cell["type"] == "lstm"
    tensors["cell.weight_hh"] = tensors["cell.weight_hh"][:, :3].copy()
    with pytest.raises(PolicyFileError, match=r"cell.weight_hh.*expected float32\[16, 4\]"):
        write_policy_file(path, meta, tensors)
