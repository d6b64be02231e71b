"""``liquidnode bench``: the side-by-side benchmarks of the repository's ``benchmarks`` package.

Runs ``python -m liquidnode.benchmarks`` in a fresh interpreter (so BLAS/OpenMP pools are pinned to
one thread before numpy loads, as torch is pinned) with the same options, and passes its
output and exit status through. Comparisons: policy step latency (runtime vs. ncps torch vs.
a C floor), constant cost over 100k ticks (liquid vs. a KV-cache transformer), loop timing
(CycleTimer vs. time.sleep), serial round trip (bridge vs. raw pty echo), simulation overhead
(closed loop vs. bare env.step), the policy on the microcontroller (exported, stepped in HIL
episodes on an emulated ATmega328P and Cortex-M4F: cycles, µs, flash, RAM, |Δaction|; 25-tick
runs of the target rows with --quick, skipped with the reason when simavr, QEMU or the
toolchains are missing), and, in full mode only, robustness (CfC / NCP / LTC vs.
LSTM / GRU / MLP trained alike, on a held-out stress grid). ``--json`` prints one object:
``meta`` (date, machine), ``sections`` (per comparison: ``columns``, ``rows``, ``checks``,
``notes``, ``unavailable``, ``data``) and ``targets`` (``target``, ``measured``, ``met``).

The benchmark process leads its own session (and process group), so a Ctrl-C reaches it once,
through this process: a signal here (SIGINT, SIGTERM, SIGHUP) is passed on to it, it stops its
comparison and the processes that comparison started, and ``bench`` exits 128+N. One that has
not stopped after :data:`STOP_TIMEOUT_S` is killed with its whole group.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys

from liquidnode.cli.arguments import Subparsers
from liquidnode.controller.errors import LiquidNodeError

NAMES = (
    "policy_latency",
    "constant_cost",
    "loop_timing",
    "serial_rtt",
    "sim_overhead",
    "device",
    "robustness",
)
#: How long the benchmark process may take to stop after a signal before it is killed, s.
STOP_TIMEOUT_S = 30.0


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Register ``bench``."""
    p = subparsers.add_parser(
        "bench",
        help="run the benchmarks (latency, constant cost, loop timing, serial, sim, device, "
        "robustness)",
        description=__doc__.split("\n\n", 1)[1].replace("``", "'"),
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="shorter runs (under 5 minutes on a 2-core machine) instead of the full run",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument(
        "--update-readme",
        action="store_true",
        help="rewrite the README section between <!-- bench:start --> and <!-- bench:end -->",
    )
    p.add_argument(
        "--only",
        nargs="+",
        choices=NAMES,
        metavar="NAME",
        help=f"run only these comparisons ({', '.join(NAMES)})",
    )
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Delegate to ``python -m liquidnode.benchmarks`` with the same options."""
    try:
        import liquidnode.benchmarks  # noqa: F401
    except ImportError:
        raise LiquidNodeError(
            "the benchmarks package is not installed; run from a source checkout (pip install -e .)"
        ) from None
    cmd = [sys.executable, "-m", "liquidnode.benchmarks"]
    cmd += [flag for flag, on in (("--quick", args.quick), ("--json", args.json)) if on]
    if args.update_readme:
        cmd.append("--update-readme")
    if args.only:
        cmd += ["--only", *args.only]
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        return proc.wait()
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP (controller.shutdown)
        signum = int(getattr(exc, "signum", signal.SIGINT))
        if _stop(proc, signum) == 128 + signum:
            return 128 + signum  # it stopped as asked and printed the 'interrupted' line
        raise


def _stop(proc: subprocess.Popen[bytes], signum: int) -> int:
    """Pass ``signum`` on to the benchmark process and wait for it; after
    :data:`STOP_TIMEOUT_S` kill its process group. Returns its exit status."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signum)
    try:
        return proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # with the processes it started
        return proc.wait()
