"""``python -m liquidnode.benchmarks [--quick] [--json] [--update-readme] [--only NAME ...]``.

Runs the side-by-side comparisons in one process, prints a table (or, with ``--json``, one JSON
object on stdout) and optionally rewrites the README's benchmark section. Every BLAS / OpenMP
pool is pinned to one thread before numpy loads (as torch is): on a small shared machine a
multi-threaded BLAS turns a 0.2 ms matrix-vector product into several ms of contention.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:
    from liquidnode.benchmarks.harness import Section

#: Comparisons in the order they run and print.
NAMES = (
    "policy_latency",
    "constant_cost",
    "loop_timing",
    "serial_rtt",
    "sim_overhead",
    "device",
    "robustness",
)
README = Path(__file__).resolve().parent.parent / "README.md"


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add the benchmark options to ``parser`` (or a new one)."""
    p = parser or argparse.ArgumentParser(
        prog="python -m liquidnode.benchmarks", description="Run the liquidnode benchmarks."
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="shorter runs (under 5 minutes on a 2-core machine); default is the full run",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument(
        "--update-readme",
        action="store_true",
        help="rewrite the README section between <!-- bench:start --> and <!-- bench:end -->",
    )
    p.add_argument(
        "--readme", default=str(README), help="README to update (default: the repository's)"
    )
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # smoke test sizes
    p.add_argument(
        "--only",
        nargs="+",
        choices=NAMES,
        metavar="NAME",
        help=f"run only these comparisons ({', '.join(NAMES)})",
    )
    return p


def run_all(
    names: Sequence[str],
    quick: bool,
    tiny: bool = False,
    log: Callable[[str], None] | None = None,
) -> list[Section]:
    """Run the named comparisons; a comparison that crashes is reported, not raised."""
    import importlib
    import traceback

    from liquidnode.benchmarks.harness import Section

    sections: list[Section] = []
    for name in names:
        if log:
            log(f"running {name} ...")
        module = importlib.import_module(f"liquidnode.benchmarks.{name}")
        t0 = time.perf_counter()
        try:
            sec = module.run(quick=quick, tiny=tiny)
        except Exception as exc:  # report, never crash the whole run
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            sec = Section(module.KEY, module.TITLE, unavailable=f"failed: {detail}")
        sec.data["wall_s"] = time.perf_counter() - t0
        sections.append(sec)
    return sections


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 even when targets are missed)."""
    args = build_parser().parse_args(argv)
    from liquidnode.benchmarks import report

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    sections = run_all(args.only or NAMES, quick=args.quick, tiny=args.tiny, log=log)
    flags = [f for f, on in (("--quick", args.quick), ("--update-readme", False)) if on]
    meta = {
        "mode": "tiny" if args.tiny else "quick" if args.quick else "full",
        "date": report.now_utc(),
        "wall_s": time.perf_counter() - t0,
        "command": " ".join(["liquidnode bench", *flags]),
        "machine": report.machine(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "LIQUIDNODE_NO_KERNEL")},
    }
    if args.json:
        print(json.dumps(report.to_json(sections, meta)))
    else:
        print(report.to_text(sections, meta))
    if args.update_readme:
        report.update_readme(args.readme, report.to_markdown(sections, meta))
        log(f"updated {args.readme}")
    return 0


def _main_stoppable() -> int:
    """:func:`main` with SIGINT, SIGTERM and SIGHUP stopping it as Ctrl-C does: the running
    comparison's ``finally`` blocks stop what it started, one line goes to stderr, and the exit
    status is 128+N."""
    from liquidnode.controller.shutdown import interrupt_exit_code, stop_reason, stop_signals

    try:
        with stop_signals():
            return main()
    except KeyboardInterrupt as exc:
        print(f"liquidnode bench: interrupted ({stop_reason(exc)})", file=sys.stderr)
        return interrupt_exit_code(exc)


if __name__ == "__main__":
    sys.exit(_main_stoppable())
