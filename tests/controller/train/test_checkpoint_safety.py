"""A checkpoint is read without running code, and a damaged one gets one clean line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.train import checkpoint as ckpt
from liquidnode.controller.train.config import TrainConfig
from liquidnode.controller.train.envs import env_info


class _Payload:
    """Unpickling this would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _valid_state() -> dict:
    return {
        "version": ckpt.CHECKPOINT_VERSION,
        "config": {"cell": "cfc", "units": 4, "backbone_units": 8, "critic_units": 64},
        "env_id": "InvertedPendulum-v5",
        "obs_dim": 4,
        "act_dim": 1,
        "actor": {"w": torch.zeros(2)},
        "critic": {"w": torch.zeros(2)},
        "optimizer": {"state": {}, "param_groups": []},
        "obs_rms": {"mean": torch.zeros(4, dtype=torch.float64),
                    "var": torch.ones(4, dtype=torch.float64), "count": 1.0},
        "ret_rms": {"mean": torch.zeros((), dtype=torch.float64),
                    "var": torch.ones((), dtype=torch.float64), "count": 1.0},
        "global_step": 10,
        "wall_time_s": 1.0,
    }  # fmt: skip


@pytest.fixture(scope="module")
def info():
    return env_info("InvertedPendulum-v5")


def test_a_crafted_checkpoint_does_not_run_code(tmp_path, info):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({**_valid_state(), "actor": _Payload(marker)}, path)
    with pytest.raises(LiquidNodeError, match="holds more than tensors and plain data") as exc:
        ckpt.load(path, info, TrainConfig(units=4, backbone_units=8))
    assert not marker.exists()
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("env_id"), "key 'env_id' is missing"),
        (lambda s: s.pop("optimizer"), "key 'optimizer' is missing"),
        (lambda s: s.update(obs_dim="4"), "'obs_dim' must be an integer >= 1, got str"),
        (lambda s: s.update(actor=[1, 2]), "'actor' must be a dict of tensors"),
        (lambda s: s.update(global_step=-1), "'global_step' must be an integer >= 0"),
        (lambda s: s.update(wall_time_s=float("nan")), "'wall_time_s' must be a finite"),
        (lambda s: s["obs_rms"].update(var=-torch.ones(4)), "'obs_rms' must be running stat"),
        (lambda s: s.update(version=1), "version 1"),
    ],
)
def test_a_malformed_checkpoint_gets_one_line(tmp_path, info, change, message):
    state = _valid_state()
    change(state)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(LiquidNodeError, match=message) as exc:
        ckpt.load(path, info, TrainConfig(units=4, backbone_units=8))
    assert "\n" not in str(exc.value)


def test_non_regular_and_garbage_files_are_refused_without_reading(tmp_path, info):
    fifo = tmp_path / "fifo.pt"
    os.mkfifo(fifo)
    with pytest.raises(LiquidNodeError, match="not a regular file"):
        ckpt.load(fifo, info, TrainConfig())
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x80\x04garbage" * 10)
    with pytest.raises(LiquidNodeError, match="is not a liquidnode checkpoint"):
        ckpt.load(junk, info, TrainConfig())


def test_a_checkpoint_of_another_model_shape_gets_one_line(tmp_path):
    from liquidnode.controller.train.agent import Critic

    state = _valid_state()
    state["critic"] = {"net.0.weight": torch.zeros(3, 3)}
    critic = Critic(4, 8)
    with pytest.raises(LiquidNodeError, match="does not fit the model"):
        ckpt.restore("x.pt", state, critic, critic, None, None, None)
