"""Training configurations for the short real training runs of the tests.

:func:`quick_config` is what every short run shares (InvertedPendulum-v5, one env, no
periodic evaluation, one final episode, no progress bar, no TensorBoard);
:func:`tiny_config` adds the smallest sizes and a run folder, for tests that only need a
run to exist (checkpoints, resume, errors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liquidnode.controller.train.config import TrainConfig

#: The fields every short test run shares; a test overrides any of them.
QUICK: dict[str, Any] = {
    "env": "InvertedPendulum-v5",
    "envs": 1,
    "eval_interval": 0,
    "final_eval_episodes": 1,
    "progress": False,
    "tensorboard": False,
}


def quick_config(**fields: Any) -> TrainConfig:
    """:data:`QUICK` with ``fields`` overriding or adding :class:`TrainConfig` fields."""
    return TrainConfig(**{**QUICK, **fields})


def tiny_config(tmp_path: Path, **fields: Any) -> TrainConfig:
    """The smallest run: 4 units (backbone 8), 256 steps in rollouts of 128, 2 minibatches,
    1 epoch, its run folder ``tmp_path / "run"``; ``fields`` override or add."""
    tiny: dict[str, Any] = {
        "units": 4,
        "backbone_units": 8,
        "steps": 256,
        "rollout_steps": 128,
        "minibatches": 2,
        "epochs": 1,
        "run_dir": str(tmp_path / "run"),
    }
    return quick_config(**{**tiny, **fields})
