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
import json
import secrets
import sys
from typing import TYPE_CHECKING

from liquidnode.cli.arguments import (
    Subparsers,
    add_latency_argument,
    add_policy_env_arguments,
    add_randomize_argument,
    add_rt_priority_argument,
    latency_seconds,
    non_negative_int,
    positive_float,
    positive_int,
    randomize_options,
    rt_priority,
)
from liquidnode.cli.loading import load_policy_and_env, warn_if_rate_differs
from liquidnode.cli.progress import RunProgress
from liquidnode.controller.errors import LiquidNodeError

if TYPE_CHECKING:
    from liquidnode.controller.logs.recorder import McapRecorder


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
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
    p.add_argument("--episodes", type=positive_int, default=1, metavar="N", help="episodes to run")
    p.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        metavar="S",
        help="seed of episode 0's reset (episode i uses S+i); printed on the first line",
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
        help="pace ticks by the wall clock (default: on; --fast turns it off)",
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
    add_randomize_argument(p)
    add_latency_argument(p, device=False)
    p.add_argument(
        "--video",
        metavar="PATH",
        default=None,
        help=(
            "render the run offscreen to PATH (.mp4 or .gif; MUJOCO_GL=egl, else osmesa); the "
            "clip lasts as long as the simulated run"
        ),
    )
    p.add_argument(
        "--fps",
        type=positive_float,
        default=None,
        metavar="FPS",
        help=(
            "video frame rate (default: the control rate up to 60 Hz, else 30; a GIF needs "
            "100/n fps: 50, 33.33, 25, 20, ...)"
        ),
    )
    p.add_argument(
        "--camera",
        metavar="NAME|ID",
        default=None,
        help="model camera for --video/--viewer, by name or index; -1 = free camera",
    )
    p.add_argument(
        "--size",
        type=video_size,
        default=None,
        metavar="WxH",
        help="video frame size in pixels (default: 480x360)",
    )
    p.add_argument(
        "--viewer",
        action="store_true",
        help=(
            "show the run live in MuJoCo's viewer window (needs a display: DISPLAY or "
            "WAYLAND_DISPLAY; closing the window leaves the run going, Ctrl-C stops it)"
        ),
    )
    p.add_argument(
        "--json", action="store_true", help="print the run summary as one JSON object on stdout"
    )
    from liquidnode.controller.logs.options import add_log_arguments

    add_log_arguments(p)
    p.set_defaults(run=run)
    return p


def video_size(text: str) -> tuple[int, int]:
    """argparse type: ``WxH`` in pixels."""
    from liquidnode.sim.video import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    """Run ``sim``; returns an exit code of :mod:`liquidnode.controller.shutdown` (0 ok,
    4 log incomplete, 128+N after signal N; the summary is printed in every case)."""
    video = None
    for flag, value in (("--fps", args.fps), ("--size", args.size)):
        if value is not None and not args.video:
            raise LiquidNodeError(f"{flag} sets the video: give --video PATH too")
    if args.camera is not None and not (args.video or args.viewer):
        raise LiquidNodeError("--camera aims the video or the viewer: give --video or --viewer")
    if args.viewer and args.video:
        raise LiquidNodeError(
            "--viewer and --video cannot be combined (a window and offscreen rendering); choose one"
        )
    if args.viewer:
        from liquidnode.sim.viewer import check_display

        check_display()
    if args.video:
        from liquidnode.sim.video import check_video_path, configure_gl

        check_video_path(args.video)
        configure_gl()  # before mujoco is imported
    from liquidnode.controller.logs.options import open_recorder
    from liquidnode.controller.loop import ControlLoop, LoopConfig
    from liquidnode.controller.plant import Plant
    from liquidnode.controller.shutdown import run_exit_code
    from liquidnode.sim import make_plant

    policy, policy_path, env = load_policy_and_env(args, "sim")
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    simulation = make_plant(
        env, rate_hz=args.rate, max_ticks=args.max_ticks, **randomize_options(args, policy, seed)
    )
    warn_if_rate_differs(policy, simulation, "sim")
    plant: Plant = simulation  # what the loop drives: the simulation, or a wrapper of it
    if args.video:
        from liquidnode.sim.video import VideoRecorder

        width, height = args.size or (480, 360)
        plant = video = VideoRecorder(
            simulation, args.video, fps=args.fps, width=width, height=height, camera=args.camera
        )
    if args.viewer:
        from liquidnode.sim.viewer import ViewerPlant

        plant = ViewerPlant(simulation, camera=args.camera)
    config = LoopConfig(
        realtime=args.realtime, max_ticks=args.max_ticks, latency_s=latency_seconds(args)
    )
    log_meta = {
        "env": env,
        "policy_path": policy_path,
        "seed": seed,
        "rate_hz": plant.spec.rate_hz,
        "randomize": args.randomize,
    }
    mode = "real time" if args.realtime else "fast mode"
    header = (
        f"sim: {env} at {plant.spec.rate_hz:g} Hz ({mode}), policy {policy_path}, "
        f"{args.episodes} episode(s), seed {seed}"
    )

    def open_log() -> McapRecorder | None:
        """Create the log (its path is the first line on stderr), then say what runs."""
        recorder = open_recorder(args, "sim", log_meta)
        if not args.json:
            print(header, file=sys.stderr)
        return recorder

    # The log is created when the run begins, inside its shutdown path: a signal that comes as
    # soon as the file exists still ends it with run_end and the footer.
    loop = ControlLoop(  # validates dims/rate
        plant, policy, config, policy_path=policy_path, open_recorder=open_log
    )
    # Real time: a line as each episode ends and, on a terminal, a live status line.
    progress = RunProgress(
        loop.timer,
        args.episodes,
        sys.stderr,
        live=args.realtime and sys.stderr.isatty(),
        episode_lines=args.realtime,
    )
    loop.on_episode_end = progress.episode_ended
    try:
        with rt_priority(args, "sim"), progress:
            summary = loop.run(episodes=args.episodes, seed=seed)
    except BaseException:
        if loop.summary is not None and loop.summary.episodes:
            print(loop.summary.format_text(), file=sys.stderr)
        raise
    finally:
        if video is not None and video.frames:
            print(
                f"video: rendering {video.frames} frames at {video.fps:g} fps "
                f"({video.duration_s:.2f} s) to {video.path}",
                file=sys.stderr,
            )
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
    return run_exit_code(loop.stopped_by, summary.log_errors)
