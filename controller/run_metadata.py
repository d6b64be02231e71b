"""What a control-loop run records about itself, as plain JSON-able values.

The loop's run metadata (``recorder.start``) names the plant, the safety layer and the policy
it ran; these functions turn each into a JSON-able dict: :func:`plant_spec_json`,
:func:`safety_json`, :func:`policy_json` (with the policy file's sha256, :func:`file_sha256`).
:func:`jsonable` is the conversion underneath (numpy arrays and scalars, dataclasses).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any

import numpy as np

from liquidnode.controller.plant import Plant
from liquidnode.controller.safety import SafetyLayer


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def jsonable(value: Any) -> Any:
    """Numpy arrays/scalars and dataclasses -> plain JSON-able values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def plant_spec_json(plant: Plant) -> dict[str, Any]:
    """A plant's spec (and ``self_paced``) as a JSON-able dict, for run metadata."""
    spec = plant.spec
    out = jsonable(dataclasses.asdict(spec))
    out["rate_hz"] = spec.rate_hz
    out["self_paced"] = bool(plant.self_paced)
    return out


def safety_json(safety: SafetyLayer) -> dict[str, Any]:
    """The safety layer's limits: ``low``, ``high``, ``safe_action`` (env units, action order)
    and ``max_rate`` (units per second, or None)."""
    return {
        "low": safety.low.tolist(),
        "high": safety.high.tolist(),
        "safe_action": safety.safe_action.tolist(),
        "max_rate": None if safety.max_rate is None else safety.max_rate.tolist(),
    }


def policy_json(policy: Any, path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """``policy`` (its ``metadata``, if it has one) and the file it was loaded from.

    Args:
        policy: the policy; a ``metadata`` attribute is recorded, a ``path`` attribute
            stands in for a missing ``path``.
        path: the policy file, or None.

    Returns:
        ``{"policy": metadata or None, "policy_path": str or None, "policy_sha256": hex or
        None}``.
    """
    metadata = getattr(policy, "metadata", None)
    path = path or getattr(policy, "path", None)
    return {
        "policy": jsonable(metadata) if metadata is not None else None,
        "policy_path": None if path is None else os.fspath(path),
        "policy_sha256": None if path is None else file_sha256(path),
    }
