"""Offscreen video of a simulated run (``liquidnode sim --video out.mp4|out.gif``).

Rendering does not run in the control loop: :class:`VideoRecorder` wraps a MuJoCo plant and,
after each control period, notes which frames of the clip fall due: frame ``k`` shows the
simulation ``k / fps`` seconds into the run (simulated time, episodes end to end), that is the
latest state at or before that time. :meth:`VideoRecorder.write` renders the frames after the
run with ``mujoco.Renderer`` and writes them with imageio (mp4: ffmpeg/libx264, streamed; gif:
pillow).
Episodes follow each other in one file, and ``N`` seconds of simulated time give an
``N``-second clip whatever the control rate (real time, when the loop ran in real time).

Frame rate: by default the control rate when it is at most 60 Hz (one frame per tick), else
30 fps; a GIF stores frame delays in hundredths of a second, so its default is the largest
of 50, 33.3, 25, 20, ... fps (100/n) not above the control rate, and an explicit GIF frame
rate must be one of those.

MuJoCo picks its OpenGL backend when ``mujoco`` is first imported, from ``MUJOCO_GL``.
Call :func:`configure_gl` before anything imports mujoco: it keeps a ``MUJOCO_GL`` the user
set, else uses ``egl`` (GPU or Mesa) when a probe render works and falls back to ``osmesa``
(software; Debian package ``libosmesa6``).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from liquidnode.controller.errors import LiquidNodeError, PlantError
from liquidnode.controller.plant import Observation, Plant
from liquidnode.controller.records import Event

if TYPE_CHECKING:
    from liquidnode.sim.physics import MujocoPlant

#: File suffixes :meth:`VideoRecorder.write` can produce.
VIDEO_SUFFIXES = (".mp4", ".gif")
#: Highest frame rate that :func:`default_fps` gives one frame per control tick, Hz.
MAX_TICK_FPS = 60.0
#: Frame rate of the default mp4 when the control rate is above :data:`MAX_TICK_FPS`.
HIGH_RATE_FPS = 30.0
#: Tolerance when comparing simulated time with frame times, seconds.
_TIME_EPS = 1e-6

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


def _gif_fps_ok(fps: float) -> bool:
    """True when ``1 / fps`` is a whole number of hundredths of a second (GIF frame delay)."""
    centis = 100.0 / fps
    return abs(centis - round(centis)) < 1e-3 * centis and round(centis) >= 2


def default_fps(rate_hz: float, suffix: str = ".mp4") -> float:
    """The video frame rate for a control rate, frames per second.

    mp4: ``rate_hz`` up to :data:`MAX_TICK_FPS` (one frame per tick), else
    :data:`HIGH_RATE_FPS`. gif: ``100 / n`` fps for the smallest whole ``n >= 2`` with
    ``100 / n <= rate_hz`` (50, 33.3, 25, 20, ... fps), so that each frame delay is a whole
    number of hundredths of a second.

    Args:
        rate_hz: control rate, Hz (> 0).
        suffix: ``".mp4"`` or ``".gif"``.
    """
    if suffix.lower() == ".gif":
        return 100.0 / max(2, math.ceil(100.0 / rate_hz - 1e-9))
    return rate_hz if rate_hz <= MAX_TICK_FPS else HIGH_RATE_FPS


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` -> ``(width, height)`` in pixels, both >= 16.

    Raises:
        ValueError: not two whole numbers separated by ``x``, or a side below 16 pixels.
    """
    parts = text.lower().split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"expected WIDTHxHEIGHT in pixels (e.g. 640x480), got {text!r}") from None
    if width < 16 or height < 16:
        raise ValueError(f"video size must be at least 16x16 pixels, got {width}x{height}")
    return width, height


def resolve_camera(model: Any, camera: str | int | None) -> int | None:
    """A model camera given by name or index -> its index; None or -1 -> None (free camera).

    Raises:
        LiquidNodeError: no such camera (the message lists the model's cameras).
    """
    import mujoco

    if camera is None:
        return None
    text = str(camera).strip()
    if text in ("-1", "free"):
        return None
    names = [model.camera(i).name or f"#{i}" for i in range(model.ncam)]
    listing = ", ".join(f"{n} ({i})" for i, n in enumerate(names)) or "none"
    if text.lstrip("-").isdigit():
        index = int(text)
        if 0 <= index < model.ncam:
            return index
        raise LiquidNodeError(
            f"camera {index} out of range: the model has {model.ncam} camera(s): {listing} "
            "(-1 or 'free' = the free camera)"
        )
    index = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, text)
    if index < 0:
        raise LiquidNodeError(
            f"no camera named {text!r} in the model; its cameras: {listing} "
            "(-1 or 'free' = the free camera)"
        )
    return int(index)


def scene_camera(model: Any, config: dict[str, Any]) -> Any:
    """An ``mujoco.MjvCamera`` from a plant's camera settings.

    ``config`` keys (all optional): ``fixedcamid`` (a model camera), ``trackbodyid``,
    ``distance`` (m), ``azimuth``/``elevation`` (degrees), ``lookat`` (m, xyz). Without
    ``fixedcamid`` or ``trackbodyid``, a model whose first body hangs from the world on a free
    or slide joint is tracked (the camera follows a running robot).
    """
    import mujoco

    cam = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, cam)
    config = dict(config)
    if config.get("fixedcamid") is not None:
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


def camera_config(plant: MujocoPlant, camera: str | int | None) -> dict[str, Any]:
    """The plant's own camera settings, or a model camera chosen by name or index.

    Raises:
        LiquidNodeError: no such camera in the plant's model.
    """
    config = dict(getattr(plant, "camera", {}) or {})
    if camera is None:
        return config
    index = resolve_camera(plant.model, camera)
    if index is None:  # the free camera, keeping the plant's distance/angles
        config.pop("fixedcamid", None)
        return config
    return {"fixedcamid": index}


class VideoRecorder(Plant):
    """A MuJoCo plant that remembers its states for a video (explicit delegation, no magic).

    Args:
        plant: a :class:`sim.physics.MujocoPlant` (has ``model``, ``data`` and ``camera``).
        path: output file, ``.mp4`` or ``.gif``.
        fps: frames per second of simulated time (and of the video); None ->
            :func:`default_fps` of the plant's control rate.
        width: frame width in pixels (mp4: even).
        height: frame height in pixels (mp4: even).
        camera: a model camera by name or index, -1 or ``"free"`` for the free camera; None ->
            the plant's own camera settings.

    Raises:
        LiquidNodeError: bad path, fps (GIF: not 100/n), size or camera.
    """

    def __init__(
        self,
        plant: MujocoPlant,
        path: str | os.PathLike[str],
        *,
        fps: float | None = None,
        width: int = 480,
        height: int = 360,
        camera: str | int | None = None,
    ) -> None:
        self.plant = plant
        self.path = check_video_path(path)
        suffix = self.path.suffix.lower()
        self.fps = float(fps) if fps is not None else default_fps(plant.spec.rate_hz, suffix)
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise LiquidNodeError(f"video frame rate must be > 0 fps, got {self.fps:g}")
        if suffix == ".gif" and not _gif_fps_ok(self.fps):
            raise LiquidNodeError(
                f"a GIF cannot play at {self.fps:g} fps (its frame delays are whole hundredths "
                "of a second): use 100/n fps (50, 33.33, 25, 20, ...), or an .mp4 file"
            )
        if suffix == ".gif":
            self.fps = 100.0 / round(100.0 / self.fps)
        self.width, self.height = int(width), int(height)
        if suffix == ".mp4" and (self.width % 2 or self.height % 2):
            raise LiquidNodeError(
                f"video size {self.width}x{self.height}: an mp4 (libx264) needs even sizes"
            )
        self.camera = camera_config(plant, camera)
        self.spec = plant.spec
        self.self_paced = plant.self_paced
        #: Distinct captured states (qpos); frames index into it.
        self._states: list[np.ndarray] = []
        #: Per frame of the clip, the index of the state it shows.
        self._frames: list[int] = []
        self._t0 = 0.0  # simulated time of the current episode's reset, s
        self._offset = 0.0  # clip time at the current episode's reset, s
        self._elapsed = 0.0  # simulated time since the current episode's reset, s

    # -- capture ---------------------------------------------------------------------------
    def _remember(self) -> None:
        self._states.append(self.plant.data.qpos.copy())

    def _advance(self) -> None:
        """Frames due before the current simulated time show the last state captured."""
        self._elapsed = float(self.plant.data.time) - self._t0
        clip_t = self._offset + self._elapsed
        last = len(self._states) - 1
        while len(self._frames) / self.fps < clip_t - _TIME_EPS:
            self._frames.append(last)

    @property
    def frames(self) -> int:
        """Frames of the clip so far."""
        return len(self._frames)

    @property
    def duration_s(self) -> float:
        """Length of the clip so far, seconds (= simulated seconds recorded)."""
        return self.frames / self.fps

    # -- Plant (delegated) -----------------------------------------------------------------
    def connect(self) -> None:
        """Connect the wrapped plant."""
        self.plant.connect()

    def reset(self, seed: int | None = None) -> Observation:
        """Reset the wrapped plant; its reset state follows the previous episode in the clip."""
        obs = self.plant.reset(seed)
        self._offset += self._elapsed
        self._t0, self._elapsed = float(self.plant.data.time), 0.0
        self._remember()
        return obs

    def act(self, action: np.ndarray) -> None:
        """Act on the wrapped plant; the frames that fell due show the state before."""
        self.plant.act(action)
        self._advance()
        self._remember()

    def observe(self) -> Observation:
        """The wrapped plant's observation."""
        return self.plant.observe()

    def disconnect(self) -> None:
        """Disconnect the wrapped plant (call :meth:`write` before if the model is needed)."""
        self.plant.disconnect()

    def safe_stop(self) -> None:
        """Safe-stop the wrapped plant."""
        self.plant.safe_stop()

    def actuation_latency_s(self) -> float | None:
        """The wrapped plant's actuation latency, s (None: unknown)."""
        return self.plant.actuation_latency_s()

    def drain_events(self) -> list[Event]:
        """The wrapped plant's events."""
        return self.plant.drain_events()

    def summary(self) -> dict[str, Any]:
        """The wrapped plant's summary."""
        return self.plant.summary()

    # -- output ----------------------------------------------------------------------------
    def _renderer(self, model: Any) -> Any:
        import mujoco

        glob = model.vis.global_
        glob.offwidth = max(int(glob.offwidth), self.width)
        glob.offheight = max(int(glob.offheight), self.height)
        try:
            renderer = mujoco.Renderer(model, self.height, self.width)
        except Exception as exc:
            raise PlantError(
                f"cannot render video with MUJOCO_GL={os.environ.get('MUJOCO_GL', '')!r}: "
                f"{exc}; install libegl1 or libosmesa6 (scripts/install-system-deps.sh) and "
                "set MUJOCO_GL=egl or osmesa before starting"
            ) from None
        # Shadows and reflections triple the cost of software (llvmpipe/osmesa) rendering.
        renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        return renderer

    def iter_frames(self) -> Iterator[np.ndarray]:
        """Render the clip frame by frame: uint8 ``(height, width, 3)`` RGB images.

        A state shown by several frames in a row is rendered once.

        Raises:
            PlantError: the OpenGL backend cannot render (names ``MUJOCO_GL`` and the fix).
        """
        import mujoco

        model = self.plant.model
        renderer = self._renderer(model)
        data = mujoco.MjData(model)
        cam = scene_camera(model, self.camera)
        shown = -1
        try:
            for index in self._frames:
                if index != shown:
                    data.qpos[:] = self._states[index]
                    mujoco.mj_forward(model, data)
                    renderer.update_scene(data, camera=cam)
                    image, shown = renderer.render().copy(), index
                yield image
        finally:
            renderer.close()

    def render_frames(self) -> list[np.ndarray]:
        """Every frame of the clip, rendered (see :meth:`iter_frames`)."""
        return list(self.iter_frames())

    def write(self) -> Path:
        """Render the frames and write the video file (mp4 streamed to ffmpeg).

        Returns:
            The path written.

        Raises:
            PlantError: no frame was captured (no control period ran) or rendering failed.
        """
        import imageio.v2 as imageio

        if not self._frames:
            raise PlantError(f"video {self.path}: no frames were captured (no episode ran)")
        if self.path.suffix.lower() == ".gif":
            frames: list[ArrayLike] = list(self.iter_frames())
            delay_ms = 10 * round(100.0 / self.fps)  # whole hundredths of a second
            imageio.mimwrite(self.path, frames, duration=delay_ms, loop=0)
            return self.path
        writer = imageio.get_writer(
            self.path, fps=self.fps, codec="libx264", quality=7, macro_block_size=2
        )
        try:
            for frame in self.iter_frames():
                writer.append_data(frame)
        finally:
            writer.close()
        return self.path
