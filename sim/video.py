"""Offscreen video of a simulated run (``liquidnode sim --video out.mp4|out.gif``).

Rendering does not run in the control loop: :class:`VideoRecorder` wraps a MuJoCo plant,
copies ``qpos`` whenever simulated time crosses the next frame time (microseconds per frame),
and :meth:`VideoRecorder.write` renders all frames after the run with ``mujoco.Renderer``
and writes them with imageio (mp4: ffmpeg/libx264; gif: pillow). Episodes follow each other
in one file.

MuJoCo picks its OpenGL backend when ``mujoco`` is first imported, from ``MUJOCO_GL``.
Call :func:`configure_gl` before anything imports mujoco: it keeps a ``MUJOCO_GL`` the user
set, else uses ``egl`` (GPU or Mesa) when a probe render works and falls back to ``osmesa``
(software; Debian package ``libosmesa6``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from liquidnode.controller.errors import LiquidNodeError, PlantError
from liquidnode.controller.plant import Observation, Plant
from liquidnode.controller.records import Event

#: File suffixes :meth:`VideoRecorder.write` can produce.
VIDEO_SUFFIXES = (".mp4", ".gif")

_PROBE = (
    "import mujoco;"
    "m=mujoco.MjModel.from_xml_string("
    "'<mujoco><worldbody><geom size=\"1\"/></worldbody></mujoco>');"
    "r=mujoco.Renderer(m,8,8);r.update_scene(mujoco.MjData(m));r.render();r.close()"
)


def configure_gl() -> str:
    """Choose MuJoCo's offscreen OpenGL backend (sets ``MUJOCO_GL``) and return it.

    Keeps a ``MUJOCO_GL`` already set. Otherwise probes ``egl`` in a subprocess (about a second)
    and falls back to ``osmesa``. Has no effect on a mujoco that is already imported.
    """
    if os.environ.get("MUJOCO_GL"):
        return os.environ["MUJOCO_GL"]
    for backend in ("egl", "osmesa"):
        env = dict(os.environ, MUJOCO_GL=backend)
        try:
            probe = subprocess.run(
                [sys.executable, "-c", _PROBE], env=env, capture_output=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            os.environ["MUJOCO_GL"] = backend
            return backend
    os.environ["MUJOCO_GL"] = "osmesa"
    return "osmesa"


def check_video_path(path: str | os.PathLike[str]) -> Path:
    """The path as a Path if its suffix is .mp4 or .gif and its folder exists.

    Raises:
        LiquidNodeError: other suffix, or the folder does not exist.
    """
    p = Path(path)
    if p.suffix.lower() not in VIDEO_SUFFIXES:
        raise LiquidNodeError(
            f"video file {p}: unsupported format {p.suffix or '(none)'!r}; use .mp4 or .gif"
        )
    if not p.parent.is_dir():
        raise LiquidNodeError(f"video file {p}: folder {p.parent} does not exist")
    return p


class VideoRecorder(Plant):
    """A MuJoCo plant that remembers its states for a video (explicit delegation, no magic).

    Args:
        plant: a :class:`sim.physics.MujocoPlant` (has ``model``, ``data`` and ``camera``).
        path: output file, ``.mp4`` or ``.gif``.
        fps: frames per second of simulated time (and of the video).
        width: frame width in pixels (at most the model's ``offwidth``).
        height: frame height in pixels (at most the model's ``offheight``).
    """

    def __init__(
        self,
        plant: Any,
        path: str | os.PathLike[str],
        *,
        fps: float = 30.0,
        width: int = 480,
        height: int = 360,
    ) -> None:
        self.plant = plant
        self.path = check_video_path(path)
        self.fps = float(fps)
        self.width, self.height = int(width), int(height)
        self.spec = plant.spec
        self.self_paced = plant.self_paced
        self._states: list[np.ndarray] = []
        self._next_t = 0.0

    # -- capture ---------------------------------------------------------------------------
    def _capture(self, force: bool = False) -> None:
        data = self.plant.data
        t = float(data.time)
        if force or t >= self._next_t - 1e-9:
            self._states.append(data.qpos.copy())
            step = 1.0 / self.fps
            self._next_t = max(self._next_t + step, t + step) if not force else t + step

    @property
    def frames(self) -> int:
        """Frames captured so far."""
        return len(self._states)

    # -- Plant (delegated) -----------------------------------------------------------------
    def connect(self) -> None:
        """Connect the wrapped plant."""
        self.plant.connect()

    def reset(self, seed: int | None = None) -> Observation:
        """Reset the wrapped plant and capture its first frame."""
        obs = self.plant.reset(seed)
        self._capture(force=True)
        return obs

    def act(self, action: np.ndarray) -> None:
        """Act on the wrapped plant; capture a frame when one is due."""
        self.plant.act(action)
        self._capture()

    def observe(self) -> Observation:
        """The wrapped plant's observation."""
        return self.plant.observe()

    def disconnect(self) -> None:
        """Disconnect the wrapped plant (call :meth:`write` before if the model is needed)."""
        self.plant.disconnect()

    def safe_stop(self) -> None:
        """Safe-stop the wrapped plant."""
        self.plant.safe_stop()

    def drain_events(self) -> list[Event]:
        """The wrapped plant's events."""
        return self.plant.drain_events()

    def summary(self) -> dict[str, Any]:
        """The wrapped plant's summary."""
        return self.plant.summary()

    # -- output ----------------------------------------------------------------------------
    def render_frames(self) -> list[np.ndarray]:
        """Render every captured state: uint8 ``(height, width, 3)`` RGB images.

        Raises:
            PlantError: the OpenGL backend cannot render (names ``MUJOCO_GL`` and the fix).
        """
        import mujoco

        model = self.plant.model
        width = min(self.width, int(model.vis.global_.offwidth))
        height = min(self.height, int(model.vis.global_.offheight))
        width, height = width - width % 2, height - height % 2  # even sizes for libx264
        try:
            renderer = mujoco.Renderer(model, height, width)
        except Exception as exc:
            raise PlantError(
                f"cannot render video with MUJOCO_GL={os.environ.get('MUJOCO_GL', '')!r}: "
                f"{exc}; install libegl1 or libosmesa6 (scripts/install-system-deps.sh) and "
                "set MUJOCO_GL=egl or osmesa before starting"
            ) from None
        # Shadows and reflections triple the cost of software (llvmpipe/osmesa) rendering.
        renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        data = mujoco.MjData(model)
        cam = self._camera(model)
        frames = []
        try:
            for qpos in self._states:
                data.qpos[:] = qpos
                mujoco.mj_forward(model, data)
                renderer.update_scene(data, camera=cam)
                frames.append(renderer.render().copy())
        finally:
            renderer.close()
        return frames

    def _camera(self, model: Any) -> Any:
        import mujoco

        cam = mujoco.MjvCamera()
        mujoco.mjv_defaultFreeCamera(model, cam)
        config = dict(getattr(self.plant, "camera", {}) or {})
        if "fixedcamid" in config:
            cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
            cam.fixedcamid = int(config["fixedcamid"])
            return cam
        track = config.pop("trackbodyid", None)
        if track is None and model.nbody > 1 and model.body_jntnum[1] > 0:
            kind = int(model.jnt_type[model.body_jntadr[1]])
            if kind in (int(mujoco.mjtJoint.mjJNT_FREE), int(mujoco.mjtJoint.mjJNT_SLIDE)):
                track = 1 if model.body_parentid[1] == 0 else None
        if track is not None and track > 0:
            cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
            cam.trackbodyid = int(track)
        for key in ("distance", "azimuth", "elevation"):
            if key in config:
                setattr(cam, key, float(config[key]))
        if "lookat" in config:
            cam.lookat[:] = np.asarray(config["lookat"], dtype=np.float64)
        return cam

    def write(self) -> Path:
        """Render the captured frames and write the video file.

        Returns:
            The path written.

        Raises:
            PlantError: nothing was captured or rendering failed.
        """
        import imageio.v2 as imageio

        if not self._states:
            raise PlantError(f"video {self.path}: no frames were captured (no episode ran)")
        frames = self.render_frames()
        if self.path.suffix.lower() == ".gif":
            imageio.mimwrite(self.path, frames, duration=1000.0 / self.fps, loop=0)
        else:
            imageio.mimwrite(
                self.path, frames, fps=self.fps, codec="libx264", quality=7, macro_block_size=2
            )
        return self.path
