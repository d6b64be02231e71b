"""The Ray options' user errors are one line and exit status 2, before Ray starts."""

from __future__ import annotations

import pytest

from liquidnode.cli import main


@pytest.mark.parametrize("command", ["eval", "stress", "train"])
def test_address_without_workers_is_one_error_line(command, capsys):
    assert main([command, "--address", "127.0.0.1:6379"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"liquidnode {command}: error: --address needs --workers N (N >= 1)"]


def test_a_missing_sweep_file_is_one_error_line(tmp_path, capsys):
    pytest.importorskip("ray", reason="needs Ray: pip install -c constraints.txt -e '.[cluster]'")
    assert main(["sweep", str(tmp_path / "nope.toml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("liquidnode sweep: error: sweep ")
    assert "nope.toml: cannot read" in err[0]


def test_without_ray_the_error_says_what_to_install(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    assert main(["eval", "--workers", "2", "--episodes", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("liquidnode eval: error: --workers, --address and 'sweep' need Ray")
    assert "pip install -c constraints.txt -e '.[cluster]'" in err[-1]
