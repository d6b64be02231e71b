"""Import direction between liquidnode's sub-packages, checked on the source.

Every ``import`` and ``from ... import`` statement counts, inside functions and
``TYPE_CHECKING`` blocks too: a lazy import is still a dependency.

Layers, top first; a package may import only the packages below it:

    liquidnode.cli                 the command line, wires everything
    liquidnode.benchmarks          measurements over the layers below
    liquidnode.cluster             Ray: episodes, sweeps and rollouts spread over actors
    liquidnode.firmware_bridge     serial robots   } independent of each other
    liquidnode.sim                 MuJoCo plants   }
    liquidnode.policies            shipped policy files
    liquidnode.controller          runtime, loop, safety, logs, training
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: import name -> source folder (the ``package-dir`` mapping of pyproject.toml).
FOLDERS = {
    "liquidnode.cli": ROOT / "liquidnode" / "cli",
    "liquidnode.benchmarks": ROOT / "benchmarks",
    "liquidnode.cluster": ROOT / "cluster",
    "liquidnode.firmware_bridge": ROOT / "firmware_bridge",
    "liquidnode.sim": ROOT / "sim",
    "liquidnode.policies": ROOT / "policies",
    "liquidnode.controller": ROOT / "controller",
}

#: What each package may import of the others.
ALLOWED = {
    "liquidnode.cli": set(FOLDERS) - {"liquidnode.cli"},
    "liquidnode.benchmarks": {
        "liquidnode.cluster",
        "liquidnode.firmware_bridge",
        "liquidnode.sim",
        "liquidnode.policies",
        "liquidnode.controller",
    },
    "liquidnode.cluster": {
        "liquidnode.firmware_bridge",
        "liquidnode.sim",
        "liquidnode.policies",
        "liquidnode.controller",
    },
    "liquidnode.firmware_bridge": {"liquidnode.policies", "liquidnode.controller"},
    "liquidnode.sim": {"liquidnode.policies", "liquidnode.controller"},
    "liquidnode.policies": {"liquidnode.controller"},
    "liquidnode.controller": set(),
}

#: Top-level names the folders had before they moved under ``liquidnode``.
OLD_NAMES = {"controller", "sim", "firmware_bridge", "benchmarks", "policies"}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every absolute import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, node.module)]
            if node.module == "liquidnode":  # from liquidnode import sim
                found += [(node.lineno, f"liquidnode.{a.name}") for a in node.names]
    return found


def owner(module: str) -> str | None:
    """The sub-package of FOLDERS that ``module`` belongs to, or None."""
    for package in FOLDERS:
        if module == package or module.startswith(package + "."):
            return package
    return None


def violations(package: str) -> list[str]:
    """Human-readable lines for each import of ``package`` that breaks the layering."""
    bad = []
    for path in sorted(FOLDERS[package].rglob("*.py")):
        for line, module in imported_modules(path):
            where = f"{path.relative_to(ROOT)}:{line}"
            if module.split(".")[0] in OLD_NAMES:
                bad.append(f"{where} imports {module} (use liquidnode.{module})")
                continue
            target = owner(module)
            if target is not None and target != package and target not in ALLOWED[package]:
                bad.append(f"{where}: {package} must not import {module}")
    return bad


@pytest.mark.parametrize("package", list(FOLDERS))
def test_imports_point_down(package):
    assert violations(package) == []


def test_checker_sees_a_lazy_upward_import(tmp_path, monkeypatch):
    """The check itself: a function-level import of the CLI from the controller is caught."""
    (tmp_path / "bad.py").write_text("def f():\n    from liquidnode.cli import main\n")
    monkeypatch.setitem(FOLDERS, "liquidnode.controller", tmp_path)
    monkeypatch.setattr("tests.test_layers.ROOT", tmp_path, raising=True)
    assert violations("liquidnode.controller") == [
        "bad.py:2: liquidnode.controller must not import liquidnode.cli"
    ]
