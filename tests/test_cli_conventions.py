"""One convention across the subcommands: ``--json`` everywhere, ``--seed`` 0 by default,
the documented ``--episodes`` defaults, and defaults shown one way in every ``--help``."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys

import pytest

from liquidnode.cli import SUBCOMMANDS, build_parser

#: Commands that take --seed and follow the default; stress keeps 2000000, a seed training
#: never uses (README, "Conventions").
SEEDED = ("sim", "eval", "train", "twin")
#: --episodes defaults as the README documents them.
EPISODES = {"sim": 1, "eval": 10, "stress": 50}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _option(p: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in p._actions if flag in a.option_strings), None)


def _help_lines(p: argparse.ArgumentParser) -> dict[str, str]:
    """Each option's expanded help text, whitespace-collapsed."""
    formatter = p._get_formatter()
    out = {}
    for a in p._actions:
        if a.option_strings and a.help not in (None, argparse.SUPPRESS):
            out[a.option_strings[-1]] = " ".join(formatter._expand_help(a).split())
    return out


PARSERS = _subparsers()


def test_every_subcommand_is_checked():
    assert set(PARSERS) == set(SUBCOMMANDS)


def _leaves(name: str, p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parsers that run something: ``p`` itself, or its actions (``board check``...)."""
    nested = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    if not nested:
        return {name: p}
    return {f"{name} {k}": q for a in nested for k, q in a.choices.items()}


LEAVES = {k: q for name, p in PARSERS.items() for k, q in _leaves(name, p).items()}


@pytest.mark.parametrize("name", sorted(LEAVES))
def test_every_command_has_json(name):
    option = _option(LEAVES[name], "--json")
    assert option is not None and option.default is False


@pytest.mark.parametrize("name", SEEDED)
def test_seed_defaults_to_zero(name):
    option = _option(PARSERS[name], "--seed")
    assert option is not None and option.default == 0


@pytest.mark.parametrize(("name", "default"), EPISODES.items())
def test_episodes_defaults_are_the_documented_ones(name, default):
    assert _option(PARSERS[name], "--episodes").default == default


@pytest.mark.parametrize("name", sorted(LEAVES))
def test_help_shows_every_default_one_way(name):
    parser = LEAVES[name]
    helps = _help_lines(parser)
    for a in parser._actions:
        if not a.option_strings or a.help in (None, argparse.SUPPRESS):
            continue
        text = helps[a.option_strings[-1]]
        assert not re.search(r"\(default(?!: )", text), (name, text)
        assert not re.search(r"[;,] default\b|\bdefault \d|\(\d[\d.e-]*\)", text), (name, text)
        if a.default not in (None, False, argparse.SUPPRESS):
            assert "(default: " in text, (name, text)


def test_formatter_appends_the_value_and_leaves_prose_defaults_alone():
    from liquidnode.cli.arguments import HelpFormatter

    p = argparse.ArgumentParser(prog="x", formatter_class=HelpFormatter)
    p.add_argument("--n", type=int, default=3, help="count")
    p.add_argument("--rate", default=None, help="rate (default: the env's own)")
    p.add_argument("--fast", action="store_true", help="go fast")
    text = " ".join(p.format_help().split())
    assert "count (default: 3)" in text
    assert "rate (default: the env's own)" in text and "None" not in text
    assert "go fast" in text and "False" not in text


def test_twin_json_prints_a_ready_line_and_a_stop_line_with_the_default_env():
    r = subprocess.run(
        [sys.executable, "-m", "liquidnode", "twin", "--duration", "0.2", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    ready, end = (json.loads(line) for line in r.stdout.splitlines())
    assert ready["port"].startswith("/dev/pts/")
    assert ready["env"] == "InvertedPendulum-v5" and ready["seed"] == 0
    assert (ready["obs_dim"], ready["act_dim"]) == (4, 1) and ready["rate_hz"] == pytest.approx(25)
    assert set(end) == {"ticks", "episodes", "overruns", "crc_errors", "dropped"}
