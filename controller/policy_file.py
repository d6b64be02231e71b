"""Policy files: one safetensors file, float32/int32 tensors plus JSON metadata. No pickle.

Layout: the safetensors ``__metadata__`` holds one key, ``liquidnode``, whose value is the JSON of
:class:`PolicyMetadata`. Tensors (all little-endian):

| name | dtype | shape | meaning |
|---|---|---|---|
| ``obs_mean`` | float32 | ``(obs_dim,)`` | observation mean, env units |
| ``obs_std`` | float32 | ``(obs_dim,)`` | observation std, env units, > 0 |
| ``action_scale`` | float32 | ``(act_dim,)`` | action = offset + scale * squash(y) |
| ``action_offset`` | float32 | ``(act_dim,)`` | env units |
| ``cell.<name>`` | float32 / int32 | per cell | cell weights, see :mod:`controller.cells` |

Reading parses the header itself (no code is ever executed) and checks everything: file size,
header JSON, metadata schema and ``format_version``, cell type and hyper-parameters, the exact set
of tensor names, every shape and dtype, finiteness, and that the metadata agrees with the tensors.
Any problem raises :class:`~controller.errors.PolicyFileError` naming the problem and the path.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from liquidnode.controller import cells
from liquidnode.controller.errors import PolicyFileError
from liquidnode.controller.latency_input import latency_input_problems
from liquidnode.controller.untrusted import loads_bounded, read_bounded

FORMAT_VERSION = 1
METADATA_KEY = "liquidnode"
SQUASHES = ("none", "tanh")
_ACTION_KEYS = {"squash", "feedback", "low_pass_hz"}
POLICY_TENSORS = ("obs_mean", "obs_std", "action_scale", "action_offset")
_DTYPES = {"F32": ("float32", np.dtype("<f4")), "I32": ("int32", np.dtype("<i4"))}
_MAX_HEADER = 100_000_000
#: Largest policy file read, bytes (the largest shipped policy is well under 1 MB).
MAX_POLICY_BYTES = 256 * 1024 * 1024
#: Longest metadata JSON, characters.
MAX_METADATA_CHARS = 1_000_000


@dataclass
class PolicyMetadata:
    """The JSON metadata of a policy file.

    Attributes:
        cell: cell config: ``type`` (``cfc``/``wired_cfc``/``ltc``, or the baselines
            ``lstm``/``gru``/``mlp``), hyper-parameters, ``wiring`` (see
            :mod:`controller.cells`), optional ``proj_size``.
        obs_dim: observation length (= the cell's ``input_size``, less one with a latency
            input, less ``act_dim`` with action feedback).
        act_dim: action length (= the cell's output length).
        observation_space: ``low``/``high`` (lists of numbers, ``null`` entries = unbounded, or
            ``null``), ``names`` and ``units`` (lists of str, or ``null``).
        action_space: as ``observation_space``, for the actions (env units).
        normalization: ``clip``: observations are clipped to ``[-clip, clip]`` after
            normalisation; ``null`` = no clipping.
        action: ``squash``: ``"none"`` or ``"tanh"``; ``feedback`` (optional, default false):
            the cell also gets the previous squashed action (:mod:`controller.policy`);
            ``low_pass_hz`` (optional, a number > 0): the cut-off of the first-order low-pass
            every action passes through (:mod:`controller.action_filter`).
        time_scale: the cell's time input is ``dt [s] * time_scale`` (> 0).
        latency_input: ``null``, or ``{"low", "high", "mean", "std"}`` (control periods): the
            cell also gets the actuation latency (:mod:`controller.latency_input`); written
            only when set.
        control_rate_hz: the rate the policy was made for, or ``null``.
        env_id: the environment it was made for (e.g. ``"InvertedPendulum-v5"``), or ``null``.
        provenance: how it was made: ``trained`` (bool), ``created_by``, ``created_at``,
            ``command``, ``steps``, ``seed``, ``wall_time_s``, ``evaluation``, ``git_commit``...
        format_version: policy file format version (this code reads and writes 1).
    """

    cell: dict[str, Any]
    obs_dim: int
    act_dim: int
    observation_space: dict[str, Any] = field(
        default_factory=lambda: {"low": None, "high": None, "names": None}
    )
    action_space: dict[str, Any] = field(
        default_factory=lambda: {"low": None, "high": None, "names": None}
    )
    normalization: dict[str, Any] = field(default_factory=lambda: {"clip": None})
    action: dict[str, Any] = field(default_factory=lambda: {"squash": "none"})
    time_scale: float = 1.0
    latency_input: dict[str, Any] | None = None
    control_rate_hz: float | None = None
    env_id: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        """The metadata as a JSON string (what goes into the file).

        numpy scalars and arrays become plain numbers and lists, and infinite space bounds
        become ``null`` (unbounded). Raises PolicyFileError for what JSON cannot hold (NaN,
        arbitrary objects), naming the field.
        """
        raw = _jsonable(asdict(self), "metadata")
        if raw.get("latency_input") is None:  # files without the input keep their bytes
            raw.pop("latency_input", None)
        for key in ("observation_space", "action_space"):
            space = raw.get(key)
            if isinstance(space, dict):
                for bound in ("low", "high"):
                    vals = space.get(bound)
                    if isinstance(vals, list):
                        space[bound] = [
                            None if isinstance(v, float) and math.isinf(v) else v for v in vals
                        ]
        try:
            return json.dumps(raw, sort_keys=True, allow_nan=False)
        except ValueError as exc:
            raise PolicyFileError(f"metadata cannot be stored as JSON: {exc}") from None

    def space_bounds(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` float64 of the ``"observation"``/``"action"`` space (±inf if unset)."""
        space = self.observation_space if which == "observation" else self.action_space
        dim = self.obs_dim if which == "observation" else self.act_dim
        out = []
        for key, fill in (("low", -math.inf), ("high", math.inf)):
            vals = space.get(key)
            vals = [fill] * dim if vals is None else [fill if v is None else v for v in vals]
            out.append(np.asarray(vals, dtype=np.float64))
        return out[0], out[1]


def _jsonable(obj: Any, where: str) -> Any:
    """``obj`` with numpy scalars/arrays and tuples turned into JSON types (recursively)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist(), where)
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise PolicyFileError(f"{where} = {obj!r} cannot be stored as JSON")


def _is_int(v: Any, minimum: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def metadata_problems(raw: Any) -> list[str]:
    """Problems with a metadata JSON object (empty list when it is well formed)."""
    if not isinstance(raw, dict):
        return [f"metadata must be a JSON object, got {type(raw).__name__}"]
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        return [f"unknown format_version {version!r} (this liquidnode reads {FORMAT_VERSION})"]
    known = {f for f in PolicyMetadata.__dataclass_fields__}
    problems = [f"unknown metadata key {k!r}" for k in sorted(set(raw) - known)]
    for key in ("cell", "obs_dim", "act_dim"):
        if key not in raw:
            problems.append(f"metadata key {key!r} is missing")
    if problems:
        return problems
    problems += cells.check_config(raw["cell"])
    for key in ("obs_dim", "act_dim"):
        if not _is_int(raw[key], 1):
            problems.append(f"{key} must be an integer >= 1, got {raw[key]!r}")
    if problems:
        return problems
    cell = raw["cell"]
    in_size = cell["wiring"]["input_dim"] if "wiring" in cell else cell.get("input_size")
    act = raw.get("action")
    feedback = isinstance(act, dict) and act.get("feedback") is True
    latency = raw.get("latency_input") is not None
    if latency:
        problems += latency_input_problems(raw["latency_input"])
    if in_size != raw["obs_dim"] + latency + (raw["act_dim"] if feedback else 0):
        problems.append(
            f"obs_dim {raw['obs_dim']} differs from the cell's input size {in_size}"
            + (" less one (latency input)" if latency else "")
            + (f" less act_dim {raw['act_dim']} (action feedback)" if feedback else "")
        )
    if cells.output_dim(cell) != raw["act_dim"]:
        problems.append(
            f"act_dim {raw['act_dim']} differs from the cell's output size {cells.output_dim(cell)}"
        )
    for space_key, dim in (("observation_space", raw["obs_dim"]), ("action_space", raw["act_dim"])):
        space = raw.get(space_key, {"low": None, "high": None, "names": None})
        if not isinstance(space, dict):
            problems.append(f"{space_key} must be an object, got {space!r}")
            continue
        for key in ("low", "high", "names", "units"):
            vals = space.get(key)
            if vals is None:
                continue
            if not isinstance(vals, list) or len(vals) != dim:
                problems.append(f"{space_key}.{key} must be null or a list of {dim}, got {vals!r}")
            elif key in ("names", "units") and not all(isinstance(v, str) for v in vals):
                problems.append(f"{space_key}.{key} must be strings, got {vals!r}")
            elif key not in ("names", "units") and not all(v is None or _is_num(v) for v in vals):
                problems.append(f"{space_key}.{key} must hold numbers or null, got {vals!r}")
        low, high = space.get("low"), space.get("high")
        if (
            isinstance(low, list)
            and isinstance(high, list)
            and len(low) == len(high) == dim
            and all(v is None or _is_num(v) for v in low + high)
        ):
            reversed_ = [
                i for i, (lo, hi) in enumerate(zip(low, high, strict=True))
                if lo is not None and hi is not None and lo > hi
            ]  # fmt: skip
            if reversed_:
                problems.append(
                    f"{space_key} has low > high at index {reversed_}: low {low!r}, high {high!r}"
                )
    norm = raw.get("normalization", {"clip": None})
    clip = norm.get("clip") if isinstance(norm, dict) else None
    if not isinstance(norm, dict):
        problems.append(f"normalization must be an object, got {norm!r}")
    elif clip is not None and not (_is_num(clip) and clip > 0):
        problems.append(f"normalization.clip must be null or a number > 0, got {clip!r}")
    act = raw.get("action", {"squash": "none"})
    squash = act.get("squash", "none") if isinstance(act, dict) else None
    if not isinstance(act, dict):
        problems.append(f"action must be an object, got {act!r}")
    elif squash not in SQUASHES:
        problems.append(f"action.squash must be one of {SQUASHES}, got {squash!r}")
    elif not isinstance(act.get("feedback", False), bool):
        problems.append(f"action.feedback must be true or false, got {act['feedback']!r}")
    elif "low_pass_hz" in act and not (_is_num(act["low_pass_hz"]) and act["low_pass_hz"] > 0):
        cutoff = act["low_pass_hz"]
        problems.append(f"action.low_pass_hz must be a number of Hz > 0, got {cutoff!r}")
    elif set(act) - _ACTION_KEYS:
        problems.append(f"unknown action key(s) {sorted(set(act) - _ACTION_KEYS)}")
    ts = raw.get("time_scale", 1.0)
    if not (_is_num(ts) and ts > 0):
        problems.append(f"time_scale must be a number > 0, got {ts!r}")
    rate = raw.get("control_rate_hz")
    if rate is not None and not (_is_num(rate) and rate > 0):
        problems.append(f"control_rate_hz must be null or a number > 0, got {rate!r}")
    if raw.get("env_id") is not None and not isinstance(raw["env_id"], str):
        problems.append(f"env_id must be null or a string, got {raw['env_id']!r}")
    if not isinstance(raw.get("provenance", {}), dict):
        problems.append(f"provenance must be an object, got {raw['provenance']!r}")
    return problems


def expected_tensors(meta: PolicyMetadata) -> dict[str, tuple[tuple[int, ...], str]]:
    """Name -> (shape, dtype) of every tensor a file with this metadata must hold."""
    specs: dict[str, tuple[tuple[int, ...], str]] = {
        "obs_mean": ((meta.obs_dim,), "float32"),
        "obs_std": ((meta.obs_dim,), "float32"),
        "action_scale": ((meta.act_dim,), "float32"),
        "action_offset": ((meta.act_dim,), "float32"),
    }
    specs.update({f"cell.{k}": v for k, v in cells.tensor_specs(meta.cell).items()})
    return specs


def tensor_problems(meta: PolicyMetadata, tensors: dict[str, np.ndarray]) -> list[str]:
    """Problems with the tensors given the metadata (empty list when they match)."""
    specs = expected_tensors(meta)
    missing = sorted(set(specs) - set(tensors))
    extra = sorted(set(tensors) - set(specs))
    problems = []
    if missing:
        problems.append(f"missing tensors {missing}")
    if extra:
        problems.append(f"unexpected tensors {extra} for cell type {meta.cell['type']!r}")
    for name in sorted(set(specs) & set(tensors)):
        shape, dtype = specs[name]
        arr = tensors[name]
        if tuple(arr.shape) != shape or arr.dtype != np.dtype(dtype):
            problems.append(
                f"tensor {name!r} is {arr.dtype}{list(arr.shape)}, expected {dtype}{list(shape)}"
            )
        elif dtype == "float32" and not np.all(np.isfinite(arr)):
            problems.append(f"tensor {name!r} holds NaN or Inf")
    if not problems and not np.all(tensors["obs_std"] > 0):
        problems.append(f"obs_std must be > 0, got {tensors['obs_std'].tolist()}")
    return problems


def read_policy_file(path: str | os.PathLike[str]) -> tuple[PolicyMetadata, dict[str, np.ndarray]]:
    """Read and validate a policy file; raises PolicyFileError naming the problem and the path."""
    path = Path(path)
    data = read_bounded(path, "policy file", PolicyFileError, MAX_POLICY_BYTES)

    def fail(msg: str) -> PolicyFileError:
        return PolicyFileError(f"policy file {path}: {msg}")

    if len(data) < 8:
        raise fail(f"truncated or not a safetensors file ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(len(data) - 8, _MAX_HEADER):
        raise fail(
            f"not a safetensors file or truncated (header claims {n} bytes, file has {len(data)})"
        )
    try:
        header = loads_bounded(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise fail(f"not a safetensors file (header is not JSON: {exc})") from None
    if not isinstance(header, dict):
        raise fail("not a safetensors file (header is not a JSON object)")
    extra = header.pop("__metadata__", None)
    if not isinstance(extra, dict) or METADATA_KEY not in extra:
        raise fail(f"no liquidnode metadata (missing __metadata__ key {METADATA_KEY!r})")
    text = extra[METADATA_KEY]
    if not isinstance(text, str) or len(text) > MAX_METADATA_CHARS:
        size = len(text) if isinstance(text, str) else type(text).__name__
        raise fail(f"metadata {METADATA_KEY!r} must be a JSON string of at most "
                   f"{MAX_METADATA_CHARS} characters, got {size}")  # fmt: skip
    try:
        raw = loads_bounded(text)
    except ValueError as exc:
        raise fail(f"metadata {METADATA_KEY!r} is not valid JSON ({exc})") from None
    problems = metadata_problems(raw)
    if problems:
        raise fail("; ".join(problems))
    meta = PolicyMetadata(**raw)

    body = memoryview(data)[8 + n :]
    tensors: dict[str, np.ndarray] = {}
    for name, info in header.items():
        try:
            dtype_name, np_dtype = _DTYPES[info["dtype"]]
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise fail(f"tensor {name!r} has a malformed or unsupported entry {info!r}") from None
        size = math.prod(shape) * np_dtype.itemsize if min(shape, default=0) >= 0 else -1
        if size < 0 or not 0 <= begin <= end or end - begin != size:
            raise fail(f"tensor {name!r} has inconsistent shape/offsets {info!r}")
        if end > len(body):
            raise fail(f"truncated: tensor {name!r} ends at byte {end}, data has {len(body)}")
        tensors[name] = (
            np.frombuffer(body[begin:end], dtype=np_dtype).reshape(shape).astype(dtype_name)
        )
    problems = tensor_problems(meta, tensors)
    if problems:
        raise fail("; ".join(problems))
    return meta, tensors


def write_policy_file(
    path: str | os.PathLike[str], meta: PolicyMetadata, tensors: dict[str, np.ndarray]
) -> None:
    """Validate and write a policy file atomically; raises PolicyFileError if inconsistent."""
    from safetensors.numpy import save

    path = Path(path)
    problems = metadata_problems(json.loads(meta.to_json()))
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    if not problems:
        problems = tensor_problems(meta, tensors)
    if problems:
        raise PolicyFileError(f"refusing to write policy file {path}: " + "; ".join(problems))
    blob = save(tensors, metadata={METADATA_KEY: meta.to_json()})
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(blob)
    os.replace(tmp, path)
