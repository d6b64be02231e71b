"""``liquidnode policies``: every shipped policy with its env, cell, return and model card."""

from __future__ import annotations

import json
import re

import pytest

from liquidnode.cli import SUBCOMMANDS, main
from liquidnode.cli.policies_cmd import card_returns, card_sections, describe
from liquidnode.controller.policy import Policy, random_policy
from liquidnode.policies import DEFAULT_POLICY, POLICY_DIR, shipped_policies

CARDS = POLICY_DIR / "README.md"


def _run(capsys, *argv: str) -> tuple[int, str]:
    rc = main(["policies", *argv])
    return rc, capsys.readouterr().out


def test_policies_json_lists_every_shipped_file(capsys):
    assert "policies" in SUBCOMMANDS
    rc, out = _run(capsys, "--json")
    assert rc == 0
    doc = json.loads(out)
    rows = {r["file"]: r for r in doc["policies"]}
    assert sorted(rows) == [p.name for p in shipped_policies()] and len(rows) >= 6
    assert [name for name, r in rows.items() if r["default"]] == [DEFAULT_POLICY]
    sections = card_sections(CARDS)
    for name, row in rows.items():
        policy = Policy.load(row["path"])
        meta = policy.metadata
        assert row["env"] == meta.env_id and name.startswith(meta.env_id + "-")
        # The state holds the cell's units, then the previous action where it is fed back,
        # then the filtered command where there is a low-pass.
        feedback = meta.action.get("feedback", False)
        assert row["action_feedback"] == feedback
        assert row["action_low_pass_hz"] == meta.action.get("low_pass_hz")
        assert row["latency_input"] == (policy.latency_input is not None)
        extra = (feedback, row["action_low_pass_hz"] is not None)
        units = policy.state.shape[0] - policy.act_dim * sum(extra)
        assert row["units"] == units and row["rate_hz"] == meta.control_rate_hz
        evaluation = meta.provenance["evaluation"]
        assert row["return"]["mean"] == evaluation["mean_return"]
        assert row["return"]["source"] == "provenance.evaluation"
        # The card documents the file in a section of its own, and its table has the return.
        assert row["card"]["section"] in sections and name in row["card"]["section"]
        assert row["card"]["path"] == str(CARDS)
        spread = max(1.0, 2 * evaluation["std_return"])  # the card's eval used other seeds
        assert row["card_return"]["mean"] == pytest.approx(evaluation["mean_return"], abs=spread)
    assert rows["InvertedPendulum-v5-ltc.safetensors"]["cell"] == "ltc"
    ncp = rows["InvertedPendulum-v5-ncp.safetensors"]
    assert (ncp["cell"], ncp["wiring"]) == ("wired_cfc", "auto_ncp")
    cheetah = rows["HalfCheetah-v5-cfc.safetensors"]
    assert (cheetah["cell"], cheetah["units"], cheetah["rate_hz"]) == ("cfc", 32, 20.0)


def test_policies_table_one_line_per_policy(capsys):
    rc, out = _run(capsys)
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["policy", "env", "cell", "units"]
    for path in shipped_policies():
        (line,) = [ln for ln in lines if ln.startswith(path.name)]
        assert re.search(r"\d+ Hz  +-?\d+\.\d\d ± \d+\.\d\d ", line), line
    assert f"{DEFAULT_POLICY} *" in out and str(CARDS) in out


def test_return_falls_back_to_the_model_card(tmp_path):
    path = tmp_path / "InvertedPendulum-v5-cfc.safetensors"
    random_policy(4, 1, seed=0, env_id="InvertedPendulum-v5").save(path)
    returns = card_returns(CARDS)
    row = describe(path, card_sections(CARDS), returns)
    assert row["return"]["mean"] == returns[path.name][0] == 1000.0
    assert "liquidnode eval" in row["return"]["source"]
    assert describe(path, [], {})["return"] is None
