"""Running statistics for observation normalisation and reward scaling.

Observation normalisation is part of the policy: the frozen ``mean`` / ``std`` are exported
into the policy file and the runtime applies exactly
``clip((obs - mean) / std, -clip, clip)`` (see docs/design.md). Reward scaling is
training-only: rewards are divided by the running standard deviation of the discounted return
(the ``VecNormalize`` / CleanRL ``NormalizeReward`` recipe).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RunningMeanStd:
    """Mean and variance of a stream of vectors (parallel Welford / Chan update).

    Attributes:
        mean: running mean, float64, shape ``shape``.
        var: running (population) variance, float64, shape ``shape``.
        count: number of samples seen (starts at a tiny epsilon so the first update is exact
            up to that epsilon).
    """

    shape: tuple[int, ...] = ()
    mean: np.ndarray = field(init=False)
    var: np.ndarray = field(init=False)
    count: float = 1e-4

    def __post_init__(self) -> None:
        self.mean = np.zeros(self.shape, dtype=np.float64)
        self.var = np.ones(self.shape, dtype=np.float64)

    def update(self, batch: np.ndarray) -> None:
        """Fold a batch of samples, shape ``(n, *shape)``, into the statistics."""
        batch = np.asarray(batch, dtype=np.float64)
        b_mean = batch.mean(axis=0)
        b_var = batch.var(axis=0)
        b_count = batch.shape[0]
        delta = b_mean - self.mean
        total = self.count + b_count
        self.mean = self.mean + delta * b_count / total
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.var = m2 / total
        self.count = total

    def state_dict(self) -> dict[str, np.ndarray | float]:
        """Plain-data copy for checkpoints."""
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": self.count}

    def load_state_dict(self, state: dict[str, np.ndarray | float]) -> None:
        """Restore from :meth:`state_dict`."""
        self.mean = np.asarray(state["mean"], dtype=np.float64).copy()
        self.var = np.asarray(state["var"], dtype=np.float64).copy()
        self.count = float(state["count"])


class ObsNormalizer:
    """Observation normaliser whose frozen form is exported to the policy file.

    Args:
        obs_dim: observation size.
        clip: normalised values are clipped to ``[-clip, clip]``.
        epsilon: added to the variance before the square root.
    """

    def __init__(self, obs_dim: int, clip: float = 10.0, epsilon: float = 1e-8) -> None:
        self.rms = RunningMeanStd((obs_dim,))
        self.clip = float(clip)
        self.epsilon = float(epsilon)

    @property
    def mean(self) -> np.ndarray:
        """Mean per observation channel, float64 ``(obs_dim,)`` (env units)."""
        return self.rms.mean

    @property
    def std(self) -> np.ndarray:
        """``sqrt(var + epsilon)`` per channel, float64 ``(obs_dim,)`` (env units)."""
        return np.sqrt(self.rms.var + self.epsilon)

    def __call__(self, obs: np.ndarray, update: bool = False) -> np.ndarray:
        """Normalise ``obs`` (shape ``(n, obs_dim)``), first folding it into the statistics if
        ``update``. Returns float32 values in ``[-clip, clip]``."""
        obs = np.asarray(obs, dtype=np.float64)
        if update:
            self.rms.update(obs.reshape(-1, obs.shape[-1]))
        return np.clip((obs - self.mean) / self.std, -self.clip, self.clip).astype(np.float32)


class RewardScaler:
    """Divide rewards by the running std of each environment's discounted return.

    Args:
        num_envs: parallel environments.
        gamma: discount of the return whose spread is tracked.
        epsilon: added to the variance before the square root.
    """

    def __init__(self, num_envs: int, gamma: float, epsilon: float = 1e-8) -> None:
        self.rms = RunningMeanStd(())
        self.gamma = float(gamma)
        self.epsilon = float(epsilon)
        self.returns = np.zeros(num_envs, dtype=np.float64)

    def __call__(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        """Scale one step of rewards (shape ``(num_envs,)``); ``dones`` ends the tracked returns
        of the environments whose episode finished with this step."""
        self.returns = self.returns * self.gamma + rewards
        self.rms.update(self.returns)
        scaled = rewards / np.sqrt(self.rms.var + self.epsilon)
        self.returns[np.asarray(dones, dtype=bool)] = 0.0
        return scaled
