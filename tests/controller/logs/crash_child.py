"""Child process for the crash tests: writes ticks through the real recorder until killed.

Usage: ``python crash_child.py LOG RATE_HZ [MAX_TICKS]``. Prints ``running`` once the first
tick is enqueued, then ticks at RATE_HZ (absolute deadlines), then closes the recorder and
prints ``done <ticks> <errors>`` if it is not killed first.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from liquidnode.controller.logs import McapRecorder
from liquidnode.controller.records import TickRecord


def main() -> None:
    path, rate = sys.argv[1], float(sys.argv[2])
    max_ticks = int(sys.argv[3]) if len(sys.argv) > 3 else 10**9
    period_ns = round(1e9 / rate)
    rec = McapRecorder(path, command="crash-test", min_free_bytes=0)
    rec.start({"rate_hz": rate})
    rng = np.random.default_rng(0)
    state = rng.normal(size=16).astype(np.float32)
    deadline = time.monotonic_ns()
    i = 0
    while i < max_ticks:
        now = time.monotonic_ns()
        if now < deadline:
            time.sleep((deadline - now) * 1e-9)
        obs = rng.normal(size=4)
        rec.tick(
            TickRecord(
                0,
                i,
                time.time_ns(),
                time.monotonic_ns(),
                1 / rate,
                obs,
                obs[:1].copy(),
                obs[:1].copy(),
                1.0,
                state,
                0.0,
                0.0,
                0.0,
                0.0,
            )
        )
        if i == 0:
            print("running", flush=True)
        i += 1
        deadline += period_ns
    rec.close()
    print(f"done {i} {len(rec.errors)}", flush=True)


if __name__ == "__main__":
    main()
