"""The liquidnode log format: MCAP channels, their JSON schemas, and metadata records.

A log is an MCAP file (https://mcap.dev) whose messages are JSON encoded (message encoding
``json``) with a JSON Schema per channel (schema encoding ``jsonschema``), so Foxglove,
PlotJuggler and Rerun plot every field without extra definitions. Chunks are uncompressed
and finished every ``flush_interval_s`` of the recorder (20 ms by default), so a reader
recovers all but the last instants of a run that was
killed (the footer and summary are then missing; :mod:`controller.logs.episode` reads the
file sequentially and stops at the truncated record).

Every message's MCAP ``log_time`` is the wall-clock time of its tick (ns since the Unix
epoch) and its ``publish_time`` the loop's monotonic clock (ns, ``time.monotonic_ns``).

Channel ``/liquidnode/tick`` (one message per control tick):

| field | type | unit | meaning |
|---|---|---|---|
| ``episode`` | int | - | episode index within the run, from 0 |
| ``tick`` | int | - | tick index within the episode, from 0 |
| ``t`` | float | s | monotonic time since the first tick of the episode |
| ``dt`` | float | s | measured elapsed time since the previous tick (the cell's time input) |
| ``obs`` | float[obs_dim] | env units | observation fed to the policy (``obs_names`` order) |
| ``action`` | float[act_dim] | env units | raw policy action, before safety |
| ``sent`` | float[act_dim] | env units | action actually sent to the plant |
| ``reward`` | float | - | reward earned by the previous action (0 on real devices) |
| ``lateness_us`` | float | µs | how late the tick started relative to its deadline |
| ``sections.observe_us`` | float | µs | time in ``plant.observe`` |
| ``sections.policy_us`` | float | µs | time in ``policy.step`` |
| ``sections.act_us`` | float | µs | time in safety filter + ``plant.act`` |

Channel ``/liquidnode/state`` (one per tick unless ``--no-state``): ``episode``, ``tick``,
``state`` (float32 values of the policy's hidden state after the step, ``(state_dim,)``).

Channel ``/liquidnode/event``: ``kind`` (see :data:`controller.records.EVENT_KINDS`, plus
``log_error`` written by the recorder itself), ``episode``, ``tick`` (-1 outside episodes),
``detail`` (kind-specific object).

JSON has no NaN or infinity: non-finite numbers are written as ``null`` and read back as NaN.

Metadata records (MCAP ``Metadata``, string values):

- ``liquidnode.log``: ``format_version`` (:data:`LOG_FORMAT_VERSION`), ``liquidnode_version``,
  ``created_at`` (ISO 8601 UTC), ``command``, ``store_state`` (``"true"``/``"false"``).
- ``liquidnode.run``: every key of the run metadata (policy path, env id / device identity,
  seed, rate, plant spec...), each value JSON-encoded.
- ``liquidnode.policy``: ``path``, ``sha256``, ``size``, ``metadata`` (JSON: the policy
  file's own metadata).

Attachment ``policy.safetensors``: the bytes of the policy file the run used, so that a log is
self-contained and ``liquidnode replay LOG`` needs nothing else. Attachment ``model.xml``: the
MJCF file of a simulation built from one (``plant.info.source == "mjcf"``), for ``--sim``.
"""

from __future__ import annotations

import json
import math
from typing import Any

#: Version of the layout above. Readers refuse logs of another version.
LOG_FORMAT_VERSION = 1

TICK_TOPIC = "/liquidnode/tick"
STATE_TOPIC = "/liquidnode/state"
EVENT_TOPIC = "/liquidnode/event"

LOG_METADATA = "liquidnode.log"
RUN_METADATA = "liquidnode.run"
POLICY_METADATA = "liquidnode.policy"
POLICY_ATTACHMENT = "policy.safetensors"
MODEL_ATTACHMENT = "model.xml"

_NUMBER = {"type": ["number", "null"]}
_VECTOR = {"type": "array", "items": _NUMBER}

TICK_SCHEMA: dict[str, Any] = {
    "title": "liquidnode.Tick",
    "description": "One control tick: what the node saw, decided, sent, and how well it kept time.",
    "type": "object",
    "properties": {
        "episode": {"type": "integer", "description": "episode index, from 0"},
        "tick": {"type": "integer", "description": "tick index within the episode, from 0"},
        "t": {"type": "number", "description": "s since the episode's first tick (monotonic)"},
        "dt": {"type": "number", "description": "measured s since the previous tick"},
        "obs": {**_VECTOR, "description": "observation fed to the policy, env units"},
        "action": {**_VECTOR, "description": "raw policy action, env units"},
        "sent": {**_VECTOR, "description": "action sent to the plant after safety, env units"},
        "reward": {**_NUMBER, "description": "reward earned by the previous action"},
        "lateness_us": {"type": "number", "description": "tick start minus deadline, µs"},
        "sections": {
            "type": "object",
            "description": "time spent per section of the tick, µs",
            "properties": {
                "observe_us": {"type": "number"},
                "policy_us": {"type": "number"},
                "act_us": {"type": "number"},
            },
        },
    },
    "required": ["episode", "tick", "t", "dt", "obs", "action", "sent", "reward"],
}

STATE_SCHEMA: dict[str, Any] = {
    "title": "liquidnode.State",
    "description": "The policy's hidden state after the tick's step (float32 values).",
    "type": "object",
    "properties": {
        "episode": {"type": "integer"},
        "tick": {"type": "integer"},
        "state": {**_VECTOR, "description": "hidden state, (state_dim,)"},
    },
    "required": ["episode", "tick", "state"],
}

EVENT_SCHEMA: dict[str, Any] = {
    "title": "liquidnode.Event",
    "description": "Overrun, NaN guard, clamp, fault, e-stop, link loss/restore, episode edges.",
    "type": "object",
    "properties": {
        "kind": {"type": "string"},
        "episode": {"type": "integer", "description": "episode index, -1 outside episodes"},
        "tick": {"type": "integer", "description": "tick index, -1 outside episodes"},
        "detail": {"type": "object", "description": "kind-specific fields"},
    },
    "required": ["kind", "episode", "tick", "detail"],
}

#: (topic, schema) of every channel, in registration order.
CHANNELS: tuple[tuple[str, dict[str, Any]], ...] = (
    (TICK_TOPIC, TICK_SCHEMA),
    (STATE_TOPIC, STATE_SCHEMA),
    (EVENT_TOPIC, EVENT_SCHEMA),
)


def finite_list(values: Any) -> list[float | None]:
    """A float vector as a JSON-able list; non-finite entries become ``None`` (JSON null).

    Args:
        values: a 1-D numpy array (any float dtype) or sequence of numbers.
    Returns:
        Python floats (float32 values widened exactly to float64), ``None`` where not finite.
    """
    out = values.tolist() if hasattr(values, "tolist") else [float(v) for v in values]
    if all(map(math.isfinite, out)):
        return out
    return [v if math.isfinite(v) else None for v in out]


def finite_number(value: float) -> float | None:
    """``value`` as a float, or ``None`` when not finite."""
    value = float(value)
    return value if math.isfinite(value) else None


def to_json_bytes(message: dict[str, Any]) -> bytes:
    """Encode a message as compact UTF-8 JSON (strict: NaN/inf are refused).

    Values the json module cannot encode (numpy scalars, paths...) are converted with
    ``float``/``int`` where possible and ``str`` otherwise.
    """
    return _ENCODER.encode(message).encode()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        out = value.tolist()
        if isinstance(out, float):
            return finite_number(out)
        if isinstance(out, list):
            return _clean(out)
        return out
    return str(value)


#: One encoder for all messages (``json.dumps`` with options builds a new one per call).
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_jsonable)


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return finite_number(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def encode_metadata(values: dict[str, Any]) -> dict[str, str]:
    """JSON-encode each value of ``values`` (MCAP metadata maps strings to strings)."""
    return {str(k): json.dumps(sanitize(v), default=_jsonable) for k, v in values.items()}


def sanitize(value: Any) -> Any:
    """A deep copy of ``value`` with non-finite floats replaced by ``None`` (strict JSON)."""
    if isinstance(value, float):
        return finite_number(value)
    if isinstance(value, dict):
        return {str(k): sanitize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitize(v) for v in value]
    if hasattr(value, "tolist"):
        return sanitize(value.tolist())
    return value


def decode_metadata(values: dict[str, str]) -> dict[str, Any]:
    """Inverse of :func:`encode_metadata`; values that are not JSON stay strings."""
    from liquidnode.controller.untrusted import loads_bounded

    out: dict[str, Any] = {}
    for key, raw in values.items():
        try:
            out[key] = loads_bounded(raw)
        except ValueError:  # also nesting deeper than a log ever writes
            out[key] = raw
    return out
