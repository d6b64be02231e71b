"""A live window on a simulated run (``liquidnode sim --viewer``): MuJoCo's passive viewer.

:class:`ViewerPlant` wraps a MuJoCo plant like :class:`sim.video.VideoRecorder` does: the
control loop sees the same plant, and after each reset and control period the wrapper copies
the simulation state to ``mujoco.viewer.launch_passive``'s window (at most
:data:`MAX_SYNC_HZ` times per wall-clock second, so a fast or 1 kHz loop is not slowed by
drawing). The window draws on its own thread. Closing it stops the drawing, not the run
(Ctrl-C stops the run).

A viewer needs a display: :func:`check_display` raises a one-line
:class:`~controller.errors.LiquidNodeError` when ``DISPLAY``/``WAYLAND_DISPLAY`` are unset or
GLFW cannot open the display, before anything is simulated.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.plant import Observation, Plant
from liquidnode.controller.records import Event

if TYPE_CHECKING:
    from liquidnode.sim.physics import MujocoPlant

#: Most window updates per wall-clock second.
MAX_SYNC_HZ = 60.0
#: Seconds to wait for the viewer window to come up.
LAUNCH_TIMEOUT_S = 30.0

_PROBE = (
    "import sys, glfw\n"
    "errors = []\n"
    "glfw.set_error_callback(lambda code, text: errors.append(text.decode(errors='replace')"
    " if isinstance(text, bytes) else str(text)))\n"
    "ok = glfw.init()\n"
    "print('; '.join(errors))\n"
    "sys.exit(0 if ok else 1)\n"
)
_HEADLESS_HINT = "use --video out.mp4 for an offscreen recording instead"


def check_display() -> None:
    """Check that a viewer window can open here.

    Raises:
        LiquidNodeError: no ``DISPLAY``/``WAYLAND_DISPLAY``, no GLFW, or GLFW cannot open the
            display (checked in a subprocess, about a second).
    """
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if not display:
        raise LiquidNodeError(
            "--viewer needs a display, but neither DISPLAY nor WAYLAND_DISPLAY is set (run it "
            f"on a desktop or over ssh -X); {_HEADLESS_HINT}"
        )
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LiquidNodeError(f"--viewer: cannot check the display {display}: {exc}") from None
    if probe.returncode != 0:
        lines = (probe.stdout.strip() or probe.stderr.strip()).splitlines()
        reason = lines[-1] if lines else "initialisation failed"
        raise LiquidNodeError(
            f"--viewer: cannot open the display {display} (GLFW: {reason}); {_HEADLESS_HINT}"
        )


class ViewerWindow:
    """A passive viewer's handle and the threads that draw it.

    :meth:`close` asks the window to close and waits for its threads, so that the process
    does not tear GLFW down (at exit) while the window is still being destroyed.
    """

    def __init__(self, handle: Any, threads: list[threading.Thread]) -> None:
        self.handle = handle
        self.threads = threads

    @property
    def cam(self) -> Any:
        """The viewer's ``mujoco.MjvCamera``."""
        return self.handle.cam

    def lock(self) -> Any:
        """The viewer's lock (hold it to change the camera)."""
        return self.handle.lock()

    def is_running(self) -> bool:
        """False once the window was closed."""
        return bool(self.handle.is_running())

    def sync(self) -> None:
        """Copy the simulation state to the window."""
        self.handle.sync()

    def close(self) -> None:
        """Close the window and wait (up to :data:`LAUNCH_TIMEOUT_S`) for its threads."""
        self.handle.close()
        for thread in self.threads:
            thread.join(LAUNCH_TIMEOUT_S)


def launch_viewer(model: Any, data: Any) -> ViewerWindow:
    """``mujoco.viewer.launch_passive(model, data)`` without the side panels.

    Raises:
        LiquidNodeError: the viewer cannot be imported or its window did not come up within
            :data:`LAUNCH_TIMEOUT_S` (``launch_passive`` itself would wait forever).
    """
    try:
        import mujoco.viewer
    except (ImportError, RuntimeError) as exc:
        raise LiquidNodeError(f"--viewer: MuJoCo's viewer is not available: {exc}") from None
    result: dict[str, Any] = {}

    def launch() -> None:
        try:
            result["handle"] = mujoco.viewer.launch_passive(
                model, data, show_left_ui=False, show_right_ui=False
            )
        except Exception as exc:
            result["error"] = exc

    before = set(threading.enumerate())
    thread = threading.Thread(target=launch, name="viewer-launch", daemon=True)
    thread.start()
    thread.join(LAUNCH_TIMEOUT_S)
    if "handle" in result:
        drawing = [t for t in threading.enumerate() if t not in before and t is not thread]
        return ViewerWindow(result["handle"], drawing)
    why = result.get("error", f"no window after {LAUNCH_TIMEOUT_S:g} s")
    raise LiquidNodeError(f"--viewer: MuJoCo's viewer did not start: {why}; {_HEADLESS_HINT}")


def _aim(handle: Any, model: Any, config: dict[str, Any]) -> None:
    """Point the viewer's camera as the plant's (or the chosen) camera settings say."""
    from liquidnode.sim.video import scene_camera

    cam = scene_camera(model, config)
    with handle.lock():
        view = handle.cam
        view.type = cam.type
        view.fixedcamid = cam.fixedcamid
        view.trackbodyid = cam.trackbodyid
        view.distance, view.azimuth, view.elevation = cam.distance, cam.azimuth, cam.elevation
        view.lookat[:] = cam.lookat


class ViewerPlant(Plant):
    """A MuJoCo plant shown live in MuJoCo's passive viewer (explicit delegation, no magic).

    Args:
        plant: a :class:`sim.physics.MujocoPlant` (has ``model``, ``data`` and ``camera``).
        camera: a model camera by name or index, -1 or ``"free"`` for the free camera; None ->
            the plant's own camera settings.
        launch: opens the window for ``(model, data)`` and returns a handle with ``sync()``,
            ``is_running()``, ``close()``, ``lock()`` and ``cam`` (default:
            :func:`launch_viewer`).

    Raises:
        LiquidNodeError: no such camera.
    """

    def __init__(
        self,
        plant: MujocoPlant,
        *,
        camera: str | int | None = None,
        launch: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        from liquidnode.sim.video import camera_config

        self.plant = plant
        self.spec = plant.spec
        self.self_paced = plant.self_paced
        self.camera = camera_config(plant, camera)
        self._launch = launch or launch_viewer
        self.handle: Any = None
        self._data: Any = None  # the MjData the window shows
        self._last_sync = -1.0
        #: Window updates so far.
        self.syncs = 0

    @property
    def model(self) -> Any:
        """The wrapped plant's MuJoCo model."""
        return self.plant.model

    @property
    def data(self) -> Any:
        """The wrapped plant's MuJoCo data."""
        return self.plant.data

    def _show(self, force: bool = False) -> None:
        data = self.plant.data
        if self.handle is None or data is not self._data:  # first reset, or a re-created env
            self._close()
            self.handle = self._launch(self.plant.model, data)
            self._data = data
            _aim(self.handle, self.plant.model, self.camera)
            force = True
        now = time.monotonic()
        if not force and now - self._last_sync < 1.0 / MAX_SYNC_HZ:
            return
        if self.handle.is_running():
            self.handle.sync()
            self.syncs += 1
            self._last_sync = now

    def _close(self) -> None:
        if self.handle is not None:
            handle, self.handle, self._data = self.handle, None, None
            handle.close()

    # -- Plant (delegated) -----------------------------------------------------------------
    def connect(self) -> None:
        """Connect the wrapped plant (the window opens at the first reset)."""
        self.plant.connect()

    def reset(self, seed: int | None = None) -> Observation:
        """Reset the wrapped plant and show its reset state."""
        obs = self.plant.reset(seed)
        self._show(force=True)
        return obs

    def act(self, action: np.ndarray) -> None:
        """Act on the wrapped plant and show the new state (at most MAX_SYNC_HZ per second)."""
        self.plant.act(action)
        self._show()

    def observe(self) -> Observation:
        """The wrapped plant's observation."""
        return self.plant.observe()

    def disconnect(self) -> None:
        """Close the window and disconnect the wrapped plant."""
        try:
            self._close()
        finally:
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
