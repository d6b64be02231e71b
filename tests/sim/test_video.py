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
from liquidnode.sim.video import VideoRecorder, check_video_path, default_fps, parse_size


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
    # 50 ticks x 20 ms = 1 s of simulated time at 10 fps.
    assert summary.episodes[0].ticks == 50
    assert plant.frames == 10 and plant.duration_s == 1.0
    # Each frame k shows the state at k/10 s: every 5th tick's state (distinct states).
    assert plant._frames == [5 * k for k in range(10)]


def test_default_fps_is_one_frame_per_tick_up_to_60_hz():
    assert default_fps(20.0) == 20.0  # HalfCheetah-v5
    assert default_fps(25.0) == 25.0  # InvertedPendulum-v5
    assert default_fps(50.0) == 50.0
    assert default_fps(500.0) == 30.0
    # GIF frame delays are whole hundredths of a second.
    assert default_fps(25.0, ".gif") == 25.0
    assert default_fps(20.0, ".gif") == 20.0
    assert default_fps(30.0, ".gif") == 25.0
    assert default_fps(40.0, ".gif") == pytest.approx(100 / 3)
    assert default_fps(500.0, ".gif") == 50.0


@pytest.mark.parametrize(
    ("rate_hz", "fps", "episodes", "ticks"),
    [(20.0, None, 1, 40), (20.0, 50.0, 1, 40), (50.0, 24.0, 2, 30), (500.0, None, 1, 300)],
)
def test_clip_lasts_as_long_as_the_simulated_run(tmp_path, rate_hz, fps, episodes, ticks):
    plant = VideoRecorder(make_plant(PENDULUM_XML, rate_hz=rate_hz), tmp_path / "v.mp4", fps=fps)
    policy = random_policy(plant.spec.obs_dim, plant.spec.act_dim, seed=0)
    config = LoopConfig(realtime=False, max_ticks=ticks)
    ControlLoop(plant, policy, config).run(episodes=episodes, seed=0)
    sim_s = episodes * ticks / rate_hz
    assert plant.duration_s == pytest.approx(sim_s, abs=0.5 / plant.fps)
    assert plant.frames == round(sim_s * plant.fps)
    # Frame k shows the latest state at or before k/fps s into the run (episodes end to end):
    # the states are the reset state and one per tick, ticks + 1 per episode.
    episode_s = ticks / rate_hz
    expected = []
    for k in range(plant.frames):
        e, local = divmod(k / plant.fps, episode_s)
        expected.append(int(e) * (ticks + 1) + int(local * rate_hz + 1e-6))
    assert plant._frames == expected


def test_camera_by_name_or_index_and_bad_options(tmp_path):
    plant = make_plant(PENDULUM_XML)  # one camera, "front"
    out = tmp_path / "v.mp4"
    assert VideoRecorder(plant, out, camera="front").camera == {"fixedcamid": 0}
    assert VideoRecorder(plant, out, camera="0").camera == {"fixedcamid": 0}
    assert "fixedcamid" not in VideoRecorder(plant, out, camera=-1).camera
    with pytest.raises(LiquidNodeError, match=r"no camera named 'side'.*front \(0\)"):
        VideoRecorder(plant, out, camera="side")
    with pytest.raises(LiquidNodeError, match="camera 3 out of range"):
        VideoRecorder(plant, out, camera=3)
    with pytest.raises(LiquidNodeError, match="needs even sizes"):
        VideoRecorder(plant, out, width=161, height=120)
    with pytest.raises(LiquidNodeError, match="cannot play at 30 fps"):
        VideoRecorder(plant, tmp_path / "v.gif", fps=30)
    assert parse_size("640x480") == (640, 480)
    for bad in ("640", "640x", "axb", "8x8"):
        with pytest.raises(ValueError):
            parse_size(bad)


_RENDER = textwrap.dedent(
    """
    import sys
    from liquidnode.sim.video import configure_gl, VideoRecorder
    print("backend", configure_gl())
    from liquidnode.sim import PENDULUM_XML, make_plant
    from liquidnode.controller.loop import ControlLoop, LoopConfig
    from liquidnode.controller.policy import random_policy
    plant = make_plant(PENDULUM_XML, rate_hz=20)
    plant = VideoRecorder(plant, sys.argv[1], width=160, height=120, camera="front")
    policy = random_policy(3, 1, seed=0)
    ControlLoop(plant, policy, LoopConfig(realtime=False, max_ticks=30)).run(seed=0)
    plant.write()
    print("frames", plant.frames, "fps", plant.fps)
    """
)


def _clip_seconds(path):
    """Frames and length in seconds of a video file, read back with imageio."""
    import imageio.v2 as imageio
    import imageio.v3 as iio

    if path.suffix == ".gif":
        with iio.imopen(path, "r", plugin="pillow") as f:
            n = len(f.read(index=None))
            ms = [f.metadata(index=i)["duration"] for i in range(n)]
        return n, sum(ms) / 1000.0
    reader = imageio.get_reader(path, format="ffmpeg")
    try:
        n, fps = reader.count_frames(), reader.get_meta_data()["fps"]
    finally:
        reader.close()
    return n, n / fps


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_rendered_clip_plays_in_real_time_below_30_hz(tmp_path, suffix):
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
    # 30 ticks at 20 Hz = 1.5 s of simulated time: 30 frames at 20 fps, a 1.5 s clip.
    assert "frames 30 fps 20.0" in proc.stdout
    n, seconds = _clip_seconds(out)
    assert n == 30 and seconds == pytest.approx(1.5, abs=1e-6)
    frames = iio.imread(out)
    assert frames.shape[1:] == (120, 160, 3)
    assert frames.std() > 1.0  # not a blank image
    assert np.any(frames[0] != frames[-1])  # the pendulum moved


def test_a_policy_told_its_latency_is_told_the_recorded_simulations(tmp_path):
    """The recorder passes the simulation's drawn latency through (a told policy would
    otherwise be refused as on a plant that does not know it)."""
    from liquidnode.controller.latency_input import LatencyInput
    from liquidnode.sim.randomization.spec import spec_from_dict

    spec = spec_from_dict({"latency": {"ticks": 0.6}})
    plant = VideoRecorder(make_plant(PENDULUM_XML, randomize=spec), tmp_path / "v.gif", fps=10)
    policy = random_policy(3, 1, seed=0, latency_input=LatencyInput().as_metadata())
    ControlLoop(plant, policy, LoopConfig(realtime=False, max_ticks=5)).run(seed=0)
    assert policy.latency_ticks == pytest.approx(0.6)
