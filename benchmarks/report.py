"""Render benchmark results: a text table for the terminal, markdown for the README, JSON.

The README section lives between ``<!-- bench:start -->`` and ``<!-- bench:end -->``;
:func:`update_readme` replaces only what is between the markers (appending them at the end of
the file when absent) and leaves the rest of the README untouched.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import sys
from pathlib import Path
from typing import Any

from liquidnode.benchmarks.harness import Section

START = "<!-- bench:start -->"
END = "<!-- bench:end -->"


def machine() -> dict[str, Any]:
    """Where the benchmark ran: CPU model, cores, OS, Python, numpy (and torch if loaded)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import numpy

    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": numpy.__version__,
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch"] = torch.__version__
    with contextlib.suppress(OSError):
        info["load_avg_1min_at_end"] = round(os.getloadavg()[0], 2)
    return info


def _mark(met: bool | None) -> str:
    return "n/a" if met is None else "met" if met else "NOT met"


def to_text(sections: list[Section], meta: dict[str, Any]) -> str:
    """A plain-text report for the terminal."""
    out = [f"liquidnode benchmarks ({meta['mode']}), {meta['date']}", _machine_line(meta), ""]
    for sec in sections:
        out.append(f"== {sec.title}")
        if sec.unavailable:
            out += [f"   unavailable: {sec.unavailable}", ""]
            continue
        widths = [
            max(len(str(c)), *(len(str(r[i])) for r in sec.rows)) if sec.rows else len(str(c))
            for i, c in enumerate(sec.columns)
        ]
        out.append("  ".join(str(c).ljust(w) for c, w in zip(sec.columns, widths, strict=True)))
        for row in sec.rows:
            out.append("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
        for note in sec.notes:
            out.append(f"   note: {note}")
        out.append("")
    out.append("== Targets")
    for sec in sections:
        for c in sec.checks:
            out.append(f"   [{_mark(c.met)}] {c.name}: {c.measured}")
    return "\n".join(out)


def _machine_line(meta: dict[str, Any]) -> str:
    m = meta["machine"]
    line = f"{m['cpu']}, {m['cores']} cores, {m['os']}, Python {m['python']}, numpy {m['numpy']}"
    if "torch" in m:
        line += f", torch {m['torch']}"
    return line


def _cell(value: object) -> str:
    """A markdown table cell: pipes escaped."""
    return str(value).replace("|", "\\|")


def to_markdown(sections: list[Section], meta: dict[str, Any]) -> str:
    """The README section (without the markers and the heading above them)."""
    out = [
        f"`{meta['command']}` on {meta['date']} ({meta['wall_s']:.0f} s), "
        f"{_machine_line(meta)}. Each comparison ran side by side in one process; figures are "
        "medians of repeated, interleaved runs. The machine is shared, so absolute times are "
        "noisy; the ratios are the point.",
        "",
    ]
    for sec in sections:
        out.append(f"**{sec.title}**")
        out.append("")
        if sec.unavailable:
            out += [f"unavailable: {sec.unavailable}", ""]
            continue
        out.append("| " + " | ".join(_cell(c) for c in sec.columns) + " |")
        out.append("|" + "---|" * len(sec.columns))
        for row in sec.rows:
            out.append("| " + " | ".join(_cell(v) for v in row) + " |")
        out.append("")
        for note in sec.notes:
            out.append(f"- {note}")
        out.append("")
    out += ["**Targets**", "", "| target | measured | status |", "|---|---|---|"]
    for sec in sections:
        for c in sec.checks:
            out.append(f"| {_cell(c.name)} | {_cell(c.measured)} | {_mark(c.met)} |")
    return "\n".join(out) + "\n"


def to_json(sections: list[Section], meta: dict[str, Any]) -> dict[str, Any]:
    """One JSON object: ``meta``, ``sections`` (by key), ``targets`` (flat list)."""
    return {
        "meta": meta,
        "sections": {sec.key: sec.to_json() for sec in sections},
        "targets": [c.to_json() for sec in sections for c in sec.checks],
    }


def update_readme(path: str | os.PathLike[str], markdown: str) -> None:
    """Replace the text between the bench markers of ``path`` (append markers if absent)."""
    p = Path(path)
    text = p.read_text(encoding="utf-8") if p.exists() else ""
    block = f"{START}\n{markdown}{END}"
    if START in text and END in text and text.index(START) < text.index(END):
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        heading = "## Benchmarks\n\n"
        text = text.rstrip("\n") + ("\n\n" if text else "") + heading + block + "\n"
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, p)


def now_utc() -> str:
    """The current UTC time as ``YYYY-MM-DD HH:MM UTC``."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
