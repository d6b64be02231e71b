"""Logging overhead at 1 kHz, measured side by side: the same real-time run with and without
the MCAP recorder (not collected by pytest; run it by hand).

    python tests/controller/logs/bench_overhead.py [--seconds 10] [--pairs 2] [--json]

Each run is a fresh process running :class:`controller.loop.ControlLoop` in real time at
1 kHz on the MJCF pendulum (``sim/models/pendulum.xml`` with a 1 ms physics step and one step
per tick) with a random 16-unit CfC policy. Runs alternate (log, no-log, no-log, log, ...) so
that load from other processes hits both alike. For logged runs the log is read back and its
tick count compared with the loop's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _model_1khz(directory: Path) -> Path:
    xml = (ROOT / "sim" / "models" / "pendulum.xml").read_text()
    xml = re.sub(r'timestep="[0-9.]+"', 'timestep="0.001"', xml)
    xml = re.sub(r'(name="liquidnode_frame_skip" data=")[0-9]+', r"\g<1>1", xml)
    path = directory / "pendulum_1khz.xml"
    path.write_text(xml)
    return path


def child(log: str | None, seconds: float, model: str) -> None:
    import numpy as np

    from controller.logs import McapRecorder, load_episode
    from controller.loop import ControlLoop, LoopConfig
    from controller.policy import random_policy
    from sim.mujoco_plant import MjcfPlant

    plant = MjcfPlant(model, rate_hz=1000.0, max_ticks=10**9)
    policy = random_policy(3, 1, seed=1, action_scale=np.array([2.0]))
    recorder = McapRecorder(log, command="bench") if log else None
    loop = ControlLoop(plant, policy, LoopConfig(duration_s=seconds), recorder=recorder)
    out = loop.run(episodes=1, seed=0).to_json()
    result = {
        "log": bool(log),
        "ticks": out["episodes"][0]["ticks"],
        "lateness_us": out["lateness_us"],
        "overruns": out["overruns"],
        "rate_hz": out["rate_hz"],
    }
    if log:
        result["ticks_logged"] = load_episode(log).ticks
        result["log_bytes"] = os.path.getsize(log)
        result["log_errors"] = recorder.errors if recorder else []
    print(json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", choices=["log", "nolog"])
    ap.add_argument("--model")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.child:
        child(args.out if args.child == "log" else None, args.seconds, args.model)
        return
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        model = _model_1khz(Path(tmp))
        order = []
        for i in range(args.pairs):
            order += ["log", "nolog"] if i % 2 == 0 else ["nolog", "log"]
        for i, mode in enumerate(order):
            cmd = [sys.executable, __file__, "--child", mode, "--seconds", str(args.seconds),
                   "--model", str(model), "--out", str(Path(tmp) / f"run{i}.mcap")]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    by = {m: [r for r in runs if r["log"] == (m == "log")] for m in ("log", "nolog")}
    agg = {
        m: {
            "p50_us": sorted(r["lateness_us"]["p50"] for r in rs)[len(rs) // 2],
            "p99_us_each": [round(r["lateness_us"]["p99"], 1) for r in rs],
            "max_us_each": [round(r["lateness_us"]["max"], 1) for r in rs],
            "ticks_each": [r["ticks"] for r in rs],
        }
        for m, rs in by.items()
    }
    p99 = {m: sum(agg[m]["p99_us_each"]) / len(agg[m]["p99_us_each"]) for m in agg}
    report = {
        "seconds": args.seconds,
        "rate_hz": 1000.0,
        "runs": runs,
        "summary": agg,
        "p99_mean_us": p99,
        "p99_ratio_log_vs_nolog": p99["log"] / p99["nolog"] if p99["nolog"] else None,
        "all_ticks_logged": all(r["ticks_logged"] == r["ticks"] for r in by["log"]),
    }
    if args.json:
        print(json.dumps(report))
        return
    for r in runs:
        lat = r["lateness_us"]
        logged = f"  logged {r['ticks_logged']}" if r["log"] else ""
        print(f"{'log  ' if r['log'] else 'nolog'}  ticks {r['ticks']:>6}  lateness p50 "
              f"{lat['p50']:6.1f}  p99 {lat['p99']:7.1f}  max {lat['max']:8.1f} µs  "
              f"overruns {r['overruns']:>3}{logged}")  # fmt: skip
    print(f"p99 mean: log {p99['log']:.1f} µs vs no-log {p99['nolog']:.1f} µs "
          f"(ratio {report['p99_ratio_log_vs_nolog']:.3f}); every tick logged: "
          f"{report['all_ticks_logged']}")  # fmt: skip


if __name__ == "__main__":
    main()
