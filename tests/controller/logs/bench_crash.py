"""How much of a log a ``kill -9`` costs: the age of the newest surviving tick (not collected
by pytest; run it by hand).

    python tests/controller/logs/bench_crash.py [--trials 10] [--rate 1000]

Each trial starts ``crash_child.py`` (ticks through the real recorder at RATE Hz), kills it
with SIGKILL at a random moment 0.2-1.2 s into the run, reads the log back and reports how
old its newest tick was at the kill (ms). The figure depends on the flush interval (20 ms)
and on how promptly the machine schedules the writer thread; the 1-minute load average is
printed with it.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from liquidnode.controller.logs import load_episode

CHILD = Path(__file__).with_name("crash_child.py")
ROOT = Path(__file__).resolve().parents[3]


def trial(seed: int, rate: float, folder: Path) -> float:
    """One kill; returns the newest surviving tick's age at the kill, ms."""
    path = folder / f"killed-{seed}.mcap"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(path), str(rate)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    child.stdout.readline()  # "running"
    time.sleep(random.Random(seed).uniform(0.2, 1.2))
    kill_ns = time.time_ns()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    return (kill_ns - int(load_episode(path).wall_time_ns[-1])) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--rate", type=float, default=1000.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        ages = [trial(i, args.rate, Path(folder)) for i in range(args.trials)]
    print(
        f"newest surviving tick at the kill, ms: min {min(ages):.1f}, median "
        f"{sorted(ages)[len(ages) // 2]:.1f}, max {max(ages):.1f} over {len(ages)} kills at "
        f"{args.rate:g} Hz; 1-minute load average {os.getloadavg()[0]:.2f} on "
        f"{os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
