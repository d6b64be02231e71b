"""Regenerate the golden logs in tests/fixtures/ (run by hand; not collected by pytest).

    python tests/controller/logs/make_fixtures.py

- ``sim_inverted_pendulum.mcap``: ``liquidnode sim --seed 0 --max-ticks 100 --episodes 2``
  with the shipped default policy (real time, so the timing channels are real).
- ``deploy_twin_inverted_pendulum.mcap``: ``liquidnode deploy --duration 4`` with the shipped
  policy over ``liquidnode twin --env InvertedPendulum-v5`` (the virtual robot on a pty).

Both keep the policy attached, so ``tests/controller/logs/test_golden.py`` replays them with
the policy that wrote them. Regenerate after changing the log format or the shipped policy.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures"
POLICY = ROOT / "policies" / "InvertedPendulum-v5-cfc.safetensors"


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="liquidnode")
    sub = parser.add_subparsers()
    for name in ("sim", "deploy"):
        importlib.import_module(f"liquidnode.cli.{name}_cmd").add_parser(sub)
    args = parser.parse_args(argv)
    return int(args.run(args) or 0)


def make_sim() -> Path:
    out = FIXTURES / "sim_inverted_pendulum.mcap"
    argv = ["sim", "--seed", "0", "--max-ticks", "100", "--episodes", "2", "--log", str(out)]
    assert _cli([*argv, "--policy", str(POLICY)]) == 0
    return out


def make_deploy() -> Path:
    out = FIXTURES / "deploy_twin_inverted_pendulum.mcap"
    twin = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from liquidnode.cli import twin_cmd as t; import "
            "argparse; p = argparse.ArgumentParser(); s = p.add_subparsers(); t.add_parser(s); "
            "a = p.parse_args(sys.argv[1:]); sys.exit(a.run(a))",
            "twin",
            "--env",
            "InvertedPendulum-v5",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert twin.stdout is not None
        line = twin.stdout.readline().strip()
        assert line.startswith("port: "), line
        time.sleep(0.5)
        argv = ["deploy", "--port", line[6:], "--policy", str(POLICY), "--duration", "4"]
        assert _cli([*argv, "--log", str(out)]) == 0
    finally:
        twin.terminate()
        twin.wait(timeout=10)
    return out


if __name__ == "__main__":
    for path in (make_sim(), make_deploy()):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes")
