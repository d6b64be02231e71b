"""Resumable training checkpoints (``torch.save`` of state dicts plus plain data).

A checkpoint holds the actor, critic and optimiser state dicts, the observation / reward
statistics, the environment step count, the accumulated wall time, the training config and
the env's sizes. Checkpoints are for resuming training only; the deployable artefact is the
safetensors policy file.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.train.config import TrainConfig
from liquidnode.controller.train.envs import EnvInfo, check_matches

CHECKPOINT_VERSION = 1


def save(
    path: Path,
    cfg: TrainConfig,
    info: EnvInfo,
    actor: torch.nn.Module,
    critic: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    obs_norm: Any,
    reward_scaler: Any,
    global_step: int,
    wall_time_s: float,
) -> None:
    """Write a checkpoint atomically to ``path`` (parent directories are created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "version": CHECKPOINT_VERSION,
        "config": dataclasses.asdict(cfg),
        "env_id": info.env_id,
        "obs_dim": info.obs_dim,
        "act_dim": info.act_dim,
        "actor": actor.state_dict(),
        "critic": critic.state_dict(),
        "optimizer": optimizer.state_dict(),
        "obs_rms": obs_norm.rms.state_dict(),
        "ret_rms": reward_scaler.rms.state_dict(),
        "global_step": int(global_step),
        "wall_time_s": float(wall_time_s),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load(path: str | os.PathLike[str], info: EnvInfo, cfg: TrainConfig) -> dict[str, Any]:
    """Read a checkpoint and check it fits ``info`` and ``cfg``'s cell.

    Raises:
        LiquidNodeError: missing or unreadable file, or a checkpoint for another env, other
            spaces or another cell / size (:class:`SpaceMismatchError` for spaces).
    """
    path = Path(path)
    if not path.is_file():
        raise LiquidNodeError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise LiquidNodeError(f"checkpoint {path} is not a liquidnode checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise LiquidNodeError(
            f"checkpoint {path} is not a liquidnode checkpoint (version "
            f"{state.get('version') if isinstance(state, dict) else None!r})"
        )
    check_matches(info, state["env_id"], state["obs_dim"], state["act_dim"], f"checkpoint {path}")
    saved = state["config"]
    for key in ("cell", "units", "backbone_units", "critic_units"):
        if saved.get(key) != getattr(cfg, key):
            raise LiquidNodeError(
                f"checkpoint {path} has {key}={saved.get(key)!r} but this run asks for "
                f"{getattr(cfg, key)!r}; pass the same --{key.replace('_', '-')}"
            )
    return state
