"""The episode plot: one panel per observation and action channel, named and with units."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from liquidnode.controller.logs import load_episode
from liquidnode.controller.logs.plot import channels, episode_figure, plot_episode

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture(scope="module")
def episode():
    return load_episode(FIXTURES / "sim_inverted_pendulum.mcap")


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_one_panel_per_channel_named_with_units(episode):
    fig = episode_figure(episode, replayed=episode.action + 0.1, replayed_label="new")
    try:
        obs_dim, act_dim = episode.obs.shape[1], episode.action.shape[1]
        assert (obs_dim, act_dim) == (4, 1)
        # 4 observation panels, 1 action panel, loop timing, tick period.
        assert len(fig.axes) == obs_dim + act_dim + 2
        titles = [ax.get_title(loc="left") for ax in fig.axes]
        assert titles[:5] == [
            "obs 0: slider pos",
            "obs 1: hinge pos",
            "obs 2: slider vel",
            "obs 3: hinge vel",
            "act 0: slide",
        ]
        assert [ax.get_ylabel() for ax in fig.axes[:4]] == ["m", "rad", "m/s", "rad/s"]
        # Each observation panel holds its own channel only, scaled to it: the small slider
        # position is not flattened by the hinge velocity.
        for j, ax in enumerate(fig.axes[:obs_dim]):
            (line,) = ax.get_lines()
            np.testing.assert_array_equal(line.get_ydata(), episode.obs[:, j])
            lo, hi = ax.get_ylim()
            span = np.ptp(episode.obs[:, j])
            assert lo <= episode.obs[:, j].min() and hi >= episode.obs[:, j].max()
            assert hi - lo < 1.5 * span
        labels = fig.axes[obs_dim].get_legend_handles_labels()[1]
        assert labels == ["sent", "raw", "new"]
    finally:
        _close(fig)


def test_many_channels_fill_a_grid(episode):
    # A wider episode (as HalfCheetah's 17 observations and 6 actions): 23 channel panels.
    wide = dataclasses.replace(
        episode,
        obs=np.tile(episode.obs, (1, 5))[:, :17],
        action=np.tile(episode.action, (1, 6)),
        sent=np.tile(episode.sent, (1, 6)),
        metadata={},
    )
    chans = channels(wide)
    assert [c.title for c in chans][15:19] == ["obs 15: obs[15]", "obs 16: obs[16]",
                                               "act 0: act[0]", "act 1: act[1]"]  # fmt: skip
    fig = episode_figure(wide)
    try:
        assert len(fig.axes) == 17 + 6 + 2
        columns = {round(ax.get_position().x0, 3) for ax in fig.axes[:23]}
        assert len(columns) == 3
    finally:
        _close(fig)


def test_plot_episode_writes_a_png(episode, tmp_path):
    png = tmp_path / "ep.png"
    plot_episode(episode, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_figure_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """A command stopped while the image is written leaves the old file (or none), never a
    truncated one, and no temporary file."""
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from liquidnode.controller.logs.plot import save_figure

    png = tmp_path / "out.png"
    fig = plt.figure()
    try:
        save_figure(fig, png, dpi=20)
        first = png.read_bytes()
        assert first.startswith(b"\x89PNG")
        real = Figure.savefig

        def stopped_halfway(self, fname, **kwargs):
            real(self, fname, **kwargs)
            with open(fname, "r+b") as f:
                f.truncate(10)  # what a write cut short leaves
            raise KeyboardInterrupt

        monkeypatch.setattr(Figure, "savefig", stopped_halfway)
        with pytest.raises(KeyboardInterrupt):
            save_figure(fig, png, dpi=40)
    finally:
        _close(fig)
    assert png.read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
