"""A PNG of one logged episode: every observation and action channel, and loop timing.

Panels sharing the time axis (control time: s since the episode's first tick, the running sum
of measured dt; the wall clock in real time, simulated time in fast mode):

- one panel per observation channel, titled with the plant's channel name and index, its
  unit on the y axis, so that a large channel (a hinge velocity) cannot flatten the others;
- one panel per action channel: the raw policy action (dashed) and the action actually sent
  (solid), the channel's limits as dotted gray lines when the log has them, and optionally
  the actions of a policy replay (dotted black);
- loop timing: tick lateness and the time spent in each section (observe/policy/act), µs;
- measured tick period ``dt`` in ms against the nominal period.

Channel panels fill one column (up to 6 channels), two (up to 16) or three; the two timing
panels span the width below them. Events (overruns, NaN guards, faults, link loss...) are
marked with dashed vertical lines in every panel and listed in the legend of the first one.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from liquidnode.controller.logs.episode import Episode

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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
#: Figure width, inches, and height of one row of panels, inches.
_WIDTH_IN, _ROW_IN = 12.0, 1.5


@dataclass(frozen=True)
class Channel:
    """One plotted vector component: ``kind`` ``"obs"`` or ``"act"``, its index, name, unit."""

    kind: str
    index: int
    name: str
    unit: str

    @property
    def title(self) -> str:
        """Panel title, e.g. ``"obs 3: hinge vel"``."""
        return f"{self.kind} {self.index}: {self.name}"


def channels(episode: Episode) -> list[Channel]:
    """The episode's observation channels, then its action channels, with names and units from
    the logged plant spec (``obs[i]``/``act[i]`` and unit ``""`` when the log has none)."""
    plant = (episode.metadata.get("run") or {}).get("plant") or {}
    out = []
    for kind, width in (("obs", episode.obs.shape[1]), ("act", episode.action.shape[1])):
        names = list(plant.get(f"{kind}_names") or [])
        units = list(plant.get(f"{kind}_units") or [])
        if len(names) != width:
            names = [f"{kind}[{i}]" for i in range(width)]
        if len(units) != width:
            units = [""] * width
        for i in range(width):
            unit = "" if units[i] in (None, "unknown") else str(units[i])
            out.append(Channel(kind, i, str(names[i]), unit))
    return out


def episode_figure(
    episode: Episode,
    *,
    replayed: np.ndarray | None = None,
    replayed_label: str = "replayed",
) -> Figure:
    """A matplotlib Figure of ``episode`` (see the module docstring for the layout).

    Its axes are, in order: one per :func:`channels` entry (observations, then actions), the
    loop timing panel and the dt panel.

    Args:
        episode: the logged episode.
        replayed: actions a policy replay produced, ``(n, act_dim)``, drawn dotted in black
            over the logged ones (shows where a new policy departs from the log).
        replayed_label: legend label of ``replayed``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = episode.metadata.get("run") or {}
    plant = run.get("plant") or {}
    t = episode.control_time
    chans = channels(episode)
    cols = 1 if len(chans) <= 6 else 2 if len(chans) <= 16 else 3
    rows = math.ceil(len(chans) / cols)
    fig = plt.figure(figsize=(_WIDTH_IN, _ROW_IN * (rows + 2.6) + 0.8))
    grid = fig.add_gridspec(rows + 2, cols, height_ratios=[1.0] * rows + [1.4, 1.0])
    first: Axes | None = None
    axes: list[Axes] = []
    for n, ch in enumerate(chans):
        r, c = (n % rows, n // rows) if cols > 1 else (n, 0)
        ax = fig.add_subplot(grid[r, c], sharex=first)
        first = first or ax
        axes.append(ax)
        ax.set_title(ch.title, loc="left", fontsize=8, pad=2)
        ax.set_ylabel(ch.unit, fontsize=8)
        ax.tick_params(labelsize=7)
        if ch.kind == "obs":
            ax.plot(t, episode.obs[:, ch.index], lw=1.1, color="tab:blue")
        else:
            _plot_action(ax, t, episode, ch.index, run.get("safety") or {})
            if replayed is not None:
                ax.plot(t, replayed[:, ch.index], color="black", lw=1.0, ls=":",
                        label=replayed_label)  # fmt: skip
    first_action = next((axes[n] for n, ch in enumerate(chans) if ch.kind == "act"), None)
    if first_action is not None:
        _legend(first_action)

    timing = fig.add_subplot(grid[rows, :], sharex=first)
    timing.plot(t, episode.lateness_us, lw=0.8, color="tab:red", label="lateness")
    for name, color in (("observe", "tab:blue"), ("policy", "tab:green"), ("act", "tab:purple")):
        values = getattr(episode, f"{name}_us")
        if np.isfinite(values).any():
            timing.plot(t, values, lw=0.8, color=color, alpha=0.8, label=f"{name}")
    timing.set_title("loop timing", loc="left", fontsize=8, pad=2)
    timing.set_ylabel("µs")
    timing.set_yscale("symlog", linthresh=10.0)
    _legend(timing)

    period = fig.add_subplot(grid[rows + 1, :], sharex=first)
    period.plot(t, episode.dt * 1e3, lw=0.8, color="tab:blue", label="measured dt")
    rate = run.get("rate_hz")
    if rate:
        period.axhline(1e3 / float(rate), color="gray", ls=":", lw=1.0, label="nominal")
    period.set_title("tick period", loc="left", fontsize=8, pad=2)
    period.set_ylabel("dt (ms)")
    period.ticklabel_format(axis="y", useOffset=False)
    period.set_xlabel("control time since episode start (s, running sum of measured dt)")
    _legend(period)
    axes += [timing, period]

    title = (
        f"{plant.get('name', 'episode')} - episode {episode.index}, {episode.ticks} ticks, "
        f"{episode.duration_s:.2f} s, return {episode.episode_return:.2f}"
    )
    meta_log = episode.metadata.get("log") or {}
    fig.suptitle(f"{title}\n{episode.path.name} ({meta_log.get('command', '?')})", fontsize=11)
    _mark_events(axes, episode)
    for ax in axes:
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


def plot_episode(
    episode: Episode,
    path: str | os.PathLike[str],
    *,
    replayed: np.ndarray | None = None,
    replayed_label: str = "replayed",
    dpi: int = 110,
) -> None:
    """Write a PNG of ``episode`` to ``path`` (see :func:`episode_figure`).

    Args:
        episode: the logged episode.
        path: the PNG to write.
        replayed: actions a policy replay produced, ``(n, act_dim)``.
        replayed_label: legend label of ``replayed``.
        dpi: resolution.
    """
    import matplotlib.pyplot as plt

    fig = episode_figure(episode, replayed=replayed, replayed_label=replayed_label)
    try:
        save_figure(fig, path, dpi)
    finally:
        plt.close(fig)


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int) -> None:
    """Write ``fig`` to ``path`` whole or not at all: into a temporary file beside it, then
    renamed over it, so a command stopped while writing (Ctrl-C, SIGTERM) leaves no truncated
    image. The format is the suffix of ``path`` (matplotlib's default, PNG, without one)."""
    import matplotlib

    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fmt = target.suffix[1:].lower() or matplotlib.rcParams["savefig.format"]
    try:
        fig.savefig(tmp, dpi=dpi, format=fmt)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _plot_action(ax: Axes, t: np.ndarray, episode: Episode, j: int, safety: dict[str, Any]) -> None:
    ax.plot(t, episode.sent[:, j], color="tab:green", lw=1.2, label="sent")
    ax.plot(t, episode.action[:, j], color="tab:green", lw=1.0, ls="--", alpha=0.7,
            label="raw")  # fmt: skip
    for bound in ("low", "high"):
        values = safety.get(bound) or []
        if j < len(values) and values[j] is not None and np.isfinite(values[j]):
            ax.axhline(values[j], color="gray", ls=":", lw=0.8)


def _legend(ax: Axes, title: str | None = None) -> None:
    handles, _labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(1.005, 1.0),
            fontsize=7,
            title=title,
            title_fontsize=7,
            frameon=False,
        )


def _mark_events(axes: list[Axes], episode: Episode) -> None:
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
