"""Run an export next to ``Policy.step`` and measure how far apart they are.

:func:`compare` drives the policy and the exported artefact (the C compiled on this machine, or
the ONNX model in onnxruntime) through the same sequence of observations and variable ``dt``
from the reset state and returns the largest absolute differences of the action and of the
state. Observations are ``mean + 1.5 std N(0, 1)`` (the policy's own normalisation, so the
cell sees inputs of the size it was made for), ``dt = period U(0.8, 1.2)`` with ``period =
1 / control_rate_hz`` (else ``1 / time_scale``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from liquidnode.controller.export.lowering import ExportError

if TYPE_CHECKING:
    from liquidnode.controller.policy import Policy


def sequence(policy: Policy, steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(obs (steps, obs_dim) float32, dt (steps,) float32)`` as described above."""
    rng = np.random.default_rng(seed)
    obs = policy.obs_mean + 1.5 * policy.obs_std * rng.standard_normal((steps, policy.obs_dim))
    rate = policy.metadata.control_rate_hz
    period = 1.0 / rate if rate else 1.0 / float(policy.metadata.time_scale)
    dt = period * rng.uniform(0.8, 1.2, steps)
    return obs.astype(np.float32), dt.astype(np.float32)


def reference(policy: Policy, obs: np.ndarray, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Policy.step`` from the reset state: ``(actions, states)`` float64 / float32."""
    policy.reset()
    actions = np.zeros((len(dt), policy.act_dim))
    states = np.zeros((len(dt), policy.state_dim), np.float32)
    for k in range(len(dt)):
        actions[k] = policy.step(obs[k].astype(np.float64), float(dt[k]))
        states[k] = policy.state
    policy.reset()
    return actions, states


def run_onnx(
    path: str | Path, obs: np.ndarray, dt: np.ndarray, state_dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """Step the ONNX model one tick at a time from zeros: ``(actions, states)``."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError(
            "checking an ONNX export needs onnxruntime: pip install onnxruntime"
        ) from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    state = np.zeros((1, state_dim), np.float32)
    actions, states = [], []
    for k in range(len(dt)):
        action, state = sess.run(
            None, {"obs": obs[k : k + 1], "dt": dt[k : k + 1, None], "state": state}
        )
        actions.append(action[0])
        states.append(state[0])
    return np.array(actions), np.array(states)


def compare(
    policy: Policy,
    out_dir: str | Path,
    target: str,
    prefix: str,
    steps: int = 1000,
    seed: int = 0,
    fixed_dt: float | None = None,
) -> dict[str, Any]:
    """Max ``|Δaction|`` and ``|Δstate|`` of the export in ``out_dir`` vs ``Policy.step``
    (``fixed_dt``: an export specialised for that period is stepped with it every tick).

    Returns:
        ``{"steps", "max_abs_action", "max_abs_state"}``.
    """
    obs, dt = sequence(policy, steps, seed)
    if fixed_dt is not None:
        dt = np.full(steps, fixed_dt, np.float32)
    ref_a, ref_s = reference(policy, obs, dt)
    if target == "onnx":
        act, states = run_onnx(Path(out_dir) / f"{prefix}.onnx", obs, dt, policy.state_dim)
    else:
        from liquidnode.controller.export.host_build import CompiledPolicy

        compiled = CompiledPolicy(out_dir, prefix, policy.obs_dim, policy.act_dim, policy.state_dim)
        act, states = compiled.run(obs, dt)
    return {
        "steps": steps,
        "max_abs_action": float(np.max(np.abs(act - ref_a))),
        "max_abs_state": float(np.max(np.abs(states - ref_s), initial=0.0)),
    }
