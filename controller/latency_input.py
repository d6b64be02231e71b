"""The latency input: a policy that is told its plant's actuation latency.

A policy whose metadata has ``latency_input`` gets one more cell input after the normalised
observation: the actuation latency of the episode (how long the previous command still acts
after an observation is taken), in control periods, clipped to ``[low, high]`` and normalised::

    ell = (clip(latency_ticks, low, high) - mean) / std     # float32, one value

so the cell's input is ``[x | ell]`` (``[x | ell | a_prev]`` with action feedback). The value is
constant over an episode: the control loop sets it at every reset from what the plant knows
(a simulation: the latency its randomisation drew; ``0`` for the nominal plant) or from the
run's configured estimate (a serial robot: ``--latency-ms``, measured on the link). Why: a
controller for a delayed plant must know the delay from the first tick on; a recurrent policy
that has to infer it from its own history catches a hard start less firmly
(``policies/README.md``, the double pendulum, "The nominal tail").

Metadata (all numbers finite, control periods): ``{"low": 0.0, "high": 1.5, "mean": 0.5,
"std": 0.29}`` with ``low < high`` and ``std > 0``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

#: Metadata keys of ``latency_input``.
KEYS = ("low", "high", "mean", "std")


@dataclass(frozen=True)
class LatencyInput:
    """How a latency (control periods) becomes the cell's latency input.

    Attributes:
        low, high: the latency is clipped to ``[low, high]`` control periods (the range the
            policy was trained on; beyond it the policy is told the nearest edge).
        mean, std: normalisation, ``ell = (clipped - mean) / std`` (``std > 0``).
    """

    low: float = 0.0
    high: float = 1.5
    mean: float = 0.5
    std: float = 0.29

    def __post_init__(self) -> None:
        problems = latency_input_problems(asdict(self))
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_metadata(cls, raw: dict[str, Any] | None) -> LatencyInput | None:
        """The metadata's ``latency_input`` object, or None when the policy has no such input.

        Raises:
            ValueError: the object is malformed (see :func:`latency_input_problems`).
        """
        if raw is None:
            return None
        problems = latency_input_problems(raw)
        if problems:
            raise ValueError("; ".join(problems))
        return cls(**{k: float(raw[k]) for k in KEYS})

    def as_metadata(self) -> dict[str, float]:
        """The JSON object stored as the metadata's ``latency_input``."""
        return asdict(self)

    def normalise(self, latency_ticks: float) -> float:
        """The cell input for a latency of ``latency_ticks`` control periods (finite, >= 0).

        Raises:
            ValueError: a latency that is negative or not finite.
        """
        if not (math.isfinite(latency_ticks) and latency_ticks >= 0.0):
            raise ValueError(
                f"actuation latency must be a finite number of control periods >= 0, "
                f"got {latency_ticks!r}"
            )
        return (min(max(latency_ticks, self.low), self.high) - self.mean) / self.std


def latency_input_problems(raw: Any) -> list[str]:
    """Problems with a ``latency_input`` metadata object (empty when well formed)."""
    if not isinstance(raw, dict):
        return [f"latency_input must be an object or null, got {raw!r}"]
    problems = [f"latency_input has an unknown key {k!r}" for k in sorted(set(raw) - set(KEYS))]
    for key in KEYS:
        v = raw.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            problems.append(f"latency_input.{key} must be a finite number, got {v!r}")
    if problems:
        return problems
    if not 0.0 <= raw["low"] < raw["high"]:
        problems.append(
            f"latency_input needs 0 <= low < high, got low {raw['low']!r}, high {raw['high']!r}"
        )
    if raw["std"] <= 0:
        problems.append(f"latency_input.std must be > 0, got {raw['std']!r}")
    return problems
