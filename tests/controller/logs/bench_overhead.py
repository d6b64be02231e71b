"""Logging overhead at 1 kHz, measured side by side: ``liquidnode sim`` in real time with the
default log and with ``--no-log`` (not collected by pytest; run it by hand).

    python tests/controller/logs/bench_overhead.py [--seconds 10] [--pairs 3] [--fifo 20] [--json]

Each run is a fresh process running the ``sim`` subcommand::

    liquidnode sim --env pendulum_1khz.xml --rate 1000 --max-ticks 10000 --seed 0 \\
        --policy random.safetensors --json  (--log run.mcap | --no-log)

on the MJCF pendulum (``sim/models/pendulum.xml`` rewritten with a 1 ms physics step and one
step per tick) with a random 16-unit CfC policy. Runs alternate (log, no-log, no-log, log,
...) so that load from other processes hits both alike. ``--fifo PRIO`` runs them under
SCHED_FIFO (as a robot node would run; needs root), which keeps other processes on a shared
machine from dominating the figures. For logged runs the log is read back and its tick count
compared with the loop's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

CHILD = """
import os, sys, argparse
fifo = int(sys.argv[1])
if fifo:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(fifo))
from liquidnode.cli import sim_cmd
parser = argparse.ArgumentParser(prog="liquidnode")
sim_cmd.add_parser(parser.add_subparsers())
args = parser.parse_args(sys.argv[2:])
sys.exit(args.run(args))
"""


def _model_1khz(directory: Path) -> Path:
    xml = (ROOT / "sim" / "models" / "pendulum.xml").read_text()
    xml = re.sub(r'timestep="[0-9.]+"', 'timestep="0.001"', xml)
    xml = re.sub(r'(name="liquidnode_frame_skip" data=")[0-9]+', r"\g<1>1", xml)
    xml = re.sub(r'(name="liquidnode_max_ticks" data=")[0-9]+', r"\g<1>1000000", xml)
    path = directory / "pendulum_1khz.xml"
    path.write_text(xml)
    return path


def _policy(directory: Path) -> Path:
    import numpy as np

    from liquidnode.controller.policy import random_policy

    path = directory / "random.safetensors"
    random_policy(3, 1, seed=1, action_scale=np.array([2.0])).save(path)
    return path


def _run(mode: str, i: int, tmp: Path, model: Path, policy: Path, args: argparse.Namespace) -> dict:
    log = tmp / f"run{i}.mcap"
    ticks = str(round(args.seconds * 1000))
    argv = ["sim", "--env", str(model), "--rate", "1000", "--max-ticks", ticks, "--seed", "0",
            "--policy", str(policy), "--json"]  # fmt: skip
    argv += ["--log", str(log)] if mode == "log" else ["--no-log"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(args.fifo), *argv],
        capture_output=True, text=True, env=env, check=True, cwd=tmp,
    )  # fmt: skip
    out = json.loads(done.stdout.strip().splitlines()[-1])
    result = {
        "log": mode == "log",
        "ticks": out["episodes"][0]["ticks"],
        "lateness_us": out["lateness_us"],
        "overruns": out["overruns"],
        "rate_hz": out["rate_hz"],
    }
    if mode == "log":
        from liquidnode.controller.logs import load_episode

        result["ticks_logged"] = load_episode(log).ticks
        result["log_bytes"] = log.stat().st_size
        log.unlink()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="run length, s (10)")
    ap.add_argument("--pairs", type=int, default=3, help="log/no-log pairs (3)")
    ap.add_argument("--fifo", type=int, default=0, metavar="PRIO", help="SCHED_FIFO priority")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model, policy = _model_1khz(tmp), _policy(tmp)
        order = []
        for i in range(args.pairs):
            order += ["log", "nolog"] if i % 2 == 0 else ["nolog", "log"]
        for i, mode in enumerate(order):
            runs.append(_run(mode, i, tmp, model, policy, args))
    p99 = {
        m: [r["lateness_us"]["p99"] for r in runs if r["log"] == (m == "log")]
        for m in ("log", "nolog")
    }
    med = {m: statistics.median(v) for m, v in p99.items()}
    report = {
        "seconds": args.seconds,
        "rate_hz": 1000.0,
        "fifo": args.fifo,
        "runs": runs,
        "p99_us_median": med,
        "p99_ratio_log_vs_nolog": med["log"] / med["nolog"] if med["nolog"] else None,
        "all_ticks_logged": all(r["ticks_logged"] == r["ticks"] for r in runs if r["log"]),
    }
    if args.json:
        print(json.dumps(report))
        return
    for r in runs:
        lat = r["lateness_us"]
        logged = f"  logged {r['ticks_logged']} ({r['log_bytes'] / 1e6:.1f} MB)" if r["log"] else ""
        print(f"{'log  ' if r['log'] else 'nolog'}  ticks {r['ticks']:>6}  lateness p50 "
              f"{lat['p50']:6.2f}  p99 {lat['p99']:8.2f}  max {lat['max']:8.1f} µs  "
              f"overruns {r['overruns']:>3}{logged}")  # fmt: skip
    print(f"median p99: log {med['log']:.2f} µs vs no-log {med['nolog']:.2f} µs "
          f"(ratio {report['p99_ratio_log_vs_nolog']:.3f}); every tick logged: "
          f"{report['all_ticks_logged']}")  # fmt: skip


if __name__ == "__main__":
    main()
