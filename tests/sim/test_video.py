"""Offscreen video: frames captured on simulated time, rendered after the run, written to a file.

Rendering needs EGL or OSMesa (Debian: libegl1 / libosmesa6, see
scripts/install-system-deps.sh); without either the rendering test skips, unless
LIQUIDNODE_REQUIRE_ALL=1, where it fails. It runs in a subprocess because MuJoCo picks its GL
backend when first imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.loop import ControlLoop, LoopConfig
from liquidnode.controller.policy import random_policy
from liquidnode.sim import PENDULUM_XML, make_plant
from liquidnode.sim.video import VideoRecorder, check_video_path


def test_video_path_must_be_mp4_or_gif_in_an_existing_folder(tmp_path):
    assert check_video_path(tmp_path / "a.MP4").name == "a.MP4"
    with pytest.raises(LiquidNodeError, match=r"unsupported format '\.avi'"):
        check_video_path(tmp_path / "a.avi")
    with pytest.raises(LiquidNodeError, match="does not exist"):
        check_video_path(tmp_path / "nope" / "a.gif")


def test_frames_follow_simulated_time_and_the_loop_cannot_tell(tmp_path):
    plant = VideoRecorder(make_plant(PENDULUM_XML), tmp_path / "v.gif", fps=10)
    assert plant.spec is plant.plant.spec and not plant.self_paced
    policy = random_policy(plant.spec.obs_dim, plant.spec.act_dim, seed=0)
    summary = ControlLoop(plant, policy, LoopConfig(realtime=False, max_ticks=50)).run(seed=0)
    # 50 ticks x 20 ms = 1 s of simulated time at 10 fps, plus the reset frame.
    assert summary.episodes[0].ticks == 50
    assert plant.frames == 11


_RENDER = textwrap.dedent(
    """
    import sys
    from liquidnode.sim.video import configure_gl, VideoRecorder
    print("backend", configure_gl())
    from liquidnode.sim import PENDULUM_XML, make_plant
    from liquidnode.controller.loop import ControlLoop, LoopConfig
    from liquidnode.controller.policy import random_policy
    plant = VideoRecorder(make_plant(PENDULUM_XML), sys.argv[1], fps=25, width=160, height=120)
    policy = random_policy(3, 1, seed=0)
    ControlLoop(plant, policy, LoopConfig(realtime=False, max_ticks=10)).run(seed=0)
    plant.write()
    print("frames", plant.frames)
    """
)


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_rendered_video_file_has_frames(tmp_path, suffix):
    import imageio.v3 as iio

    out = tmp_path / f"run{suffix}"
    env = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    proc = subprocess.run(
        [sys.executable, "-c", _RENDER, str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    if proc.returncode != 0 and "cannot render video" in proc.stderr:
        if os.environ.get("LIQUIDNODE_REQUIRE_ALL") == "1":
            pytest.fail(f"no offscreen OpenGL (EGL/OSMesa): {proc.stderr[-500:]}")
        pytest.skip("no offscreen OpenGL (install libegl1 or libosmesa6)")
    assert proc.returncode == 0, proc.stderr[-2000:]
    frames = iio.imread(out)
    # 10 ticks x 20 ms at 25 fps: the reset frame + 5.
    assert "frames 6" in proc.stdout
    assert frames.shape[0] >= 5 and frames.shape[1:] == (120, 160, 3)
    assert frames.std() > 1.0  # not a blank image
    assert np.any(frames[0] != frames[-1])  # the pendulum moved
