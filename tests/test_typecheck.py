"""scripts/typecheck.py hands mypy every module of ``liquidnode``, under its import name."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _typecheck_script():
    spec = importlib.util.spec_from_file_location("typecheck", ROOT / "scripts" / "typecheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _package_files() -> set[Path]:
    """Every ``*.py`` file under a mapped folder whose folders up to it are all packages."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        package_dir = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    found = set()
    for folder in package_dir.values():
        top = ROOT / folder
        for path in top.rglob("*.py"):
            chain = [p for p in path.parents if p == top or top in p.parents]
            if all((p / "__init__.py").is_file() for p in chain):
                found.add(path.resolve())
    return found


def test_every_module_is_checked_under_its_import_name():
    sources = _typecheck_script().package_sources(ROOT)
    checked = {(ROOT / s.path).resolve(): s.module for s in sources}
    assert len(checked) == len(sources), "a file is listed twice"
    missing = _package_files() - set(checked)
    assert not missing, f"not checked (is its package in pyproject's packages?): {missing}"
    for path, module in checked.items():
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin is not None, module
        assert Path(spec.origin).resolve() == path, module
    assert checked[ROOT / "controller" / "loop.py"] == "liquidnode.controller.loop"
    assert checked[ROOT / "liquidnode" / "cli" / "__init__.py"] == "liquidnode.cli"


def test_file_targets_are_refused(capsys):
    assert _typecheck_script().main(["controller/loop.py"]) == 2
    assert "options only" in capsys.readouterr().err
