"""Resumable training checkpoints: tensors and plain data only, read without running code.

A checkpoint holds the actor, critic and optimiser state dicts, the observation / reward
statistics, the environment step count, the accumulated wall time, the training config and
the env's sizes. It is written by ``torch.save`` holding nothing but tensors, dicts, lists,
strings and numbers, and read by ``torch.load(weights_only=True)``, whose unpickler refuses
every other object: a crafted checkpoint cannot execute code. What it holds is then checked
against a schema (every key, its type and range) before anything is restored, so a damaged
or foreign file gets one line naming the problem instead of a ``KeyError`` or a half-restored
model. Checkpoints are for resuming training only; the deployable artefact is the
safetensors policy file.
"""

from __future__ import annotations

import dataclasses
import math
import os
import stat
import warnings
from pathlib import Path
from typing import Any

import torch

from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.train.config import TrainConfig
from liquidnode.controller.train.envs import EnvInfo, check_matches

CHECKPOINT_VERSION = 2
#: Largest checkpoint read, bytes (the biggest cells make a few MB).
MAX_CHECKPOINT_BYTES = 1 << 30


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
        "obs_rms": _rms_tensors(obs_norm.rms.state_dict()),
        "ret_rms": _rms_tensors(reward_scaler.rms.state_dict()),
        "global_step": int(global_step),
        "wall_time_s": float(wall_time_s),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _rms_tensors(state: dict[str, Any]) -> dict[str, Any]:
    """Running mean/var statistics with their arrays as float64 tensors (weights_only-safe)."""
    return {
        "mean": torch.as_tensor(state["mean"], dtype=torch.float64),
        "var": torch.as_tensor(state["var"], dtype=torch.float64),
        "count": float(state["count"]),
    }


def load(path: str | os.PathLike[str], info: EnvInfo, cfg: TrainConfig) -> dict[str, Any]:
    """Read a checkpoint (no code runs), check its schema and that it fits ``info`` and
    ``cfg``'s cell.

    Returns:
        The checkpoint dict; ``obs_rms``/``ret_rms`` hold numpy arrays again.

    Raises:
        LiquidNodeError: missing, non-regular, oversized or unreadable file, a file that is
            not a liquidnode checkpoint of this version, a missing or mistyped key, or a
            checkpoint for another env, other spaces or another cell / size
            (:class:`SpaceMismatchError` for spaces).
    """
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        raise LiquidNodeError(f"checkpoint {path} does not exist") from None
    if not stat.S_ISREG(st.st_mode):
        raise LiquidNodeError(f"checkpoint {path} is not a regular file")
    if st.st_size > MAX_CHECKPOINT_BYTES:
        raise LiquidNodeError(
            f"checkpoint {path} is {st.st_size} bytes, more than {MAX_CHECKPOINT_BYTES}"
        )
    try:
        with warnings.catch_warnings():  # its note on foreign pickle protocols: we refuse anyway
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LiquidNodeError(
            f"checkpoint {path} is not a liquidnode checkpoint or holds more than tensors and "
            f"plain data ({first})"
        ) from None
    problem = schema_problem(state)
    if problem:
        raise LiquidNodeError(f"checkpoint {path}: {problem}")
    check_matches(info, state["env_id"], state["obs_dim"], state["act_dim"], f"checkpoint {path}")
    saved = state["config"]
    # checkpoints from before those flags
    defaults = {"frames": 1, "latency_input": False, "privileged_critic": False}
    keys = ("cell", "units", "backbone_units", "critic_units", "frames", "latency_input",
            "privileged_critic")  # fmt: skip
    for key in keys:
        if saved.get(key, defaults.get(key)) != getattr(cfg, key):
            raise LiquidNodeError(
                f"checkpoint {path} has {key}={saved.get(key)!r} but this run asks for "
                f"{getattr(cfg, key)!r}; pass the same --{key.replace('_', '-')}"
            )
    for key in ("obs_rms", "ret_rms"):
        rms = state[key]
        state[key] = {"mean": rms["mean"].numpy(), "var": rms["var"].numpy(), "count": rms["count"]}
    return state


def _is_int(v: Any, minimum: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


def _is_tensor_dict(v: Any) -> bool:
    return isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(t, torch.Tensor) for k, t in v.items()
    )


def schema_problem(state: Any) -> str | None:
    """What is wrong with a loaded checkpoint's structure (None when it is well formed)."""
    if not isinstance(state, dict):
        return f"not a liquidnode checkpoint (a {type(state).__name__}, not a dict)"
    version = state.get("version")
    if version != CHECKPOINT_VERSION:
        return (
            f"not a liquidnode checkpoint of version {CHECKPOINT_VERSION} (version "
            f"{version!r}); start a new run"
        )
    checks = {
        "config": (lambda v: isinstance(v, dict), "an object"),
        "env_id": (lambda v: isinstance(v, str), "a string"),
        "obs_dim": (lambda v: _is_int(v, 1), "an integer >= 1"),
        "act_dim": (lambda v: _is_int(v, 1), "an integer >= 1"),
        "actor": (_is_tensor_dict, "a dict of tensors"),
        "critic": (_is_tensor_dict, "a dict of tensors"),
        "optimizer": (
            lambda v: (
                isinstance(v, dict)
                and isinstance(v.get("state"), dict)
                and isinstance(v.get("param_groups"), list)
            ),
            "an optimiser state (state, param_groups)",
        ),
        "obs_rms": (_rms_ok, "running statistics (mean, var, count)"),
        "ret_rms": (_rms_ok, "running statistics (mean, var, count)"),
        "global_step": (_is_int, "an integer >= 0"),
        "wall_time_s": (
            lambda v: isinstance(v, (int, float)) and math.isfinite(v) and v >= 0,
            "a finite number >= 0",
        ),
    }
    for key, (ok, what) in checks.items():
        if key not in state:
            return f"key {key!r} is missing"
        if not ok(state[key]):
            return f"{key!r} must be {what}, got {type(state[key]).__name__}"
    if tuple(state["obs_rms"]["mean"].shape) != (state["obs_dim"],):
        return (
            f"obs_rms.mean has shape {tuple(state['obs_rms']['mean'].shape)}, expected "
            f"({state['obs_dim']},)"
        )
    return None


def _rms_ok(v: Any) -> bool:
    if not isinstance(v, dict) or set(v) != {"mean", "var", "count"}:
        return False
    mean, var, count = v["mean"], v["var"], v["count"]
    return (
        isinstance(mean, torch.Tensor)
        and isinstance(var, torch.Tensor)
        and mean.shape == var.shape
        and mean.dim() <= 1
        and bool(torch.isfinite(mean).all())
        and bool(torch.isfinite(var).all() and (var >= 0).all())
        and isinstance(count, (int, float))
        and math.isfinite(count)
        and count >= 0
    )


def restore(
    path: str | os.PathLike[str],
    state: dict[str, Any],
    actor: torch.nn.Module,
    critic: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    obs_norm: Any,
    reward_scaler: Any,
) -> None:
    """Load a checkpoint's state into the models, optimiser and statistics.

    Raises:
        LiquidNodeError: a tensor's name or shape does not fit the models, or the optimiser
            state does not fit its parameters.
    """
    try:
        actor.load_state_dict(state["actor"])
        critic.load_state_dict(state["critic"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LiquidNodeError(f"checkpoint {path} does not fit the model: {first}") from None
    obs_norm.rms.load_state_dict(state["obs_rms"])
    reward_scaler.rms.load_state_dict(state["ret_rms"])
