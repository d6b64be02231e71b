"""``liquidnode policies``: list the shipped policies with their env, cell, return and model card.

For each policy file of :mod:`liquidnode.policies`: the environment it controls, the cell
(type, wiring, units; ``+ latency`` where the policy is told its plant's actuation latency,
``+ feedback`` where it feeds its previous action back to its cell, ``+ low-pass F Hz`` where
its actions pass through a low-pass of that cut-off), the control rate, the
return it achieves and where its model card is.

The return is the evaluation recorded in the file's provenance (``provenance.evaluation``:
the trainer's final evaluation, mean and std over its episodes, deterministic actions) when
present, else the ``liquidnode eval`` figure of the model cards' summary table
(``policies/README.md``). ``--json`` keys: ``policies`` (list of ``file``, ``path``,
``default``, ``env``, ``cell``, ``wiring``, ``units``, ``latency_input``, ``action_feedback``,
``action_low_pass_hz`` (a number or null), ``rate_hz``,
``trained``, ``return``
{``mean``, ``std``, ``episodes``, ``seed``, ``source``} or null, ``card_return`` (the card
table's {``mean``, ``std``, ``what``} or null), ``card`` {``path``, ``section``}), ``cards``
(path of the model cards).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from liquidnode.cli.arguments import Subparsers


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Register ``policies``."""
    p = subparsers.add_parser(
        "policies",
        help="list the shipped policies (env, cell, return, model card)",
        description=(
            "List the policy files shipped with liquidnode: environment, cell and units, "
            "control rate, the return each achieves (the evaluation recorded in the file, else "
            "its model card's) and the model card section that documents it. The policy "
            "marked * is the default of 'liquidnode sim'; 'liquidnode sim --env ENV' uses "
            "ENV's -cfc policy."
        ),
    )
    p.add_argument(
        "--json", action="store_true", help="print the list as one JSON object on stdout"
    )
    p.set_defaults(run=run)
    return p


def card_sections(card: Path) -> list[str]:
    """Titles of the model card's ``## `` sections, in order ([] when the file is missing)."""
    try:
        text = card.read_text(encoding="utf-8")
    except OSError:
        return []
    return [line[3:].strip() for line in text.splitlines() if line.startswith("## ")]


def card_returns(card: Path) -> dict[str, tuple[float, float, str]]:
    """The model card summary table's return per policy file: ``{file: (mean, std, what)}``.

    ``what`` is the header of the table's return column (how the return was measured).
    """
    try:
        lines = card.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    out: dict[str, tuple[float, float, str]] = {}
    column, what = -1, ""
    for line in lines:
        if not line.startswith("|"):
            column = -1
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if column < 0:
            hits = [i for i, c in enumerate(cells) if "return" in c]
            if cells and cells[0] == "file" and hits:
                column, what = hits[0], cells[hits[0]].replace("`", "")
            continue
        match = re.fullmatch(r"\**\s*(-?[\d.]+)\s*±\s*([\d.]+)\s*\**", cells[column])
        name = cells[0].strip("`")
        if match and name.endswith(".safetensors"):
            out[name] = (float(match.group(1)), float(match.group(2)), what)
    return out


def describe(path: Path, sections: list[str], card_return: dict[str, Any]) -> dict[str, Any]:
    """One shipped policy as the JSON-able dict documented in the module docstring.

    Raises:
        PolicyFileError: the file is not a valid policy file.
    """
    from liquidnode.controller.policy_file import read_policy_file
    from liquidnode.policies import DEFAULT_POLICY, POLICY_DIR

    meta, _tensors = read_policy_file(path)
    cell = dict(meta.cell)
    raw_wiring = cell.get("wiring")
    wiring: dict[str, Any] = raw_wiring if isinstance(raw_wiring, dict) else {}
    units = cell.get("units") or wiring.get("units")
    prov = dict(meta.provenance or {})
    evaluation = prov.get("evaluation") or {}
    ret: dict[str, Any] | None = None
    if isinstance(evaluation.get("mean_return"), (int, float)):
        ret = {
            "mean": float(evaluation["mean_return"]),
            "std": evaluation.get("std_return"),
            "episodes": evaluation.get("episodes"),
            "seed": evaluation.get("seed"),
            "source": "provenance.evaluation",
        }
    elif path.name in card_return:
        mean, std, what = card_return[path.name]
        ret = {"mean": mean, "std": std, "episodes": None, "seed": None, "source": what}
    section = next((s for s in sections if path.name in s), None)
    return {
        "file": path.name,
        "path": str(path),
        "default": path.name == DEFAULT_POLICY,
        "env": meta.env_id,
        "cell": cell.get("type"),
        "wiring": wiring.get("kind"),
        "units": units,
        "latency_input": meta.latency_input is not None,
        "action_feedback": bool(meta.action.get("feedback", False)),
        "action_low_pass_hz": meta.action.get("low_pass_hz"),
        "rate_hz": meta.control_rate_hz,
        "trained": bool(prov.get("trained", True)),
        "return": ret,
        "card_return": (
            None
            if path.name not in card_return
            else dict(zip(("mean", "std", "what"), card_return[path.name], strict=True))
        ),
        "card": {"path": str(POLICY_DIR / "README.md"), "section": section},
    }


def _cell_text(row: dict[str, Any]) -> str:
    kind = str(row["cell"])
    if row["wiring"] and row["wiring"] != "fully_connected":
        kind += f" ({row['wiring']})"
    if row["latency_input"]:
        kind += " + latency"
    if row["action_feedback"]:
        kind += " + feedback"
    if row["action_low_pass_hz"] is not None:
        kind += f" + low-pass {row['action_low_pass_hz']:g} Hz"
    return kind


def _return_text(ret: dict[str, Any] | None) -> str:
    if ret is None:
        return "-"
    std = "" if ret["std"] is None else f" ± {ret['std']:.2f}"
    return f"{ret['mean']:.2f}{std}"


def format_table(rows: list[dict[str, Any]], cards: Path) -> str:
    """The human-readable listing: one line per policy, then where the cards are."""
    head = ("policy", "env", "cell", "units", "rate", "return", "model card section")
    table = [head]
    for r in rows:
        table.append(
            (
                r["file"] + (" *" if r["default"] else ""),
                str(r["env"]),
                _cell_text(r),
                "-" if r["units"] is None else str(r["units"]),
                "-" if r["rate_hz"] is None else f"{r['rate_hz']:g} Hz",
                _return_text(r["return"]) + ("" if r["trained"] else " (untrained)"),
                r["card"]["section"] or "-",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(head) - 1)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in table
    ]
    sources = sorted({r["return"]["source"] for r in rows if r["return"]})
    lines.append(f"* default of 'liquidnode sim'. model cards: {cards}")
    if sources == ["provenance.evaluation"]:
        ev = next(r["return"] for r in rows if r["return"])
        lines.append(
            "return: the trainer's final evaluation recorded in each file (mean ± std over "
            f"{ev['episodes']} episodes, deterministic actions); the cards add "
            "'liquidnode eval' on other seeds"
        )
    elif sources:
        lines.append(f"return: {'; '.join(sources)}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """List the shipped policies; returns 0."""
    from liquidnode.policies import POLICY_DIR, shipped_policies

    cards = POLICY_DIR / "README.md"
    sections, returns = card_sections(cards), card_returns(cards)
    rows = [describe(path, sections, returns) for path in shipped_policies()]
    if args.json:
        print(json.dumps({"policies": rows, "cards": str(cards)}))
    else:
        print(format_table(rows, cards))
    return 0
