"""Safety layer between the policy and the plant.

Per tick, :meth:`SafetyLayer.filter` turns the policy's wish into the action actually sent:

1. NaN/Inf guard: a non-finite action is replaced by the previous *sent* action (or the
   plant's safe action before the first tick of an episode) and a ``nan_guard`` event is
   emitted with the offending channel indices and ``source="action"``.
2. Clamp to ``[low, high]`` per channel. A ``clamp`` event names the clamped channels when the
   set of clamped channels changes (not on every tick of a saturated stretch; the per-tick
   record holds both the wish and the sent action).
3. Optional rate limit: each channel moves at most ``max_rate * dt`` units from the previous
   sent action.

The returned action is what goes to the plant and into the log (the truth, not the wish).
"""

from __future__ import annotations

import numpy as np

from liquidnode.controller.errors import SpaceMismatchError
from liquidnode.controller.plant import PlantSpec
from liquidnode.controller.records import Event


class SafetyLayer:
    """Clamp, rate-limit and NaN-guard actions.

    Args:
        low: lower limit per action channel, shape ``(act_dim,)``, in action units.
        high: upper limit per action channel, shape ``(act_dim,)``, ``high >= low``.
        safe_action: action held on a fault before any action was sent, shape ``(act_dim,)``;
            clipped into ``[low, high]``.
        max_rate: optional rate limit, action units per second, scalar or ``(act_dim,)``,
            > 0 where given (``inf`` disables a channel's limit).

    Raises:
        SpaceMismatchError: the shapes of low/high/safe_action/max_rate disagree.
        ValueError: low > high somewhere or max_rate <= 0.
    """

    def __init__(
        self,
        low: np.ndarray,
        high: np.ndarray,
        safe_action: np.ndarray,
        max_rate: float | np.ndarray | None = None,
    ) -> None:
        self.low = np.asarray(low, dtype=np.float64).reshape(-1).copy()
        self.high = np.asarray(high, dtype=np.float64).reshape(-1).copy()
        safe = np.asarray(safe_action, dtype=np.float64).reshape(-1)
        if not (self.low.shape == self.high.shape == safe.shape):
            raise SpaceMismatchError(
                f"safety limits disagree in shape: low {self.low.shape}, high "
                f"{self.high.shape}, safe_action {safe.shape}"
            )
        if np.any(self.low > self.high):
            bad = np.flatnonzero(self.low > self.high).tolist()
            raise ValueError(f"action low > high on channels {bad}: {self.low} > {self.high}")
        self.safe_action = np.clip(safe, self.low, self.high)
        if max_rate is None:
            self.max_rate: np.ndarray | None = None
        else:
            rate = np.broadcast_to(np.asarray(max_rate, dtype=np.float64), self.low.shape)
            if np.any(~(rate > 0)):
                raise ValueError(f"max_rate must be > 0 units/s, got {max_rate}")
            self.max_rate = rate.copy()
        self._prev: np.ndarray | None = None
        self._clamped: list[int] = []
        # the limits the filter clamps to: infinite limits become the largest finite float, so
        # that an infinite action is changed by the clamp (and caught) even on such a channel
        big = np.finfo(np.float64).max
        self._lo = np.maximum(self.low, -big)
        self._hi = np.minimum(self.high, big)

    @classmethod
    def for_spec(cls, spec: PlantSpec, max_rate: float | np.ndarray | None = None) -> SafetyLayer:
        """Build from a plant's spec (its action limits and safe action)."""
        return cls(spec.action_low, spec.action_high, spec.safe_action, max_rate=max_rate)

    @property
    def act_dim(self) -> int:
        """Number of action channels."""
        return self.low.shape[0]

    @property
    def last_sent(self) -> np.ndarray:
        """The last action sent (a copy), or the safe action before the first."""
        return (self.safe_action if self._prev is None else self._prev).copy()

    def reset(self) -> None:
        """Start an episode: forget the previous action (the hold falls back to the safe one)."""
        self._prev = None
        self._clamped = []

    def hold(self) -> np.ndarray:
        """The action to send when the tick has nothing valid (a copy of the last sent one)."""
        return self.last_sent

    def filter(self, action: np.ndarray, dt: float) -> tuple[np.ndarray, list[Event]]:
        """Make ``action`` safe to send.

        Args:
            action: the policy's action, float ``(act_dim,)`` in action units (may be non-finite).
            dt: elapsed seconds since the previous tick (for the rate limit; ignored without one).

        Returns:
            ``(sent, events)``: the float64 ``(act_dim,)`` action to send (a new array), and the
            ``nan_guard`` / ``clamp`` events this filtering raised (episode/tick/time fields left
            for the caller to fill in).

        Raises:
            SpaceMismatchError: ``action`` does not have shape ``(act_dim,)``.
        """
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.low.shape:
            raise SpaceMismatchError(
                f"action shape {a.shape} does not match the plant's {self.low.shape[0]} actuators"
            )
        # This runs every tick, so the common case (finite, within limits) is two ufuncs and
        # one byte comparison: fmax/fmin replace a NaN by the limit (where max/min would pass
        # it through) and the limits are finite, so any non-finite or out-of-range action
        # differs from what is sent and takes the slow path below.
        sent = np.fmax(a, self._lo)
        np.fmin(sent, self._hi, out=sent)
        events: list[Event] = []
        if self._clamped or sent.tobytes() != a.tobytes():
            finite = np.isfinite(a)
            if not finite.all():
                detail = {"channels": np.flatnonzero(~finite).tolist(), "source": "action"}
                events.append(Event("nan_guard", detail=detail))
                sent = self.last_sent
            else:
                clamped = np.flatnonzero(sent != a).tolist()
                if clamped and clamped != self._clamped:
                    events.append(Event("clamp", detail={"channels": clamped}))
                self._clamped = clamped
        if self.max_rate is not None and self._prev is not None:
            step = self.max_rate * max(float(dt), 0.0)
            np.clip(sent, self._prev - step, self._prev + step, out=sent)
        self._prev = sent.copy()
        return sent, events
