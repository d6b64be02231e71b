"""A log in a few numbers: ticks, duration, returns, timing, events (``liquidnode logs``).

:func:`summarize` returns a JSON-able dict with these keys (stable, for scripts):

| key | meaning |
|---|---|
| ``path`` | the log file |
| ``complete`` | False when the log was cut short (writer killed; no footer) |
| ``format_version``, ``liquidnode_version``, ``command``, ``created_at`` | from the log |
| ``plant`` | plant / device name (env id or device identity), or null |
| ``policy`` | ``{"path", "sha256", "attached"}`` of the policy the run used |
| ``mode``, ``nominal_rate_hz``, ``seed`` | how the loop ran (null if not recorded) |
| ``ticks`` | ticks over all episodes |
| ``duration_s`` | control time of all episodes (sum of measured dt), s |
| ``wall_time_s`` | wall-clock span of the episodes' ticks (first to last tick), s |
| ``rate_hz`` | achieved tick rate, 1 / mean measured dt (first tick of each episode excluded) |
| ``episodes`` | list of ``{"index", "ticks", "duration_s", "return", "seed", "end"}`` |
| ``return`` | ``{"mean", "min", "max"}`` over episodes |
| ``lateness_us`` | ``{"p50", "p99", "max"}`` over all ticks, µs |
| ``sections_us`` | median ``observe``/``policy``/``act`` time per tick, µs |
| ``events`` | count per event kind |
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import numpy as np

from liquidnode.controller.logs.episode import Episode, LogContents, read_log


def summarize(log: LogContents | str | os.PathLike[str]) -> dict[str, Any]:
    """Summarise a log (a path or an already read :class:`LogContents`)."""
    if not isinstance(log, LogContents):
        log = read_log(log)
    meta_log = log.metadata.get("log") or {}
    run = log.metadata.get("run") or {}
    policy_meta = log.metadata.get("policy") or {}
    episodes = log.episodes
    lateness = _concat([e.lateness_us for e in episodes])
    dts = _concat([e.dt[1:] for e in episodes])
    returns = [e.episode_return for e in episodes]
    plant = run.get("plant")
    return {
        "path": str(log.path),
        "complete": log.complete,
        "format_version": _int_or_none(meta_log.get("format_version")),
        "liquidnode_version": meta_log.get("liquidnode_version"),
        "command": meta_log.get("command"),
        "created_at": meta_log.get("created_at"),
        "plant": plant.get("name") if isinstance(plant, dict) else run.get("env"),
        "policy": {
            "path": run.get("policy_path") or policy_meta.get("path"),
            "sha256": run.get("policy_sha256") or policy_meta.get("sha256"),
            "attached": log.policy_bytes is not None,
        },
        "mode": run.get("mode"),
        "nominal_rate_hz": run.get("rate_hz"),
        "seed": run.get("seed"),
        "ticks": int(sum(e.ticks for e in episodes)),
        "duration_s": float(sum(e.duration_s for e in episodes)),
        "wall_time_s": float(sum((e.t[-1] - e.t[0]) if e.ticks else 0.0 for e in episodes)),
        "rate_hz": float(1.0 / np.mean(dts)) if dts.size else None,
        "episodes": [_episode_row(e) for e in episodes],
        "return": _stats(returns),
        "lateness_us": _percentiles(lateness),
        "sections_us": {
            name: _median(_concat([getattr(e, f"{name}_us") for e in episodes]))
            for name in ("observe", "policy", "act")
        },
        "events": dict(sorted(Counter(e["kind"] for e in log.events).items())),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """Readable text for terminals, from :func:`summarize`'s dict."""
    s = summary
    policy = s["policy"]
    lines = [
        f"log       {s['path']}" + ("" if s["complete"] else "  (cut short: no footer)"),
        f"written   {s['created_at']} by liquidnode {s['liquidnode_version']} "
        f"`{s['command']}` (format {s['format_version']})",
        f"plant     {s['plant']}   mode {s['mode']}   nominal {_fmt(s['nominal_rate_hz'])} Hz"
        f"   seed {s['seed']}",
        f"policy    {policy['path']}  sha256 {str(policy['sha256'])[:12]}"
        + ("  (attached)" if policy["attached"] else "  (not attached)"),
        f"ticks     {s['ticks']} over {s['duration_s']:.3f} s of control time "
        f"({s['wall_time_s']:.3f} s wall clock), {_fmt(s['rate_hz'])} Hz from measured dt",
    ]
    lat = s["lateness_us"]
    lines.append(
        f"lateness  p50 {_fmt(lat['p50'])} µs, p99 {_fmt(lat['p99'])} µs, max {_fmt(lat['max'])} µs"
    )
    sec = s["sections_us"]
    lines.append(
        f"sections  median observe {_fmt(sec['observe'])} µs, policy {_fmt(sec['policy'])} µs, "
        f"act {_fmt(sec['act'])} µs"
    )
    ret = s["return"]
    lines.append(
        f"return    mean {_fmt(ret['mean'])}, min {_fmt(ret['min'])}, max {_fmt(ret['max'])}"
    )
    events = ", ".join(f"{k} {v}" for k, v in s["events"].items()) or "none"
    lines.append(f"events    {events}")
    lines.append(f"{'episode':>7}  {'ticks':>6}  {'duration s':>10}  {'return':>10}  seed  end")
    for e in s["episodes"]:
        lines.append(
            f"{e['index']:>7}  {e['ticks']:>6}  {e['duration_s']:>10.3f}  "
            f"{_fmt(e['return']):>10}  {e['seed']!s:>4}  {e['end']}"
        )
    return "\n".join(lines)


def _episode_row(e: Episode) -> dict[str, Any]:
    end_event = e.first_event("episode_end")
    detail = end_event["detail"] if end_event else {}
    if detail.get("terminated"):
        end = "terminated"
    elif detail.get("truncated"):
        end = "truncated"
    elif end_event is None:
        end = "no end event" if e.complete else "cut short"
    else:
        end = "stopped"
    return {
        "index": e.index,
        "ticks": e.ticks,
        "duration_s": e.duration_s,
        "return": e.episode_return,
        "seed": e.seed,
        "end": end,
    }


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    arrays = [a[np.isfinite(a)] for a in arrays if a.size]
    return np.concatenate(arrays) if arrays else np.zeros(0)


def _percentiles(values: np.ndarray) -> dict[str, float | None]:
    if not values.size:
        return {"p50": None, "p99": None, "max": None}
    p50, p99 = np.percentile(values, [50, 99])
    return {"p50": float(p50), "p99": float(p99), "max": float(values.max())}


def _median(values: np.ndarray) -> float | None:
    return float(np.median(values)) if values.size else None


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "min": None, "max": None}
    return {"mean": float(np.mean(values)), "min": min(values), "max": max(values)}


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
