"""Where a HalfCheetah policy's loss under control-period jitter comes from.

Stress's ``dt_jitter = F`` cell draws each tick's period as ``nominal * (1 + U(-F, F))`` and
realises it with the nearest whole number of physics steps, each ``period / steps`` long; the
previous command holds until the next one, and the cell is fed the true period. This script
runs the policy on the same episodes (stress's control loop, no torch; reset seeds ``S, S+1,
...``, randomisation seed ``S``) in variants of that cell that take one ingredient at a time:

- ``stress``: the cell as ``liquidnode stress`` runs it;
- ``nominal-dt``: the same plant, but the policy is always told the nominal period (what the
  true ``dt`` input is worth);
- ``whole-steps``: the period rounded to whole physics steps of the nominal length (3..7 steps
  of 10 ms for F = 0.4), so no step is shorter or longer than the model's ``opt.timestep``;
- ``substeps``: the period stays nominal but is cut into 3..7 equal physics steps (what the
  changed step length alone does to MuJoCo's contact dynamics; the command is held as long as
  nominally).

``--low-pass HZ`` puts an action low-pass of that cut-off into the policy (its
``action.low_pass_hz``, :mod:`liquidnode.controller.action_filter`; replacing one the file may
have), nominal run included: what a smoother gait of a policy that was not trained behind the
filter keeps.

Usage::

    python scripts/halfcheetah_jitter.py [--policy policies/HalfCheetah-v5-cfc.safetensors]
        [--episodes 50] [--seed 2000000] [--jitter 0.4]
        [--variants stress nominal-dt whole-steps substeps] [--low-pass HZ]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from liquidnode import Policy
from liquidnode.sim import make_env, stress
from liquidnode.sim.randomization.perturbed_physics import PerturbedPhysics
from liquidnode.sim.randomization.spec import RandomizationSpec, TimingSpec

ENV = "HalfCheetah-v5"
VARIANTS = ("stress", "nominal-dt", "whole-steps", "substeps")

_DrawPeriod = Callable[[PerturbedPhysics, int], tuple[int, float, float]]
_JITTERED: _DrawPeriod = PerturbedPhysics.draw_period  # stress's draw, kept before any patch


def _whole_steps(self: PerturbedPhysics, frame_skip: int) -> tuple[int, float, float]:
    """The jittered period rounded to whole physics steps of the nominal length."""
    steps, _, _ = _JITTERED(self, frame_skip)
    return steps, self.nominal_substep, steps * self.nominal_substep


def _substeps(self: PerturbedPhysics, frame_skip: int) -> tuple[int, float, float]:
    """The nominal period cut into as many equal steps as the jittered one would have."""
    steps, _, _ = _JITTERED(self, frame_skip)
    period = frame_skip * self.nominal_substep
    return steps, period / steps, period


def run(policy: Policy, variant: str, jitter: float, episodes: int, seed: int) -> np.ndarray:
    """Returns of ``episodes`` episodes of one variant (see the module docstring)."""
    draw = _JITTERED
    step = policy.step
    if variant == "whole-steps":
        draw = _whole_steps
    elif variant == "substeps":
        draw = _substeps
    elif variant == "nominal-dt":
        period = float(make_env(ENV).unwrapped.dt)  # 0.05 s

        def told_nominal(obs: np.ndarray, dt: float) -> np.ndarray:
            return step(obs, period)

        policy.step = told_nominal  # type: ignore[method-assign]
    elif variant != "stress":
        raise SystemExit(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
    PerturbedPhysics.draw_period = draw  # type: ignore[method-assign]
    try:
        spec = replace(RandomizationSpec(), timing=TimingSpec(dt_jitter=jitter))
        summary, _ = stress.run_cell(policy, ENV, spec, episodes, seed)
    finally:
        PerturbedPhysics.draw_period = _JITTERED  # type: ignore[method-assign]
        policy.step = step  # type: ignore[method-assign]
    return np.array([e.return_ for e in summary.episodes])


def with_low_pass(policy: Policy, cutoff_hz: float) -> Policy:
    """``policy`` (weights, normalisation, latency input) behind an action low-pass of
    ``cutoff_hz`` (a new policy, fresh state)."""
    action = {**policy.metadata.action, "low_pass_hz": float(cutoff_hz)}
    return Policy.from_tensors(replace(policy.metadata, action=action), policy.tensors())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--policy", default=f"policies/{ENV}-cfc.safetensors")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=2_000_000, help="first reset seed (stress's)")
    p.add_argument("--jitter", type=float, default=0.4, help="F of the dt_jitter cell")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--low-pass", type=float, default=None, metavar="HZ", help="cut-off > 0")
    args = p.parse_args()
    policy = Policy.load(args.policy)
    if args.low_pass is not None:
        policy = with_low_pass(policy, args.low_pass)
    summary, _ = stress.run_cell(policy, ENV, None, args.episodes, args.seed)
    nominal = float(np.mean([e.return_ for e in summary.episodes]))
    print(f"{'nominal':>12}: mean return {nominal:7.1f}")
    for variant in args.variants:
        returns = run(policy, variant, args.jitter, args.episodes, args.seed)
        print(
            f"{variant:>12}: mean return {returns.mean():7.1f} ± {returns.std():6.1f}, "
            f"{stress.retained(float(returns.mean()), nominal):5.1f} % of nominal"
        )


if __name__ == "__main__":
    main()
