"""What a well-formed liquidnode log holds, message by message (see :mod:`.schema`).

:func:`validate_message` checks one decoded message of a channel: required fields, their
types (integers that fit int64, numbers or null, lists of numbers), and the event details
readers use. :class:`MessageChecker` adds what needs the messages before: a tick logged
twice, vectors whose length changes within an episode. :func:`run_metadata_problem` checks
the ``liquidnode.run`` metadata keys readers rely on (plant, rates, seed...). Every problem
becomes one :class:`~controller.errors.LogFileError` that names the message's index in the
file, so a crafted or damaged log never reaches numpy as a ragged or mistyped list.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from liquidnode.controller.errors import LogFileError
from liquidnode.controller.logs import schema


def _is_int(v: Any) -> bool:
    """An integer that fits int64 (ticks, episodes, seeds)."""
    return isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63


def _is_num(v: Any) -> bool:
    """A float, or an integer small enough to become one."""
    return isinstance(v, float) or (_is_int(v) and abs(v) < 2**63)


def _is_vector(v: Any) -> bool:
    return isinstance(v, list) and all(x is None or _is_num(x) for x in v)


_TICK_NUMBERS = ("t", "dt", "reward", "lateness_us")
#: Event detail fields readers use: kind -> key -> (check, what it must be); null is allowed.
_EVENT_DETAIL: dict[str, dict[str, tuple[Any, str]]] = {
    "episode_start": {
        "seed": (_is_int, "an integer"),
        "initial_state": (_is_vector, "a list of numbers"),
    },
    "episode_end": {"return": (_is_num, "a number"), "ticks": (_is_int, "an integer")},
}


def validate_message(topic: str, body: dict[str, Any]) -> str | None:
    """What is wrong with one decoded message of ``topic`` (None when it fits the schema in
    :mod:`controller.logs.schema`)."""
    if topic in (schema.TICK_TOPIC, schema.STATE_TOPIC, schema.EVENT_TOPIC):
        for key in ("episode", "tick"):
            if key not in body:
                return f"field {key!r} is missing"
            if not _is_int(body[key]) or body[key] < (0 if topic != schema.EVENT_TOPIC else -1):
                return f"{key} must be an integer >= 0, got {body[key]!r}"
    if topic == schema.TICK_TOPIC:
        for key in ("obs", "action", "sent"):
            if key not in body:
                return f"field {key!r} is missing"
            if not _is_vector(body[key]):
                return f"{key} must be a list of numbers (or null), got {body[key]!r:.80}"
        for key in _TICK_NUMBERS:
            if body.get(key) is not None and not _is_num(body[key]):
                return f"{key} must be a number (or null), got {body[key]!r:.80}"
        sections = body.get("sections", {})
        if not isinstance(sections, dict) or not all(
            v is None or _is_num(v) for v in sections.values()
        ):
            return f"sections must be an object of numbers, got {sections!r:.80}"
    elif topic == schema.STATE_TOPIC:
        if not _is_vector(body.get("state")):
            return f"state must be a list of numbers (or null), got {body.get('state')!r:.80}"
    elif topic == schema.EVENT_TOPIC:
        if not isinstance(body.get("kind"), str):
            return f"kind must be a string, got {body.get('kind')!r:.80}"
        detail = body.get("detail")
        if not isinstance(detail, dict):
            return f"detail must be an object, got {detail!r:.80}"
        checks = _EVENT_DETAIL.get(body["kind"], {})
        for key, (ok, what) in checks.items():
            if detail.get(key) is not None and not ok(detail[key]):
                return f"{body['kind']} detail.{key} must be {what}, got {detail[key]!r:.80}"
    return None


def run_metadata_problem(run: Any) -> str | None:
    """What is wrong with the decoded ``liquidnode.run`` metadata (None when usable): the
    keys readers rely on must have their documented types."""
    if not isinstance(run, dict):
        return f"must be an object, got {type(run).__name__}"
    for key in ("rate_hz", "duration_s"):
        v = run.get(key)
        if v is not None and not (_is_num(v) and math.isfinite(v) and v > 0):
            return f"{key} must be a finite number > 0 or null, got {v!r:.80}"
    for key in ("seed", "max_ticks", "episodes"):
        v = run.get(key)
        if v is not None and not (_is_int(v) and v >= 0):
            return f"{key} must be an integer >= 0 or null, got {v!r:.80}"
    for key in ("mode", "env", "policy_path", "policy_sha256"):
        v = run.get(key)
        if v is not None and not isinstance(v, str):
            return f"{key} must be a string or null, got {v!r:.80}"
    plant = run.get("plant")
    if plant is None:
        return None
    if not isinstance(plant, dict):
        return f"plant must be an object, got {plant!r:.80}"
    if plant.get("name") is not None and not isinstance(plant["name"], str):
        return f"plant.name must be a string, got {plant['name']!r:.80}"
    rate = plant.get("rate_hz")
    if rate is not None and not (_is_num(rate) and math.isfinite(rate) and rate > 0):
        return f"plant.rate_hz must be a finite number > 0, got {rate!r:.80}"
    info = plant.get("info")
    if info is None:
        return None
    if not isinstance(info, dict):
        return f"plant.info must be an object, got {info!r:.80}"
    for key in ("source", "env_id", "model_file"):
        if info.get(key) is not None and not isinstance(info[key], str):
            return f"plant.info.{key} must be a string, got {info[key]!r:.80}"
    for key in ("max_ticks", "max_episode_steps"):
        v = info.get(key)
        if v is not None and not (_is_int(v) and v > 0):
            return f"plant.info.{key} must be an integer > 0 or null, got {v!r:.80}"
    return None


class MessageChecker:
    """Checks the messages of one log in file order; raises LogFileError at the first bad one.

    Args:
        path: the log, for the error messages.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.number = -1  #: index of the last message checked, from 0
        self._ticks: dict[tuple[int, int], int] = {}
        self._widths: dict[tuple[int, str], tuple[int, int]] = {}

    def check(self, topic: str, body: dict[str, Any]) -> None:
        """Check the next message (of channel ``topic``)."""
        self.number += 1
        where = f"log {self.path}: message {self.number} ({topic})"
        problem = validate_message(topic, body)
        if problem:
            raise LogFileError(f"{where}: {problem}")
        if topic == schema.TICK_TOPIC:
            key = (body["episode"], body["tick"])
            if key in self._ticks:
                raise LogFileError(
                    f"log {self.path}: episode {key[0]} has tick {key[1]} twice (messages "
                    f"{self._ticks[key]} and {self.number}): two runs were written into one "
                    "file, or it was pieced together; it cannot be replayed"
                )
            self._ticks[key] = self.number
            fields: tuple[str, ...] = ("obs", "action", "sent")
        elif topic == schema.STATE_TOPIC:
            fields = ("state",)
        else:
            return
        for name in fields:
            width = len(body[name])
            first = self._widths.setdefault((body["episode"], name), (width, self.number))
            if first[0] != width:
                raise LogFileError(
                    f"{where}: {name} has {width} values, message {first[1]} of the same "
                    f"episode has {first[0]}"
                )
