"""``liquidnode logs LOG``: summarise an episode log (ticks, duration, return, timing, events)."""

from __future__ import annotations

import argparse
import json

from liquidnode.cli.arguments import Subparsers


def add_parser(subparsers: Subparsers) -> None:
    """Register the ``logs`` subcommand."""
    p = subparsers.add_parser(
        "logs",
        help="summarise an episode log (.mcap): ticks, duration, return, lateness, events",
        description=(
            "Print a summary of an episode log written by `liquidnode sim` or `deploy`: "
            "ticks, duration, achieved rate, return per episode, lateness p50/p99/max, "
            "median section times and events by kind. A log cut short (killed run) is read "
            "up to its last complete chunk. Exit status 2 if the file is not a readable log."
        ),
    )
    p.add_argument("log", metavar="LOG", help="the .mcap log file")
    p.add_argument(
        "--json",
        action="store_true",
        help=(
            "print one JSON object (keys: path, complete, ticks, duration_s, rate_hz, episodes, "
            "return, lateness_us, sections_us, events, ...; see controller/logs/summary.py)"
        ),
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Summarise ``args.log``; returns 0 (errors raise LogFileError -> exit 2)."""
    from liquidnode.controller.logs.summary import format_summary, summarize

    summary = summarize(args.log)
    if args.json:
        print(json.dumps(summary))
    else:
        print(format_summary(summary))
    return 0
