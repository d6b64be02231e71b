"""Loading what a command runs: the policy file and the environment it names."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from liquidnode.policies import default_policy_path

if TYPE_CHECKING:
    from liquidnode.controller.plant import Plant
    from liquidnode.controller.policy import Policy


def load_policy_and_env(args: argparse.Namespace, command: str) -> tuple[Policy, str, str]:
    """Load ``args.policy`` (or the default) and pick the environment.

    Returns:
        ``(policy, policy_path, env)``.

    Raises:
        PolicyFileError: the policy cannot be loaded.
        LiquidNodeError: no ``--env`` and the policy names no environment.
    """
    from liquidnode.controller.errors import LiquidNodeError
    from liquidnode.controller.policy import Policy

    path = args.policy or default_policy_path(args.env)
    policy = Policy.load(path)
    env = args.env or policy.metadata.env_id
    if not env:
        raise LiquidNodeError(f"policy {path} does not name an environment (env_id); pass --env")
    warn_if_untrained(policy, path, command)
    return policy, path, env


def warn_if_untrained(policy: Policy, path: str, command: str) -> None:
    """Print a warning line when ``policy`` holds random placeholder weights (not trained)."""
    if not policy.is_trained:
        print(
            f"liquidnode {command}: warning: policy {path} is UNTRAINED (random placeholder "
            "weights), so expect it to fail the task; train one with 'liquidnode train'",
            file=sys.stderr,
        )


def warn_if_rate_differs(policy: Policy, plant: Plant, command: str) -> None:
    """Print a warning line when the plant runs at another rate than the policy was made for.

    Not an error: a liquid policy takes the measured dt, but it may behave differently.
    """
    rate = policy.metadata.control_rate_hz
    if rate and abs(rate * plant.spec.control_period_s - 1.0) > 1e-6:
        print(
            f"liquidnode {command}: warning: the policy was made for {rate:g} Hz but "
            f"{plant.spec.name} runs at {plant.spec.rate_hz:g} Hz",
            file=sys.stderr,
        )
