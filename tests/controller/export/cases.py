"""Policies every exporter is held to: each cell type and mode, and the shipped policies."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from liquidnode.controller.latency_input import LatencyInput
from liquidnode.controller.policy import Policy, random_policy
from liquidnode.policies import shipped_policies


def _random(
    kind: str,
    feedback: bool = False,
    latency: float | None = None,
    low_pass: float | None = None,
    **options: object,
) -> Callable[[], Policy]:
    """``latency``: the policy has a latency input and is told that many control periods;
    ``low_pass``: its actions pass through a low-pass of that cut-off (Hz)."""

    def make() -> Policy:
        rng = np.random.default_rng(3)
        policy = random_policy(
            5,
            2,
            cell=kind,
            units=12,
            seed=7,
            obs_mean=rng.normal(size=5),
            obs_std=rng.uniform(0.5, 2.0, 5),
            action_scale=np.array([2.0, 0.5]),
            action_offset=np.array([0.1, -0.3]),
            normalization={"clip": 3.0},
            action={
                "squash": "tanh",
                "feedback": feedback,
                **({} if low_pass is None else {"low_pass_hz": low_pass}),
            },
            time_scale=25.0,
            control_rate_hz=25.0,
            cell_options=options,
            latency_input=None if latency is None else LatencyInput().as_metadata(),
        )
        if latency is not None:
            policy.set_latency(latency)
        return policy

    return make


RANDOM = {
    "cfc-default-backbone": _random("cfc"),
    "cfc-pure": _random("cfc", mode="pure"),
    "cfc-no_gate-gelu-2layers": _random(
        "cfc", mode="no_gate", backbone_layers=2, activation="gelu"
    ),
    "cfc-no-backbone": _random("cfc", backbone_layers=0),
    "cfc-silu": _random("cfc", activation="silu"),
    "cfc-relu-2layers": _random("cfc", activation="relu", backbone_layers=2),
    "wired_cfc-default": _random("wired_cfc"),
    "wired_cfc-pure": _random("wired_cfc", mode="pure"),
    "wired_cfc-no_gate": _random("wired_cfc", mode="no_gate"),
    "ltc-ncp": _random("ltc"),
    "ltc-fully-connected": _random("ltc_fc"),
    "lstm": _random("lstm"),
    "gru": _random("gru"),
    "mlp-3-frames-relu": _random("mlp", frames=3, activation="relu"),
    "mlp-memoryless": _random("mlp", hidden_layers=1),
}
# action feedback (the previous squashed action is a cell input and part of the state)
FEEDBACK = {
    "cfc-feedback": _random("cfc", feedback=True),
    "wired_cfc-feedback": _random("wired_cfc", feedback=True),
    "ltc-feedback": _random("ltc", feedback=True),
    "lstm-feedback": _random("lstm", feedback=True),
    "mlp-memoryless-feedback": _random("mlp", feedback=True, hidden_layers=1),
}
RANDOM.update(FEEDBACK)
# a latency input (the exporters fold the told latency into the first layer's bias)
LATENCY = {
    "cfc-latency-feedback": _random("cfc", feedback=True, latency=0.7),
    "cfc-no-backbone-latency": _random("cfc", latency=1.2, backbone_layers=0),
    "cfc-pure-latency": _random("cfc", latency=0.3, mode="pure"),
}
RANDOM.update(LATENCY)
# an action low-pass (the filtered command is the state's last act_dim values)
LOW_PASS = {
    "cfc-low-pass": _random("cfc", low_pass=4.0),
    "gru-feedback-low-pass": _random("gru", feedback=True, low_pass=2.5),
    "cfc-latency-feedback-low-pass": _random("cfc", feedback=True, latency=0.4, low_pass=6.0),
    "mlp-memoryless-low-pass": _random("mlp", hidden_layers=1, low_pass=3.0),
}
RANDOM.update(LOW_PASS)
SHIPPED = {p.stem: (lambda p=p: Policy.load(p)) for p in shipped_policies()}
ALL = {**RANDOM, **SHIPPED}


def one_unfold(make: Callable[[], Policy]) -> Callable[[], Policy]:
    """The LTC policy ``make()`` with ``ode_unfolds = 1`` (one semi-implicit Euler step per
    control step): its fixed-point per-step error bound is a single unfold's."""

    def made() -> Policy:
        from liquidnode.controller.cells.ltc import LTCCell

        p = make()
        cell = LTCCell(dict(p.cell.config, ode_unfolds=1), p.cell.weights())
        return Policy(p.metadata, cell, p.obs_mean, p.obs_std, p.action_scale, p.action_offset)

    return made


ONE_UNFOLD = {
    "ltc-ncp-1-unfold": one_unfold(RANDOM["ltc-ncp"]),
    "ltc-fully-connected-1-unfold": one_unfold(RANDOM["ltc-fully-connected"]),
    "InvertedPendulum-v5-ltc-1-unfold": one_unfold(SHIPPED["InvertedPendulum-v5-ltc"]),
}
ALL.update(ONE_UNFOLD)


def pendulum_returns(policy: Policy, compiled: object, seed: int = 11) -> dict[str, float]:
    """Mean return of ``policy`` (``"float"``) and of its compiled export (``"fixed"``, run
    with ``policy``'s metadata) over two 1000-tick InvertedPendulum-v5 episodes from ``seed``,
    each through the same control loop."""
    from liquidnode.controller.loop import ControlLoop, LoopConfig
    from liquidnode.sim import make_plant

    compiled.metadata = policy.metadata  # type: ignore[attr-defined]
    returns = {}
    for label, runner in (("float", policy), ("fixed", compiled)):
        plant = make_plant("InvertedPendulum-v5", max_ticks=1000)
        try:
            loop = ControlLoop(plant, runner, LoopConfig(realtime=False, max_ticks=1000))  # type: ignore[arg-type]
            summary = loop.run(episodes=2, seed=seed)
        finally:
            plant.disconnect()
        returns[label] = float(np.mean([e.return_ for e in summary.episodes]))
    return returns
