"""A first-order low-pass on the commanded action, part of the policy (``action.low_pass_hz``).

Each tick the command moves part of the way from where it was to what the cell asks for::

    alpha = 1 - exp(-2 pi f_c dt)                           # (0, 1); f_c in Hz, dt in s
    z_t   = z_(t-1) + alpha * (u_t - z_(t-1))                # (act_dim,)

``u_t`` is the cell's action, ``dt`` the time since the previous tick that the policy is given
(seconds; the control period, jittered or not), ``z_(t-1)`` the previous filtered command, the
action space's centre after a reset. ``Policy.step`` filters the squashed action (normalised
units, centre 0) before mapping it to env units; the trainer's environments filter the env-unit
action (centre ``(low + high) / 2``): the same filter, since an affine map commutes with it. It is
the exponential moving average of an irregularly sampled signal: a continuous first-order lag
of cut-off ``f_c`` (time constant ``1 / (2 pi f_c)``), so the same file filters alike at any
rate. At 20 Hz, ``f_c`` = 5 Hz gives ``alpha`` = 0.79, 3 Hz 0.61, 3.5 Hz 0.67.

Why: a command that jumps each tick excites a gearbox and wears an actuator, and a plant whose
command is held for a varying time (control-period jitter) responds to each jump differently.
A filter that the policy was trained with (``liquidnode train --action-low-pass HZ``) is part of
its dynamics, so it lives in the file and every runtime applies it: ``Policy.step``, the ONNX
graph, the generated C. The same class runs in the trainer's environments
(:class:`liquidnode.controller.train.envs.ActionLowPass`).
"""

from __future__ import annotations

import math

import numpy as np


def low_pass_alpha(cutoff_hz: float, dt: float) -> float:
    """The filter's gain for a tick of ``dt`` seconds: ``1 - exp(-2 pi cutoff_hz dt)``, (0, 1)."""
    return -math.expm1(-2.0 * math.pi * cutoff_hz * dt)


def check_cutoff(cutoff_hz: object) -> float:
    """``cutoff_hz`` as a float; ValueError unless it is a finite number > 0 (Hz)."""
    if isinstance(cutoff_hz, bool) or not isinstance(cutoff_hz, (int, float)):
        raise ValueError(f"a low-pass cut-off must be a number of Hz, got {cutoff_hz!r}")
    value = float(cutoff_hz)
    if not 0.0 < value < math.inf:
        raise ValueError(f"a low-pass cut-off must be finite and > 0 Hz, got {cutoff_hz!r}")
    return value


class LowPass:
    """The filter's state and step (numpy, float64, the caller's units).

    Args:
        cutoff_hz: cut-off frequency, Hz (finite, > 0).
        neutral: the command after a reset, ``(act_dim,)`` (the action space's centre).

    Attributes:
        cutoff_hz: the cut-off, Hz.
        command: the last filtered command, float64 ``(act_dim,)`` (``neutral`` after a reset);
            written in place by :meth:`step`.
    """

    def __init__(self, cutoff_hz: float, neutral: np.ndarray) -> None:
        self.cutoff_hz = check_cutoff(cutoff_hz)
        self._neutral = np.array(neutral, dtype=np.float64).reshape(-1)
        self.command = self._neutral.copy()

    def reset(self) -> None:
        """Start over from the neutral command (an episode's start)."""
        self.command[:] = self._neutral

    def step(self, action: np.ndarray, dt: float) -> np.ndarray:
        """Filter ``action`` (``(act_dim,)``) over a tick of ``dt`` s (> 0); returns a copy
        of the new command (float64)."""
        cmd = self.command
        cmd += low_pass_alpha(self.cutoff_hz, dt) * (np.asarray(action, np.float64) - cmd)
        return cmd.copy()
