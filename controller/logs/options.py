"""Command-line options for logging, shared by ``liquidnode sim`` and ``liquidnode deploy``.

Usage in a subcommand::

    from liquidnode.controller.logs.options import add_log_arguments, open_recorder

    def add_parser(subparsers):
        p = subparsers.add_parser("sim", ...)
        add_log_arguments(p)

    def run(args):
        loop = ControlLoop(
            plant, policy, config, open_recorder=lambda: open_recorder(args, "sim", meta)
        )
        loop.run()   # creates the log as it begins, and finishes it however it ends

Passing the opener (not an open recorder) lets the loop's shutdown path own the file from the
moment it exists: a signal arriving right after it is created still ends it with a ``run_end``
event and the footer.

By default a run writes ``runs/<UTC timestamp>/<command>.mcap`` (relative to the current
directory); ``--log PATH`` chooses the file, ``--no-log`` disables logging and
``--no-state`` leaves the policy hidden state out (smaller files).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path
from typing import Any

from liquidnode.controller.logs.recorder import McapRecorder

#: Directory that default log paths go under, relative to the working directory.
DEFAULT_LOG_ROOT = Path("runs")


def add_log_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--log PATH``, ``--no-log`` and ``--no-state`` to ``parser``."""
    group = parser.add_argument_group(
        "episode log (MCAP; open it in Foxglove or `liquidnode logs`)"
    )
    exclusive = group.add_mutually_exclusive_group()
    exclusive.add_argument(
        "--log",
        metavar="PATH",
        default=None,
        help=(
            "write the episode log (observations, actions, timing, events) to this .mcap file "
            "(default: runs/<UTC timestamp>/<command>.mcap)"
        ),
    )
    exclusive.add_argument("--no-log", action="store_true", help="do not write an episode log")
    group.add_argument(
        "--no-state",
        action="store_true",
        help="leave the policy's hidden state out of the log (smaller files; replay still works)",
    )


def default_log_path(command: str, now: _dt.datetime | None = None) -> Path:
    """``runs/<UTC timestamp>/<command>.mcap``, e.g. ``runs/20260101T120000Z/sim.mcap``.

    The timestamp has second resolution; if that directory already holds a log of the same
    command, a ``-2``, ``-3``... suffix keeps both runs.
    """
    now = now or _dt.datetime.now(_dt.timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    path = DEFAULT_LOG_ROOT / stamp / f"{command}.mcap"
    n = 2
    while path.exists():
        path = DEFAULT_LOG_ROOT / f"{stamp}-{n}" / f"{command}.mcap"
        n += 1
    return path


def open_recorder(
    args: argparse.Namespace, command: str, metadata: dict[str, Any] | None = None
) -> McapRecorder | None:
    """Create the run's recorder from the options added by :func:`add_log_arguments`.

    Call it before the run starts: the file is created here, so an unwritable path or a full
    disk stops the command with a clear error instead of losing the log mid-run.

    Args:
        args: parsed arguments (``log``, ``no_log``, ``no_state``; ``policy`` if present).
        command: the subcommand name (``"sim"``, ``"deploy"``), used in the default path.
        metadata: run metadata known to the command (env id, port, seed, rate...), JSON-able.
            Its ``policy_path`` (else ``args.policy``) names the policy file to attach; pass
            it when the command resolved a default policy.
    Returns:
        A :class:`McapRecorder`, or None with ``--no-log``. Prints ``log: PATH`` on stderr.
    Raises:
        LogFileError: the log cannot be created (unwritable path, disk full).
    """
    if getattr(args, "no_log", False):
        return None
    path = Path(args.log) if getattr(args, "log", None) else default_log_path(command)
    meta = {"command": command, "argv": list(sys.argv[1:]), **(metadata or {})}
    policy = meta.get("policy_path") or getattr(args, "policy", None)
    policy_path = Path(policy) if policy and Path(policy).is_file() else None
    if policy_path is not None:
        meta["policy_path"] = str(policy_path)
    recorder = McapRecorder(
        path,
        command=command,
        metadata=meta,
        policy_path=policy_path,
        store_state=not getattr(args, "no_state", False),
    )
    print(f"log: {path}", file=sys.stderr)
    return recorder
