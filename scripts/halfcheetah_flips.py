"""How much of a HalfCheetah stress cell's loss is the cheetah turning over.

HalfCheetah never terminates, so a run that pitches past 90 degrees (the torso's ``rooty``
angle, ``qpos[2]``, beyond pi/2 rad) carries on upside down, at a fraction of its speed. This
script runs a policy on stress's seeds in the cells given (stress's control loop, no torch; the
same episodes as ``liquidnode stress --episodes N``: reset seeds ``S, S+1, ...``, randomisation seed
``S``, the true ``dt`` fed, a latency-input policy told the episode's latency) and prints, per
cell, the mean return, how many episodes turned over at some tick, and the mean return of the
rest and of those.

Usage::

    python scripts/halfcheetah_flips.py [--policy policies/HalfCheetah-v5-cfc.safetensors]
        [--episodes 50] [--seed 2000000] [--cells nominal mass=0.5 dt_jitter=0.4 latency=1]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from liquidnode import Policy
from liquidnode.controller.records import Event, TickRecord
from liquidnode.sim import stress
from liquidnode.sim.stress import cell_spec, total_mass_kg

ENV = "HalfCheetah-v5"
PITCH = 1  # observation channel of the torso's pitch, ``rooty`` (qpos[2]), rad


class _PitchRecorder:
    """A :class:`~controller.records.Recorder` keeping each episode's largest |pitch|, rad."""

    def __init__(self) -> None:
        self.max_pitch: list[float] = []

    def start(self, metadata: dict[str, Any]) -> None:
        """Nothing to prepare."""

    def tick(self, record: TickRecord) -> None:
        """Keep the largest |pitch| the policy saw this episode."""
        while len(self.max_pitch) <= record.episode:
            self.max_pitch.append(0.0)
        pitch = abs(float(record.obs[PITCH]))
        self.max_pitch[record.episode] = max(self.max_pitch[record.episode], pitch)

    def event(self, event: Event) -> None:
        """Events are not needed."""

    def close(self) -> None:
        """Nothing to flush."""


def flips(policy: Policy, setting: str, episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns and turned-over flags (bool) of ``episodes`` episodes of one cell, run as
    ``liquidnode stress`` runs them (:func:`liquidnode.sim.stress.run_cell`: the control loop,
    fast and deterministic, on the plant randomised with the cell's spec).

    ``setting``: ``nominal`` or ``AXIS=VALUE`` (a stress axis: latency in ticks, mass,
    obs_noise, dt_jitter, push...). Turned over reads the observed pitch, so in noise cells it
    is the noisy one.
    """
    spec = None
    if setting != "nominal":
        axis, value = setting.split("=")
        spec = cell_spec({axis: float(value)}, total_mass_kg(ENV))
    recorder = _PitchRecorder()
    summary, _ = stress.run_cell(policy, ENV, spec, episodes, seed, recorder)
    returns = np.array([e.return_ for e in summary.episodes])
    return returns, np.array(recorder.max_pitch) > np.pi / 2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--policy", default=f"policies/{ENV}-cfc.safetensors")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=2_000_000, help="first reset seed (stress's)")
    p.add_argument(
        "--cells", nargs="+", default=["nominal", "mass=0.5", "dt_jitter=0.4", "latency=1"]
    )
    args = p.parse_args()
    policy = Policy.load(args.policy)
    for setting in args.cells:
        returns, turned = flips(policy, setting, args.episodes, args.seed)
        upright = returns[~turned].mean() if (~turned).any() else float("nan")
        over = returns[turned].mean() if turned.any() else float("nan")
        print(
            f"{setting:>14}: mean return {returns.mean():7.1f}, turned over in "
            f"{turned.sum():2d}/{len(turned)}, the rest {upright:7.1f}, those {over:7.1f}"
        )


if __name__ == "__main__":
    main()
