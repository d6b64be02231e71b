"""Policy files: round trip, and every kind of bad file raises PolicyFileError (no code runs)."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save

from liquidnode.controller.errors import PolicyFileError
from liquidnode.controller.policy import Policy, random_policy
from liquidnode.controller.policy_file import METADATA_KEY, read_policy_file

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POLICY = ROOT / "policies" / "InvertedPendulum-v5-cfc.safetensors"


@pytest.fixture(params=["cfc", "wired_cfc", "ltc", "ltc_fc"])
def policy(request):
    return random_policy(4, 2, cell=request.param, units=12, seed=3, env_id="Test-v0")


def _write(path: Path, meta: dict | str, tensors: dict[str, np.ndarray]) -> Path:
    text = meta if isinstance(meta, str) else json.dumps(meta)
    path.write_bytes(save(tensors, metadata={METADATA_KEY: text}))
    return path


def _parts(policy: Policy, tmp_path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    path = tmp_path / "good.safetensors"
    policy.save(path)
    meta, tensors = read_policy_file(path)
    return json.loads(meta.to_json()), tensors


def test_round_trip_gives_identical_actions(policy, tmp_path):
    path = tmp_path / "p.safetensors"
    policy.save(path)
    loaded = Policy.load(path)
    assert loaded.metadata == policy.metadata
    rng = np.random.default_rng(0)
    policy.reset()
    for _ in range(50):
        obs, dt = rng.normal(size=4), float(rng.uniform(0.01, 0.05))
        np.testing.assert_array_equal(loaded.step(obs, dt), policy.step(obs, dt))
    np.testing.assert_array_equal(loaded.state, policy.state)


def test_shipped_default_policy_loads_and_says_it_is_untrained():
    policy = Policy.load(DEFAULT_POLICY)
    assert (policy.obs_dim, policy.act_dim) == (4, 1)
    assert policy.metadata.env_id == "InvertedPendulum-v5"
    assert policy.metadata.control_rate_hz == 25.0
    low, high = policy.metadata.space_bounds("action")
    assert low.tolist() == [-3.0] and high.tolist() == [3.0]
    if not policy.is_trained:
        assert "UNTRAINED" in policy.metadata.provenance["note"]


def test_missing_file(tmp_path):
    with pytest.raises(PolicyFileError, match="does not exist"):
        Policy.load(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("keep", [0, 5, 8, 100, -1])
def test_truncated_file(policy, tmp_path, keep):
    good = tmp_path / "good.safetensors"
    policy.save(good)
    data = good.read_bytes()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(data[:keep] if keep >= 0 else data[:-7])
    with pytest.raises(PolicyFileError, match=str(bad)) as info:
        Policy.load(bad)
    assert "truncated" in str(info.value)


def test_garbage_file(tmp_path):
    bad = tmp_path / "garbage.safetensors"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(PolicyFileError, match="not a safetensors file"):
        Policy.load(bad)
    bad.write_bytes(struct.pack("<Q", 10) + b"not json!!" + b"\0" * 20)
    with pytest.raises(PolicyFileError, match="header is not JSON"):
        Policy.load(bad)


class _Boom:
    """Unpickling this would create the directory ``target``."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        import os

        return (os.mkdir, (self.target,))


def test_pickle_file_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "unpickled"
    bad = tmp_path / "policy.pt"
    bad.write_bytes(pickle.dumps({"weights": _Boom(str(marker))}))
    with pytest.raises(PolicyFileError, match="not a safetensors file"):
        Policy.load(bad)
    assert not marker.exists()


def test_safetensors_without_liquidnode_metadata(tmp_path):
    bad = tmp_path / "plain.safetensors"
    bad.write_bytes(save({"w": np.zeros(3, np.float32)}))
    with pytest.raises(PolicyFileError, match="no liquidnode metadata"):
        Policy.load(bad)


def test_metadata_that_is_not_json(policy, tmp_path):
    _, tensors = _parts(policy, tmp_path)
    bad = _write(tmp_path / "bad.safetensors", "{cell: cfc", tensors)
    with pytest.raises(PolicyFileError, match="not valid JSON"):
        Policy.load(bad)


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda m: m.update(format_version=99), "unknown format_version 99"),
        (lambda m: m["cell"].update(type="transformer"), "unknown cell type 'transformer'"),
        (lambda m: m.pop("cell"), "'cell' is missing"),
        (lambda m: m.update(obs_dim=5), "obs_dim 5 differs"),
        (lambda m: m.update(act_dim=3), "act_dim 3 differs"),
        (lambda m: m.update(time_scale=-1), "time_scale must be"),
        (lambda m: m.update(action={"squash": "sigmoid"}), "action.squash"),
        (lambda m: m.update(action={"squash": "tanh", "low_pass_hz": 0}), "low_pass_hz must"),
        (lambda m: m.update(action={"low_pass_hz": -2.5}), "low_pass_hz must be a number"),
        (lambda m: m.update(action={"low_pass_hz": "5"}), "low_pass_hz must be a number"),
        (lambda m: m.update(action={"low_pass_hz": True}), "low_pass_hz must be a number"),
        (lambda m: m.update(action={"low_pass": 5}), r"unknown action key\(s\) \['low_pass'\]"),
        (lambda m: m.update(normalization={"clip": 0}), "normalization.clip"),
        (lambda m: m.update(colour="blue"), "unknown metadata key 'colour'"),
        (lambda m: m["action_space"].update(low=[1.0]), "action_space.low"),
    ],
)
def test_bad_metadata(policy, tmp_path, change, message):
    meta, tensors = _parts(policy, tmp_path)
    change(meta)
    bad = _write(tmp_path / "bad.safetensors", meta, tensors)
    with pytest.raises(PolicyFileError, match=message) as info:
        Policy.load(bad)
    assert str(bad) in str(info.value)


def test_cell_hyper_parameter_mismatch_with_tensors(tmp_path):
    meta, tensors = _parts(random_policy(4, 2, cell="cfc", units=12), tmp_path)
    meta["cell"]["units"] = 13
    meta["cell"]["proj_size"] = 2
    bad = _write(tmp_path / "bad.safetensors", meta, tensors)
    with pytest.raises(PolicyFileError, match=r"tensor 'cell\.ff1\.weight' is float32\[12, 128\]"):
        Policy.load(bad)
    meta["cell"]["units"] = 12
    meta["cell"]["mode"] = "pure"
    bad = _write(tmp_path / "bad.safetensors", meta, tensors)
    with pytest.raises(PolicyFileError, match="missing tensors") as info:
        Policy.load(bad)
    assert "unexpected tensors" in str(info.value)


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda t: t.pop("obs_std"), r"missing tensors \['obs_std'\]"),
        (lambda t: t.update(extra=np.zeros(2, np.float32)), r"unexpected tensors \['extra'\]"),
        (lambda t: t.update(obs_mean=np.zeros(5, np.float32)), r"'obs_mean' is float32\[5\]"),
        (lambda t: t.update(obs_mean=np.zeros(4, np.int32)), r"'obs_mean' is int32\[4\]"),
        (lambda t: t.update(obs_std=np.zeros(4, np.float32)), "obs_std must be > 0"),
        (lambda t: t.update(action_scale=np.full(2, np.nan, np.float32)), "NaN or Inf"),
    ],
)
def test_bad_tensors(policy, tmp_path, change, message):
    meta, tensors = _parts(policy, tmp_path)
    change(tensors)
    bad = _write(tmp_path / "bad.safetensors", meta, tensors)
    with pytest.raises(PolicyFileError, match=message):
        Policy.load(bad)


def test_wiring_mask_mismatch_is_a_policy_file_error(tmp_path):
    meta, tensors = _parts(random_policy(4, 2, cell="ltc", units=12), tmp_path)
    tensors["cell.sparsity_mask"] = np.ones_like(tensors["cell.sparsity_mask"])
    bad = _write(tmp_path / "bad.safetensors", meta, tensors)
    with pytest.raises(PolicyFileError, match="sparsity_mask does not equal"):
        Policy.load(bad)


def test_save_refuses_inconsistent_policy(tmp_path):
    policy = random_policy(4, 2, cell="cfc", units=12)
    policy.metadata.time_scale = 0.0
    with pytest.raises(PolicyFileError, match="refusing to write"):
        policy.save(tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_numpy_values_and_infinite_bounds_in_metadata_are_stored_as_json(tmp_path):
    policy = random_policy(
        2,
        1,
        units=4,
        observation_space={"low": np.full(2, -np.inf), "high": [np.float32(1.5), np.inf]},
        provenance={"steps": np.int64(1000), "evaluation": {"mean_return": np.float64(9.5)}},
    )
    policy.save(tmp_path / "p.safetensors")
    loaded = Policy.load(tmp_path / "p.safetensors")
    assert loaded.metadata.observation_space["low"] == [None, None]
    assert loaded.metadata.provenance["steps"] == 1000
    low, high = loaded.metadata.space_bounds("observation")
    assert low.tolist() == [-np.inf, -np.inf] and high.tolist() == [1.5, np.inf]
    bad = random_policy(2, 1, units=4, provenance={"loss": float("nan")})
    with pytest.raises(PolicyFileError, match="cannot be stored as JSON"):
        bad.save(tmp_path / "bad.safetensors")


_ODD_VALUES = (None, -1, 0, 1.5, "x", [], {}, True, 10**9, [0, 1], float("1e300"))


def _mutate(obj, rng):
    """Replace one randomly chosen value somewhere inside a JSON object."""
    if isinstance(obj, dict) and obj:
        key = rng.choice(sorted(obj))
        obj[key] = _mutate(obj[key], rng) if rng.random() < 0.5 else rng.choice(_ODD_VALUES)
        return obj
    if isinstance(obj, list) and obj:
        i = rng.randrange(len(obj))
        obj[i] = _mutate(obj[i], rng)
        return obj
    return rng.choice(_ODD_VALUES)


@pytest.mark.parametrize("kind", ["cfc", "wired_cfc", "ltc"])
def test_corrupted_files_raise_policy_file_error_or_load(kind, tmp_path):
    """Fuzz: flipped header bytes and odd metadata values never escape as another error."""
    import random

    rng = random.Random(kind)
    good = tmp_path / "good.safetensors"
    random_policy(3, 2, cell=kind, units=8).save(good)
    data = good.read_bytes()
    header_len = int.from_bytes(data[:8], "little")
    meta, tensors = read_policy_file(good)
    raw = json.loads(meta.to_json())
    path = tmp_path / "fuzz.safetensors"
    rejected = 0
    for i in range(300):
        if i % 2:
            blob = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                blob[rng.randrange(8, 8 + header_len)] = rng.randrange(256)
            path.write_bytes(bytes(blob))
        else:
            _write(path, _mutate(json.loads(json.dumps(raw)), rng), tensors)
        try:
            Policy.load(path).step(np.zeros(3), 0.02)
        except PolicyFileError:
            rejected += 1
    assert rejected > 150  # most corruptions are caught, and none escapes as another error
