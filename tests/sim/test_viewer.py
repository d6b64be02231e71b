"""``liquidnode sim --viewer``: a clear error without a display; the window follows the run.

The real-window test runs MuJoCo's passive viewer on an Xvfb virtual display (Debian: xvfb,
see scripts/install-system-deps.sh); without Xvfb it skips, unless LIQUIDNODE_REQUIRE_ALL=1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time

import pytest

from liquidnode.cli import main
from liquidnode.controller.loop import ControlLoop, LoopConfig
from liquidnode.controller.policy import random_policy
from liquidnode.sim import PENDULUM_XML, make_plant
from liquidnode.sim.viewer import ViewerPlant


def _no_display(monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def test_no_display_is_one_line_and_exit_2(capsys, tmp_path, monkeypatch):
    _no_display(monkeypatch)
    monkeypatch.chdir(tmp_path)
    assert main(["sim", "--viewer"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "liquidnode sim: error: --viewer needs a display, but neither DISPLAY nor "
        "WAYLAND_DISPLAY is set (run it on a desktop or over ssh -X); use --video out.mp4 "
        "for an offscreen recording instead"
    ]
    assert list(tmp_path.iterdir()) == []  # failed before anything ran: no log


def test_a_display_that_cannot_be_opened_is_one_line_and_exit_2(capsys, tmp_path, monkeypatch):
    _no_display(monkeypatch)
    monkeypatch.setenv("DISPLAY", ":4242")  # no X server there
    monkeypatch.chdir(tmp_path)
    assert main(["sim", "--viewer"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("liquidnode sim: error: --viewer: cannot open the display :4242")
    assert list(tmp_path.iterdir()) == []


class _Window:
    """Stands in for the window: counts what the plant asks of it."""

    def __init__(self, model, data) -> None:
        import mujoco

        self.data, self.cam, self.syncs, self.closed = data, mujoco.MjvCamera(), 0, False

    def lock(self):
        return contextlib.nullcontext()

    def is_running(self) -> bool:
        return not self.closed

    def sync(self) -> None:
        self.syncs += 1

    def close(self) -> None:
        self.closed = True


def test_window_shows_each_reset_and_the_ticks_at_most_60_times_a_second():
    windows: list[_Window] = []

    def launch(model, data):
        windows.append(_Window(model, data))
        return windows[-1]

    plant = ViewerPlant(make_plant(PENDULUM_XML), camera="front", launch=launch)
    policy = random_policy(3, 1, seed=0)
    t0 = time.monotonic()
    ControlLoop(plant, policy, LoopConfig(realtime=False, max_ticks=200)).run(episodes=2)
    elapsed = time.monotonic() - t0
    (window,) = windows  # one window for the run, on the plant's own MjData
    assert window.data is plant.plant.data
    assert window.cam.fixedcamid == 0  # the model camera "front"
    # Each reset is shown; the 400 ticks at most 60 times per wall-clock second, plus one.
    assert 2 <= window.syncs == plant.syncs <= 2 + 60 * elapsed + 1
    assert plant.syncs < 400
    plant.disconnect()
    assert window.closed


def test_real_viewer_window_on_a_virtual_display(tmp_path):
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        if os.environ.get("LIQUIDNODE_REQUIRE_ALL") == "1":
            pytest.fail("Xvfb is missing (scripts/install-system-deps.sh installs xvfb)")
        pytest.skip("no Xvfb (Debian package xvfb)")
    display = f":{400 + os.getpid() % 500}"
    server = subprocess.Popen(
        [xvfb, display, "-screen", "0", "640x480x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        socket = f"/tmp/.X11-unix/X{display[1:]}"
        while not os.path.exists(socket):  # the server is up when its socket exists
            assert server.poll() is None, "Xvfb exited"
            time.sleep(0.05)
        env = {k: v for k, v in os.environ.items() if k != "WAYLAND_DISPLAY"}
        proc = subprocess.run(
            [sys.executable, "-m", "liquidnode", "sim", "--viewer", "--max-ticks", "10"],
            cwd=tmp_path,
            env={**env, "DISPLAY": display, "LIBGL_ALWAYS_SOFTWARE": "1"},
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "10 ticks" in proc.stderr and "error" not in proc.stderr
