#!/usr/bin/env python3
"""Run liquidnode's fuzz campaign (policy files, logs, MJCF numerics, fake serial devices).

Usage::

    nice -n 5 .venv/bin/python scripts/fuzz_campaign.py --policy 4000 --log 4000 --mjcf 2000 \
        --device 1000 --seed 1 --json fuzz.json

Prints progress on stderr and the tally (cases and outcomes per class, defects with the seed
that reproduces each: ``--replay CLASS:SEED``) as JSON on stdout or into ``--json``. Exits 1
when a defect (traceback, hang, data lost, unsafe exit) was found. What each class mutates is
documented in ``liquidnode.benchmarks.fuzz_campaign``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from liquidnode.benchmarks.fuzz_campaign import (
    CLASSES,
    Tally,
    environment,
    run_campaign,
    run_one,
)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for cls in CLASSES:
        p.add_argument(f"--{cls}", type=int, default=0, metavar="N", help=f"{cls} cases")
    p.add_argument("--seed", type=int, default=0, help="campaign seed (default 0)")
    p.add_argument("--json", metavar="PATH", help="write the tally here too")
    p.add_argument("--replay", metavar="CLASS:SEED", help="rerun one case and print its outcome")
    args = p.parse_args()
    if args.replay:
        cls, seed = args.replay.split(":")
        with tempfile.TemporaryDirectory() as d:
            print(run_one(cls, int(seed), Path(d)))
        return 0
    counts = {c: getattr(args, c) for c in CLASSES if getattr(args, c)}
    if not counts:
        p.error("give at least one of " + ", ".join(f"--{c} N" for c in CLASSES))
    t0 = time.monotonic()
    last = [t0]

    def progress(cls: str, i: int, tally: Tally) -> None:
        now = time.monotonic()
        if now - last[0] > 10 or i + 1 == counts[cls]:
            last[0] = now
            print(f"{now - t0:7.0f} s  {cls} {i + 1}/{counts[cls]}  defects "
                  f"{tally.defect_count()}", file=sys.stderr, flush=True)  # fmt: skip

    tally = run_campaign(counts, seed=args.seed, progress=progress)
    report = {
        "command": " ".join(sys.argv),
        "seed": args.seed,
        "wall_s": round(time.monotonic() - t0, 1),
        "environment": environment(),
        **tally.to_json(),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 1 if tally.defect_count() else 0


if __name__ == "__main__":
    sys.exit(main())
