"""The ``liquidnode`` command line.

One module per subcommand in this package; each exposes ``add_parser(subparsers)`` and
``run(args) -> int``. Modules import heavy dependencies (mujoco, torch) inside ``run`` so
that ``liquidnode --help`` is instant and the runtime commands never import torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.shutdown import (
    EXIT_USER_ERROR,
    interrupt_exit_code,
    stop_reason,
    stop_signals,
)

#: Subcommands in the order ``--help`` lists them.
SUBCOMMANDS = (
    "sim",
    "eval",
    "train",
    "deploy",
    "hil",
    "supervise",
    "twin",
    "replay",
    "logs",
    "bench",
    "policies",
    "stress",
    "sweep",
    "export",
    "board",
    "ports",
)


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line: ``liquidnode sim: error: ...``, and whose
    help shows every default one way (:class:`liquidnode.cli.arguments.HelpFormatter`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from liquidnode.cli.arguments import HelpFormatter

        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available subcommand."""
    parser = _Parser(
        prog="liquidnode",
        description=(
            "Run liquid neural network (CfC/LTC/NCP) policies in a fixed-rate control loop, "
            "against MuJoCo simulations or a microcontroller over serial."
        ),
    )
    from liquidnode import __version__

    parser.add_argument("--version", action="version", version=f"liquidnode {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(f"liquidnode.cli.{name}_cmd").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``liquidnode`` console script; exit codes in
    :mod:`liquidnode.controller.shutdown` (0 ok, 1 check failed, 2 user error, 3 run fault,
    4 log incomplete, 128+N signal N)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with stop_signals():  # SIGTERM and SIGHUP stop a run the way Ctrl-C does
            return int(args.run(args) or 0)
    except LiquidNodeError as exc:
        print(f"liquidnode {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as exc:
        print(f"liquidnode {args.command}: interrupted ({stop_reason(exc)})", file=sys.stderr)
        return interrupt_exit_code(exc)
    except BrokenPipeError:
        # The reader went away (`liquidnode logs x.mcap | head`): not an error of ours.
        # Point stdout at devnull so the interpreter's final flush does not raise again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
