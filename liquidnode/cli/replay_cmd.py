"""``liquidnode replay LOG``: replay a logged episode through the policy and/or the simulation.

Exit status: 0 within tolerance, 1 beyond it (a regression), 2 unreadable log or bad input.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from liquidnode.cli.arguments import Subparsers


def add_parser(subparsers: Subparsers) -> None:
    """Register the ``replay`` subcommand."""
    p = subparsers.add_parser(
        "replay",
        help="replay a log through the policy (regression test) and/or the simulation",
        description=(
            "Policy replay (default): feed the logged observations and measured dt to the "
            "policy the log recorded (attached to the log) or to --policy, from the logged "
            "initial hidden state, and report the largest deviation from the logged raw "
            "actions. Exit status 1 when it exceeds --tol: a regression test in one line. "
            "--sim also resets the simulation to each episode's seed, re-drives it with the "
            "logged sent actions and reports the largest observation drift (limit --sim-tol). "
            "--plot writes a PNG with one panel per observation and action channel (named, "
            "with units) and the loop timing."
        ),
    )
    p.add_argument("log", metavar="LOG", help="the .mcap log file")
    p.add_argument(
        "--policy",
        metavar="PATH",
        help="compare this policy file against the log instead of the one the log recorded",
    )
    p.add_argument(
        "--episode",
        type=int,
        metavar="N",
        default=None,
        help="replay only episode N (from 0; negative counts from the end) (default: all)",
    )
    p.add_argument(
        "--tol",
        type=float,
        default=0.0,
        metavar="X",
        help="largest allowed |replayed - logged| action, env units; 0: bit-for-bit",
    )
    p.add_argument("--sim", action="store_true", help="also replay the logged actions in the sim")
    p.add_argument(
        "--sim-tol",
        type=float,
        default=1e-9,
        metavar="X",
        help="largest allowed |simulated - logged| observation with --sim, env units",
    )
    p.add_argument(
        "--no-policy",
        action="store_true",
        help="skip the policy replay (e.g. with --sim or --plot only)",
    )
    p.add_argument(
        "--plot",
        metavar="PNG",
        help="write a PNG over time: one panel per observation and action channel, loop "
        "timing, dt (one file per episode: PNG, or NAME-epN.png when several are replayed)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: log, tol, sim_tol, passed, max_action_dev, "
        "max_obs_drift, episodes (per episode: episode, ticks, policy, sim, plot)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Replay ``args.log``; returns 0 within tolerance, 1 beyond it."""
    from liquidnode.controller.errors import LogFileError
    from liquidnode.controller.logs.episode import read_log
    from liquidnode.controller.logs.replay import replay_policy, replay_sim

    if args.tol < 0 or args.sim_tol < 0:
        raise LogFileError(
            f"tolerances must be >= 0, got --tol {args.tol} --sim-tol {args.sim_tol}"
        )
    log = read_log(args.log)
    episodes = log.episodes
    if not episodes:
        cut = " (it was cut short: no footer, nothing after its start)" if not log.complete else ""
        raise LogFileError(f"log {args.log} holds no ticks to replay{cut}")
    if args.episode is not None:
        try:
            episodes = [episodes[args.episode]]
        except IndexError:
            raise LogFileError(
                f"log {args.log} has {len(log.episodes)} episode(s); no episode {args.episode}"
            ) from None
    rows: list[dict[str, Any]] = []
    for ep in episodes:
        row: dict[str, Any] = {"episode": ep.index, "ticks": ep.ticks}
        replayed = None
        if not args.no_policy:
            result = replay_policy(ep, args.policy)
            replayed = result
            row["policy"] = result.to_json()
        if args.sim:
            row["sim"] = replay_sim(ep).to_json()
        if args.plot:
            from liquidnode.controller.logs.plot import plot_episode

            png = Path(args.plot)
            if len(episodes) > 1:
                png = png.with_name(f"{png.stem}-ep{ep.index}{png.suffix or '.png'}")
            plot_episode(
                ep,
                png,
                replayed=None if replayed is None else replayed.actions,
                replayed_label=f"replayed ({Path(replayed.policy).name})" if replayed else "",
            )
            row["plot"] = str(png)
        rows.append(row)
    action_devs = [r["policy"]["max_action_dev"] for r in rows if "policy" in r]
    drifts = [r["sim"]["max_obs_drift"] for r in rows if "sim" in r]
    max_dev = max(action_devs) if action_devs else None
    max_drift = max(drifts) if drifts else None
    passed = (max_dev is None or max_dev <= args.tol) and (
        max_drift is None or max_drift <= args.sim_tol
    )
    report: dict[str, Any] = {
        "log": str(args.log),
        "complete": log.complete,
        "tol": args.tol,
        "sim_tol": args.sim_tol,
        "passed": passed,
        "max_action_dev": max_dev,
        "max_obs_drift": max_drift,
        "episodes": rows,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(_format(report))
    return 0 if passed else 1


def _format(result: dict[str, Any]) -> str:
    lines = [f"replay of {result['log']}" + ("" if result["complete"] else " (cut short)")]
    for row in result["episodes"]:
        parts = [f"episode {row['episode']}: {row['ticks']} ticks"]
        pol = row.get("policy")
        if pol:
            exact = ", bit-for-bit" if pol["bit_exact"] else ""
            state = (
                "" if pol["max_state_dev"] is None else f", state dev {pol['max_state_dev']:.3g}"
            )
            parts.append(
                f"policy ({pol['policy']}) max action dev {pol['max_action_dev']:.3g}"
                f"{state}{exact}"
                + (f", worst at tick {pol['worst_tick']}" if pol["worst_tick"] >= 0 else "")
            )
        sim = row.get("sim")
        if sim:
            parts.append(
                f"sim ({sim['plant']}) max obs drift {sim['max_obs_drift']:.3g}"
                + (f", worst at tick {sim['worst_tick']}" if sim["worst_tick"] >= 0 else "")
            )
        if row.get("plot"):
            parts.append(f"plot {row['plot']}")
        lines.append("; ".join(parts))
    verdict = "PASS" if result["passed"] else "FAIL"
    lines.append(
        f"{verdict}: max action dev {_g(result['max_action_dev'])} (tol {result['tol']:g}), "
        f"max obs drift {_g(result['max_obs_drift'])} (sim tol {result['sim_tol']:g})"
    )
    return "\n".join(lines)


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
