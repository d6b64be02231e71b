"""``liquidnode sim``: run a policy in closed loop against a MuJoCo simulation.

With no arguments: the shipped default policy (``policies/InvertedPendulum-v5-cfc.safetensors``)
balances InvertedPendulum-v5 in real time for one episode, then prints a per-episode table
and how well the loop kept time. ``--json`` prints the same as one JSON object on stdout
(keys documented in the README: ``episodes`` [{``return``, ``ticks``}], ``rate_hz``,
``lateness_us`` {``p50``, ``p99``, ``max``}, ``overruns``, ``sections_us``, ``plant``,
``faults``, ``log`` (path of the episode log or null), plus ``env``, ``policy``, ``seed``,
``video``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
from collections.abc import Iterator
from typing import Any

#: File name of the shipped default policy inside the ``policies`` package.
DEFAULT_POLICY = "InvertedPendulum-v5-cfc.safetensors"


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def default_policy_path(env: str | None = None) -> str:
    """Path of the shipped policy for ``env`` (found via importlib.resources on ``policies``).

    ``env`` None: the default policy (InvertedPendulum-v5). Otherwise the shipped
    ``policies/<env>-cfc.safetensors``; an env with no shipped policy raises.

    Raises:
        LiquidNodeError: no shipped policy for ``env``.
    """
    from importlib.resources import files

    from controller.errors import LiquidNodeError

    shipped = files("policies")
    if env is None:
        return str(shipped / DEFAULT_POLICY)
    path = shipped / f"{env}-cfc.safetensors"
    if not path.is_file():
        names = sorted(f.name for f in shipped.iterdir() if f.name.endswith(".safetensors"))
        raise LiquidNodeError(
            f"no shipped policy for environment {env!r}; pass --policy PATH (shipped: "
            f"{', '.join(names)})"
        )
    return str(path)


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
    from controller.timing import realtime_priority

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
            "policy file (.safetensors); default: the shipped policies/<env>-cfc.safetensors "
            f"for --env, else policies/{DEFAULT_POLICY}"
        ),
    )
    p.add_argument(
        "--env",
        metavar="ID|MJCF",
        default=None,
        help=(
            "Gymnasium MuJoCo id (e.g. InvertedPendulum-v5, HalfCheetah-v5) or an MJCF .xml "
            "file (e.g. sim/models/pendulum.xml); default: the policy's env_id"
        ),
    )


def load_policy_and_env(args: argparse.Namespace, command: str) -> tuple[Any, str, str]:
    """Load ``args.policy`` (or the default) and pick the environment.

    Returns:
        ``(policy, policy_path, env)``.

    Raises:
        PolicyFileError: the policy cannot be loaded.
        LiquidNodeError: no ``--env`` and the policy names no environment.
    """
    from controller.errors import LiquidNodeError
    from controller.policy import Policy

    path = args.policy or default_policy_path(args.env)
    policy = Policy.load(path)
    env = args.env or policy.metadata.env_id
    if not env:
        raise LiquidNodeError(f"policy {path} does not name an environment (env_id); pass --env")
    if not policy.is_trained:
        print(
            f"liquidnode {command}: warning: policy {path} is UNTRAINED (random placeholder "
            "weights), so expect it to fail the task; train one with 'liquidnode train'",
            file=sys.stderr,
        )
    return policy, path, env


def warn_if_rate_differs(policy: Any, plant: Any, command: str) -> None:
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


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``sim``."""
    p = subparsers.add_parser(
        "sim",
        help="run a policy against a MuJoCo simulation in a fixed-rate loop",
        description=(
            "Close the loop between a liquid policy and a MuJoCo simulation (a Gymnasium "
            "MuJoCo v5 id or a plain MJCF file): each tick observes, steps the policy with the "
            "measured dt, filters the action through the safety layer (clamp, NaN guard) and "
            "applies it for one control period. Real time by default (the loop waits for each "
            "deadline and reports its lateness); --fast runs as fast as the simulation allows. "
            "With no arguments the shipped default policy balances InvertedPendulum-v5 for one "
            "episode. Prints a per-episode table (return, ticks, lateness p99, overruns) and a "
            "timing summary, or one JSON object with --json."
        ),
    )
    add_policy_env_arguments(p)
    p.add_argument("--episodes", type=positive_int, default=1, metavar="N", help="episodes (1)")
    p.add_argument(
        "--seed",
        type=non_negative_int,
        default=None,
        metavar="S",
        help="seed of episode 0's reset (episode i uses S+i); default: random, printed",
    )
    p.add_argument(
        "--rate",
        type=positive_float,
        default=None,
        metavar="HZ",
        help=(
            "control rate in Hz; its period must be a whole multiple of the model's physics "
            "step (default: the environment's own rate, e.g. 25 Hz for InvertedPendulum-v5)"
        ),
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--realtime",
        dest="realtime",
        action="store_true",
        default=True,
        help="pace ticks by the wall clock (default)",
    )
    mode.add_argument(
        "--fast",
        dest="realtime",
        action="store_false",
        help="no waiting: run as fast as the simulation allows (dt = nominal period)",
    )
    add_rt_priority_argument(p)
    p.add_argument(
        "--max-ticks",
        type=positive_int,
        default=None,
        metavar="N",
        help="episode length in ticks, replacing the environment's time limit (default: its own)",
    )
    p.add_argument(
        "--video",
        metavar="PATH",
        default=None,
        help="render the run offscreen to PATH (.mp4 or .gif; MUJOCO_GL=egl, else osmesa)",
    )
    p.add_argument(
        "--json", action="store_true", help="print the run summary as one JSON object on stdout"
    )
    from controller.logs.options import add_log_arguments

    add_log_arguments(p)
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``sim``; returns 0, or 130 after Ctrl-C (summary still printed)."""
    video = None
    if args.video:
        from sim.video import check_video_path, configure_gl

        check_video_path(args.video)
        configure_gl()  # before mujoco is imported
    from controller.logs.options import open_recorder
    from controller.loop import ControlLoop, LoopConfig
    from sim import make_plant

    policy, policy_path, env = load_policy_and_env(args, "sim")
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    plant = make_plant(env, rate_hz=args.rate, max_ticks=args.max_ticks)
    warn_if_rate_differs(policy, plant, "sim")
    if args.video:
        from sim.video import VideoRecorder

        plant = video = VideoRecorder(plant, args.video)
    config = LoopConfig(realtime=args.realtime, max_ticks=args.max_ticks)
    loop = ControlLoop(plant, policy, config, policy_path=policy_path)  # validates dims/rate
    loop.recorder = open_recorder(
        args,
        "sim",
        {"env": env, "policy_path": policy_path, "seed": seed, "rate_hz": plant.spec.rate_hz},
    )
    if not args.json:
        mode = "real time" if args.realtime else "fast mode"
        print(
            f"sim: {env} at {plant.spec.rate_hz:g} Hz ({mode}), policy {policy_path}, "
            f"{args.episodes} episode(s), seed {seed}",
            file=sys.stderr,
        )
    try:
        with rt_priority(args, "sim"):
            summary = loop.run(episodes=args.episodes, seed=seed)
    except BaseException:
        if loop.summary is not None and loop.summary.episodes:
            print(loop.summary.format_text(), file=sys.stderr)
        raise
    finally:
        if video is not None and video.frames:
            print(f"video: rendering {video.frames} frames to {video.path}", file=sys.stderr)
            video.write()
        plant.disconnect()
    if args.json:
        out = summary.to_json()
        log = getattr(loop.recorder, "path", None)
        out.update(
            env=env,
            policy=policy_path,
            seed=seed,
            video=args.video,
            log=None if log is None else str(log),
        )
        print(json.dumps(out))
    else:
        print(summary.format_text())
    return 130 if summary.interrupted else 0
