"""A PNG of one logged episode: observations, actions and loop timing over time.

Four panels sharing the time axis (control time: s since the episode's first tick, the
running sum of measured dt; the wall clock in real time, simulated time in fast mode):

1. observations, one line per channel, labelled with the plant's channel names and units;
2. actions: the raw policy action (dashed) and the action actually sent (solid), per channel,
   with the action limits as dotted gray lines when the log has them, and optionally the
   actions of a policy replay (dotted black);
3. loop timing: tick lateness and the time spent in each section (observe/policy/act), µs;
4. measured tick period ``dt`` in ms against the nominal period.

Events (overruns, NaN guards, faults, link loss...) are marked with dashed vertical lines in
every panel and listed in the legend of the first one.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from liquidnode.controller.logs.episode import Episode

_EVENT_COLORS = {
    "overrun": "tab:orange",
    "nan_guard": "tab:red",
    "clamp": "tab:olive",
    "fault": "darkred",
    "estop": "black",
    "link_lost": "tab:purple",
    "link_restored": "tab:green",
    "log_error": "tab:gray",
}


def plot_episode(
    episode: Episode,
    path: str | os.PathLike[str],
    *,
    replayed: np.ndarray | None = None,
    replayed_label: str = "replayed",
    dpi: int = 110,
) -> None:
    """Write a PNG of ``episode`` to ``path`` (see the module docstring for the layout).

    Args:
        episode: the logged episode.
        path: the PNG to write.
        replayed: actions a policy replay produced, ``(n, act_dim)``, drawn dotted in black
            over the logged ones (shows where a new policy departs from the log).
        replayed_label: legend label of ``replayed``.
        dpi: resolution.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = episode.metadata.get("run") or {}
    plant = run.get("plant") or {}
    t = episode.control_time
    fig, axes = plt.subplots(
        4, 1, figsize=(11, 10), sharex=True, gridspec_kw={"height_ratios": [3, 2, 2, 1.4]}
    )
    title = (
        f"{plant.get('name', 'episode')} - episode {episode.index}, {episode.ticks} ticks, "
        f"{episode.duration_s:.2f} s, return {episode.episode_return:.2f}"
    )
    meta_log = episode.metadata.get("log") or {}
    fig.suptitle(f"{title}\n{episode.path.name} ({meta_log.get('command', '?')})", fontsize=11)

    _plot_channels(axes[0], t, episode.obs, _names(plant, "obs", episode.obs.shape[1]))
    axes[0].set_ylabel("observation\n(env units)")

    act_names = _names(plant, "act", episode.action.shape[1])
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, name in enumerate(act_names):
        c = colors[j % len(colors)]
        axes[1].plot(t, episode.sent[:, j], color=c, lw=1.2, label=f"{name} sent")
        axes[1].plot(t, episode.action[:, j], color=c, lw=1.0, ls="--", alpha=0.7,
                     label=f"{name} raw")  # fmt: skip
    if replayed is not None:
        for j, name in enumerate(act_names):
            axes[1].plot(t, replayed[:, j], color="black", lw=1.0, ls=":",
                         label=f"{name} {replayed_label}")  # fmt: skip
    safety = run.get("safety") or {}
    for bound in ("low", "high"):
        for value in set(safety.get(bound) or []):
            if value is not None and np.isfinite(value):
                axes[1].axhline(value, color="gray", ls=":", lw=0.8)
    axes[1].set_ylabel("action\n(env units)")
    _legend(axes[1])

    timing = axes[2]
    timing.plot(t, episode.lateness_us, lw=0.8, color="tab:red", label="lateness")
    for name, color in (("observe", "tab:blue"), ("policy", "tab:green"), ("act", "tab:purple")):
        values = getattr(episode, f"{name}_us")
        if np.isfinite(values).any():
            timing.plot(t, values, lw=0.8, color=color, alpha=0.8, label=f"{name}")
    timing.set_ylabel("µs")
    timing.set_yscale("symlog", linthresh=10.0)
    _legend(timing, title="loop timing")

    axes[3].plot(t, episode.dt * 1e3, lw=0.8, color="tab:blue", label="measured dt")
    rate = run.get("rate_hz")
    if rate:
        axes[3].axhline(1e3 / float(rate), color="gray", ls=":", lw=1.0, label="nominal")
    axes[3].set_ylabel("dt (ms)")
    axes[3].set_xlabel("control time since episode start (s, running sum of measured dt)")
    _legend(axes[3])

    _mark_events(axes, episode)
    for ax in axes:
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def _names(plant: dict[str, Any], kind: str, width: int) -> list[str]:
    names = list(plant.get(f"{kind}_names") or [])
    units = list(plant.get(f"{kind}_units") or [])
    if len(names) != width:
        return [f"{kind}[{i}]" for i in range(width)]
    if len(units) == width:
        return [
            f"{n} ({u})" if u and u != "unknown" else n for n, u in zip(names, units, strict=True)
        ]
    return names


def _plot_channels(ax: Any, t: np.ndarray, values: np.ndarray, names: list[str]) -> None:
    for j, name in enumerate(names):
        ax.plot(t, values[:, j], lw=1.1, label=name)
    _legend(ax)


def _legend(ax: Any, title: str | None = None) -> None:
    handles, _labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
            title=title,
            title_fontsize=8,
            frameon=False,
        )


def _mark_events(axes: Any, episode: Episode) -> None:
    t = episode.control_time
    t0_ns = int(episode.wall_time_ns[0]) if episode.ticks else 0
    seen: set[str] = set()
    for event in episode.events:
        kind = event["kind"]
        if kind in ("episode_start", "episode_end"):
            continue
        tick = event.get("tick", -1)
        if 0 <= tick < episode.ticks and episode.tick[min(tick, episode.ticks - 1)] == tick:
            x = float(t[tick])
        else:
            x = (int(event["wall_time_ns"]) - t0_ns) * 1e-9
        color = _EVENT_COLORS.get(kind, "tab:gray")
        for ax in axes:
            ax.axvline(x, color=color, lw=0.9, ls=(0, (4, 3)), alpha=0.7)
        if kind not in seen:
            seen.add(kind)
            axes[0].plot([], [], color=color, lw=0.9, ls=(0, (4, 3)), label=f"event: {kind}")
    if seen:
        _legend(axes[0])
