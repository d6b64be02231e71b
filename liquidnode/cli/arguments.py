"""Argument types and options shared by several subcommands (one convention for all)."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from liquidnode.policies import DEFAULT_POLICY

if TYPE_CHECKING:
    from liquidnode.controller.policy import Policy

#: What each subcommand module's ``add_parser(subparsers)`` receives (``add_subparsers()``).
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class HelpFormatter(argparse.HelpFormatter):
    """The one way every ``--help`` shows defaults: ``(default: X)`` at the end of the text.

    Appended to every option whose default is a value (not None, not a ``store_true`` False);
    an option whose default is not a plain value (None standing for "the environment's own
    rate"...) says it in its help text in the same form, ``(default: the env's own)``, and
    the formatter leaves such a text alone.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        if text is None or "(default" in text or not action.option_strings:
            return text
        default = action.default
        if default is None or default is False or default is argparse.SUPPRESS:
            return text
        return f"{text} (default: %(default)s)"


_N = TypeVar("_N", int, float)


def number_type(kind: Callable[[str], _N], minimum: int, *, inclusive: bool) -> Callable[[str], _N]:
    """An argparse type: ``kind(text)`` (``int`` or ``float``) ``>= minimum`` when
    ``inclusive``, else ``> minimum``; a float must also be finite.

    The error names the bound and the input: ``expected a whole number >= 1, got 'x'`` (ints),
    ``expected a number > 0, got 'x'`` / ``expected a finite number > 0, got inf`` (floats).
    """
    whole = kind is int
    bound = f"{'>=' if inclusive else '>'} {minimum}"

    def check(text: str) -> _N:
        try:
            value = kind(text)
        except ValueError:
            noun = "whole number" if whole else "number"
            raise argparse.ArgumentTypeError(f"expected a {noun} {bound}, got {text!r}") from None
        in_range = value >= minimum if inclusive else value > minimum
        if not (in_range and (whole or math.isfinite(value))):
            noun, shown = ("whole number", str(value)) if whole else ("finite number", text)
            raise argparse.ArgumentTypeError(f"expected a {noun} {bound}, got {shown}")
        return value

    return check


#: argparse type: an integer >= 1.
positive_int = number_type(int, 1, inclusive=True)
#: argparse type: an integer >= 0.
non_negative_int = number_type(int, 0, inclusive=True)
#: argparse type: a finite number > 0.
positive_float = number_type(float, 0, inclusive=False)
#: argparse type: a finite number >= 0.
non_negative_float = number_type(float, 0, inclusive=True)


def add_rt_priority_argument(p: argparse.ArgumentParser) -> None:
    """Add ``--rt-priority N`` (SCHED_FIFO real-time priority for the control loop)."""
    p.add_argument(
        "--rt-priority",
        type=int,
        default=None,
        metavar="N",
        help=(
            "run the control loop under SCHED_FIFO real-time priority N (1-99; needs root or "
            "CAP_SYS_NICE): on a busy machine this keeps 1 kHz lateness in microseconds"
        ),
    )


@contextlib.contextmanager
def rt_priority(args: argparse.Namespace, command: str) -> Iterator[None]:
    """Hold ``--rt-priority`` for the block; a warning line when the system refuses it."""
    from liquidnode.controller.timing import realtime_priority

    with realtime_priority(args.rt_priority) as granted:
        if args.rt_priority is not None and not granted:
            print(
                f"liquidnode {command}: warning: real-time priority {args.rt_priority} not "
                "permitted here (needs root or CAP_SYS_NICE); running at normal priority",
                file=sys.stderr,
            )
        yield


def add_policy_env_arguments(p: argparse.ArgumentParser) -> None:
    """``--policy``, ``--env``, ``--episodes``, ``--seed`` (shared by sim and eval)."""
    p.add_argument(
        "--policy",
        metavar="PATH",
        default=None,
        help=(
            "policy file (.safetensors) (default: the shipped policies/<env>-cfc.safetensors "
            f"for --env, else policies/{DEFAULT_POLICY})"
        ),
    )
    p.add_argument(
        "--env",
        metavar="ID|MJCF",
        default=None,
        help=(
            "Gymnasium MuJoCo id (e.g. InvertedPendulum-v5, HalfCheetah-v5) or an MJCF .xml "
            "file (e.g. sim/models/pendulum.xml) (default: the policy's env_id)"
        ),
    )


#: ``--seed`` of every command that draws random numbers: the same default everywhere.
DEFAULT_SEED = 0


def add_seed_argument(p: argparse.ArgumentParser, what: str) -> None:
    """``--seed S`` (an integer >= 0, default :data:`DEFAULT_SEED`); ``what`` says what it
    seeds, e.g. "episode 0's reset; episode i uses S+i". Commands print the seed they used."""
    p.add_argument(
        "--seed", type=non_negative_int, default=DEFAULT_SEED, metavar="S", help=f"seed of {what}"
    )


def add_json_argument(p: argparse.ArgumentParser, what: str = "the result") -> None:
    """``--json``: print ``what`` as one JSON object on stdout (every command has it)."""
    p.add_argument("--json", action="store_true", help=f"print {what} as one JSON object on stdout")


def add_randomize_argument(p: argparse.ArgumentParser) -> None:
    """Add ``--randomize SPEC`` (a randomisation preset name or TOML file)."""
    p.add_argument(
        "--randomize",
        metavar="SPEC",
        default=None,
        help=(
            "randomise the simulation (actuation latency, dt jitter, observation noise, "
            "masses, pushes...) with a spec: a shipped preset name (e.g. InvertedPendulum-v5, "
            "see sim/randomization/) or a TOML file; seeded by --seed, so runs repeat exactly"
        ),
    )


def add_latency_argument(p: argparse.ArgumentParser, *, device: bool) -> None:
    """``--latency-ms MS``: the actuation latency told to a policy with a latency input
    (``LoopConfig.latency_s``; ignored by other policies). ``device``: the plant cannot know
    it (a serial robot), so such a policy needs it."""
    told = (
        "the link's measured actuation latency, told to a policy with a latency input (such a "
        "policy needs it; others ignore it)"
        if device
        else "tell a policy with a latency input this actuation latency instead of the "
        "simulation's own (e.g. to try a wrong estimate; others ignore it)"
    )
    p.add_argument("--latency-ms", type=non_negative_float, default=None, metavar="MS", help=told)


def latency_seconds(args: argparse.Namespace) -> float | None:
    """``--latency-ms`` in seconds (None when not given)."""
    ms = getattr(args, "latency_ms", None)
    return None if ms is None else ms / 1000.0


def randomize_options(args: argparse.Namespace, policy: Policy, seed: int | None) -> dict[str, Any]:
    """``make_plant`` keyword arguments for ``--randomize`` (empty without it).

    Observation noise without scales in the spec uses the policy's ``obs_std``.
    """
    if getattr(args, "randomize", None) is None:
        return {}
    from liquidnode.sim import randomization_spec

    return {
        "randomize": randomization_spec(args.randomize),
        "randomize_seed": 0 if seed is None else seed,
        "obs_scale": getattr(policy, "obs_std", None),
    }


def add_workers_arguments(p: argparse.ArgumentParser, what: str) -> None:
    """``--workers N`` and ``--address ADDR``: spread ``what`` over Ray actors (the
    ``[cluster]`` extra); ``--workers 0`` runs in this process, as without Ray."""
    p.add_argument(
        "--workers",
        type=non_negative_int,
        default=0,
        metavar="N",
        help=f"spread {what} over N Ray actors, one CPU each (0: in this process, no Ray)",
    )
    p.add_argument(
        "--address",
        metavar="ADDR",
        default=None,
        help="Ray cluster to run the --workers on (auto, HOST:6379 or ray://HOST:10001) "
        "(default: start Ray locally on this machine)",
    )
