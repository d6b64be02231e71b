"""Every ```python snippet of the README and of the model cards runs as written.

Each snippet runs in a fresh namespace in a temporary directory that holds the repository's
``policies/`` and ``tests/fixtures/`` (the paths the snippets name, as in a checkout), so a
snippet that writes a file leaves nothing behind. Functions a snippet defines named
``test_*`` (the "in your own tests" examples) are called too. Bash snippets are not run here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "policies/README.md")
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _snippets() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        text = (ROOT / doc).read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{doc}:{line}", match.group(1)))
    return found


SNIPPETS = _snippets()


def test_the_docs_have_python_snippets():
    docs = {where.split(":")[0] for where, _ in SNIPPETS}
    assert docs == set(DOCS)


@pytest.mark.parametrize(("where", "code"), SNIPPETS, ids=[w for w, _ in SNIPPETS])
def test_snippet_runs_as_written(where, code, tmp_path, monkeypatch):
    (tmp_path / "tests").mkdir()
    (tmp_path / "policies").symlink_to(ROOT / "policies")
    (tmp_path / "tests" / "fixtures").symlink_to(ROOT / "tests" / "fixtures")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    exec(compile(code, where, "exec"), namespace)
    for name, value in namespace.items():
        if name.startswith("test_") and callable(value):
            value()
