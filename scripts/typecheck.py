"""Run mypy over every module of the ``liquidnode`` package, under its installed names.

The repository maps its top-level folders into one import package with setuptools
``package-dir`` (``controller/`` is ``liquidnode.controller``, ...). An editable install
resolves those names through an import hook, which mypy cannot follow: ``mypy -p liquidnode``
finds only ``liquidnode/`` itself and reports every ``liquidnode.controller`` import as
missing. This script reads ``packages`` and ``package-dir`` from pyproject.toml, names
every module file of every listed package the way the installed package names it, and
hands that list to mypy, so each file is checked once, under the name the code imports.

The mypy settings come from ``[tool.mypy]`` in pyproject.toml. Extra arguments are passed
to mypy (``--no-incremental``, ``--show-traceback``, ...); file or module targets are not
accepted, the package list is the target.

Usage: ``python scripts/typecheck.py [MYPY_OPTION ...]``; exit status 0 when clean,
1 when mypy reports errors, 2 when it cannot run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mypy import build
from mypy.errors import CompileError
from mypy.fscache import FileSystemCache
from mypy.main import process_options
from mypy.modulefinder import BuildSource

if sys.version_info >= (3, 11):
    import tomllib
else:  # mypy depends on tomli before Python 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def package_sources(root: Path = ROOT) -> list[BuildSource]:
    """One ``BuildSource`` per module file of each package listed in ``root``/pyproject.toml.

    A package ``a.b`` lives in the folder that ``package-dir`` maps it (or its nearest
    listed ancestor) to; only the ``*.py`` files directly in that folder belong to it, as in
    the installed package (sub-folders are packages of their own or package data). Paths
    are relative to ``root``.
    """
    with open(root / "pyproject.toml", "rb") as f:
        setuptools_cfg = tomllib.load(f)["tool"]["setuptools"]
    package_dir: dict[str, str] = setuptools_cfg.get("package-dir", {})
    sources = []
    for package in setuptools_cfg["packages"]:
        parts = package.split(".")
        for depth in range(len(parts), 0, -1):
            base = ".".join(parts[:depth])
            if base in package_dir:
                folder = Path(package_dir[base], *parts[depth:])
                break
        else:
            folder = Path(*parts)
        if not (root / folder / "__init__.py").is_file():
            raise SystemExit(f"typecheck: package {package} has no {folder}/__init__.py")
        for path in sorted((root / folder).glob("*.py")):
            module = package if path.stem == "__init__" else f"{package}.{path.stem}"
            sources.append(BuildSource(str(folder / path.name), module))
    return sources


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def main(argv: list[str]) -> int:
    """Type-check the package with mypy; print its messages and a summary line."""
    fscache = FileSystemCache()
    targets, options = process_options(argv, require_targets=False, fscache=fscache)
    if targets:
        print("typecheck: give mypy options only; the target is the package", file=sys.stderr)
        return 2
    sources = package_sources()
    try:
        result = build.build(sources, options, fscache=fscache)
    except CompileError as e:
        for line in e.messages:
            print(line)
        return 2
    for line in result.errors:
        print(line)
    errors = [line for line in result.errors if ": error:" in line]
    if errors:
        files = {line.split(":", 1)[0] for line in errors}
        print(
            f"Found {_count(len(errors), 'error')} in {_count(len(files), 'file')} "
            f"(checked {len(sources)} source files)"
        )
        return 1
    print(f"Success: no issues found in {len(sources)} source files")
    return 0


if __name__ == "__main__":
    import os

    os.chdir(ROOT)
    sys.exit(main(sys.argv[1:]))
