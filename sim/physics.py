"""What every MuJoCo plant shares: stepping under a divergence guard, channel names, safe stop.

:class:`MujocoPlant` is the base of :class:`sim.mujoco_plant.GymPlant` (a Gymnasium MuJoCo
environment) and :class:`sim.mjcf_plant.MjcfPlant` (a plain MJCF file). It owns no task logic;
subclasses decide observation, reward and episode end.

Divergence guard: after each control period the plant checks MuJoCo's warning counters
(``mjWARN_BADQACC``/``BADQPOS``/``BADQVEL``/``BADCTRL``: MuJoCo resets the state, or zeroes the
controls, when it sees a non-finite or huge value) and that ``qpos``/``qvel`` are finite, and raises
:class:`controller.errors.PlantError` naming what diverged and when.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import mujoco
import numpy as np

from liquidnode.controller.errors import PlantError, TimingError
from liquidnode.controller.plant import Plant

#: MuJoCo warnings that mean the simulation diverged.
_DIVERGENCE_WARNINGS = {
    int(mujoco.mjtWarning.mjWARN_BADQACC): "non-finite or huge acceleration (qacc)",
    int(mujoco.mjtWarning.mjWARN_BADQPOS): "non-finite or huge position (qpos)",
    int(mujoco.mjtWarning.mjWARN_BADQVEL): "non-finite or huge velocity (qvel)",
    int(mujoco.mjtWarning.mjWARN_BADCTRL): "non-finite or huge control (ctrl)",
}

#: MuJoCo compiler notices about Gymnasium's bundled model files (HalfCheetah's
#: ``settotalmass``): printed on every ``gymnasium.make`` and nothing a user can act on.
_BUNDLED_ASSET_NOTICES = ("compiler attribute 'settotalmass' is deprecated",)
#: Warnings :func:`mujoco_warning` has printed (each distinct text is printed once).
_SHOWN: set[str] = set()


def mujoco_warning(message: str) -> None:
    """liquidnode's handler of MuJoCo warnings (``mju_warning``).

    Drops the notices about Gymnasium's own XML files, prints every other warning once per
    distinct text on stderr as ``MuJoCo warning: ...``, and writes no file. (MuJoCo without a
    handler prints ``WARNING: ...`` on stdout, into a ``--json`` output, and appends it to
    ``MUJOCO_LOG.TXT`` in the working directory.) The divergence guard does not depend on
    it: it reads the ``MjData`` warning counters, which MuJoCo keeps with any handler.
    """
    if message.startswith(_BUNDLED_ASSET_NOTICES) or message in _SHOWN:
        return
    _SHOWN.add(message)
    print(f"MuJoCo warning: {message}", file=sys.stderr)


def install_warning_handler() -> None:
    """Make :func:`mujoco_warning` MuJoCo's warning handler unless one is already set.

    Runs when this module is imported, so every liquidnode plant and environment has it.
    """
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(mujoco_warning)


install_warning_handler()


@contextlib.contextmanager
def quiet_bundled_asset_notices() -> Iterator[None]:
    """Inside the block, drop MuJoCo's deprecation notices about Gymnasium's own XML files.

    Every other MuJoCo warning goes where it went before (the previous handler, or
    :func:`mujoco_warning`). The previous handler is restored on exit.
    """
    previous = mujoco.get_mju_user_warning()

    def handler(message: str) -> None:
        if message.startswith(_BUNDLED_ASSET_NOTICES):
            return
        (previous or mujoco_warning)(message)

    mujoco.set_mju_user_warning(handler)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


_FIRST, _LAST = min(_DIVERGENCE_WARNINGS), max(_DIVERGENCE_WARNINGS)
assert len(_DIVERGENCE_WARNINGS) == _LAST - _FIRST + 1, "divergence warnings are contiguous"


class _DivergenceGuard:
    """Live views of one ``MjData``'s divergence counters, ``qpos`` and ``qvel``.

    Built once per ``MjData``, so each tick's check is a few byte comparisons on views held
    here, with no attribute lookups through the environment's wrappers (what the whole node
    adds per tick is in the README's simulation-overhead benchmark).
    """

    def __init__(self, data: mujoco.MjData) -> None:
        self.data = data
        self.counters = data.warning.number[_FIRST : _LAST + 1]  # a live view
        self.qpos, self.qvel = data.qpos, data.qvel
        self.zero_counters = np.zeros_like(self.counters).tobytes()
        self.finite_qpos = np.ones(self.qpos.shape, dtype=bool).tobytes()
        self.finite_qvel = np.ones(self.qvel.shape, dtype=bool).tobytes()
        self.t_start = 0.0

    def healthy(self) -> bool:
        """No divergence warning since :meth:`MujocoPlant._clear_warnings`, state finite."""
        return (
            self.counters.tobytes() == self.zero_counters
            and np.isfinite(self.qpos).tobytes() == self.finite_qpos
            and np.isfinite(self.qvel).tobytes() == self.finite_qvel
        )


_SCALAR_JOINTS = (int(mujoco.mjtJoint.mjJNT_SLIDE), int(mujoco.mjtJoint.mjJNT_HINGE))


#: Most physics steps per control tick (a tick that long is a mistake, not a control loop).
MAX_FRAME_SKIP = 100_000
#: Longest physics step accepted, s (MuJoCo's default is 0.002 s).
MAX_TIMESTEP_S = 0.1


def frame_skip_for_rate(rate_hz: float, timestep_s: float, where: str) -> int:
    """Physics steps per control period for a control rate.

    Raises:
        TimingError: the period ``1 / rate_hz`` is not a whole multiple (>= 1) of the physics
            step ``timestep_s`` (the message names both numbers and the nearest valid rates),
            or more than :data:`MAX_FRAME_SKIP` of them.
    """
    if not (np.isfinite(rate_hz) and rate_hz > 0):
        raise TimingError(f"control rate must be a positive number of Hz, got {rate_hz}")
    period = 1.0 / rate_hz
    steps = period / timestep_s
    if steps > MAX_FRAME_SKIP:
        raise TimingError(
            f"control period {period:g} s ({rate_hz:g} Hz) is {steps:g} physics steps of "
            f"{timestep_s:g} s in {where}; at most {MAX_FRAME_SKIP} steps per tick are allowed"
        )
    k = round(steps)
    if k < 1 or abs(steps - k) > 1e-6 * max(1.0, steps):
        lo, hi = max(1, int(np.floor(steps))), max(1, int(np.ceil(steps)))
        options = sorted({1.0 / (lo * timestep_s), 1.0 / (hi * timestep_s)}, reverse=True)
        raise TimingError(
            f"control period {period:g} s ({rate_hz:g} Hz) is not a whole multiple of the "
            f"physics step {timestep_s:g} s of {where}; nearest valid rates: "
            + ", ".join(f"{r:g} Hz" for r in options)
        )
    return k


def joint_channels(model: mujoco.MjModel) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Name and unit of every ``qpos`` and ``qvel`` entry, in vector order.

    Slide joints: ``"<joint> pos"`` m, ``"<joint> vel"`` m/s; hinge joints: rad, rad/s; ball
    joints: quaternion ``qw qx qy qz`` (unit 1) and angular velocity ``wx wy wz`` rad/s; free
    joints: ``x y z`` m, quaternion, ``vx vy vz`` m/s, ``wx wy wz`` rad/s.
    """
    qpos: list[tuple[str, str]] = [("", "unknown")] * model.nq
    qvel: list[tuple[str, str]] = [("", "unknown")] * model.nv
    for j in range(model.njnt):
        name = model.joint(j).name or f"joint{j}"
        kind = int(model.jnt_type[j])
        pa, va = int(model.jnt_qposadr[j]), int(model.jnt_dofadr[j])
        if kind == int(mujoco.mjtJoint.mjJNT_SLIDE):
            qpos[pa], qvel[va] = (f"{name} pos", "m"), (f"{name} vel", "m/s")
        elif kind == int(mujoco.mjtJoint.mjJNT_HINGE):
            qpos[pa], qvel[va] = (f"{name} pos", "rad"), (f"{name} vel", "rad/s")
        else:
            quat = [(f"{name} q{c}", "1") for c in "wxyz"]
            ang = [(f"{name} w{c}", "rad/s") for c in "xyz"]
            if kind == int(mujoco.mjtJoint.mjJNT_BALL):
                qpos[pa : pa + 4], qvel[va : va + 3] = quat, ang
            else:  # free
                qpos[pa : pa + 7] = [(f"{name} {c}", "m") for c in "xyz"] + quat
                qvel[va : va + 6] = [(f"{name} v{c}", "m/s") for c in "xyz"] + ang
    return qpos, qvel


def actuator_channels(model: mujoco.MjModel) -> list[tuple[str, str]]:
    """Name and unit of every actuator ``ctrl`` entry.

    The name is the actuator's (or its joint's when unnamed). The unit is N (slide) or N·m
    (hinge) for a joint actuator with gear 1, otherwise ``"1"`` (scaled by the gear).
    """
    out = []
    for a in range(model.nu):
        name = model.actuator(a).name
        unit = "1"
        if int(model.actuator_trntype[a]) == int(mujoco.mjtTrn.mjTRN_JOINT):
            j = int(model.actuator_trnid[a, 0])
            name = name or model.joint(j).name
            gear1 = model.actuator_gear[a, 0] == 1.0
            biasless = int(model.actuator_biastype[a]) == int(mujoco.mjtBias.mjBIAS_NONE)
            if gear1 and biasless:
                is_slide = int(model.jnt_type[j]) == int(mujoco.mjtJoint.mjJNT_SLIDE)
                unit = "N" if is_slide else "N·m"
        out.append((name or f"actuator{a}", unit))
    return out


def action_limits(model: mujoco.MjModel) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` of every actuator's ctrl: its ctrlrange, or ±inf when not limited."""
    low = np.full(model.nu, -np.inf)
    high = np.full(model.nu, np.inf)
    limited = model.actuator_ctrllimited.astype(bool)
    low[limited] = model.actuator_ctrlrange[limited, 0]
    high[limited] = model.actuator_ctrlrange[limited, 1]
    return low, high


class MujocoPlant(Plant):
    """Base of the MuJoCo plants: model/data access, divergence guard, safe stop.

    Subclasses set :attr:`spec` and implement the Plant methods; they call
    :meth:`_check_divergence` after stepping.
    """

    #: Camera settings for video (``distance``, ``azimuth``, ``elevation``, ``lookat``,
    #: ``trackbodyid``, or ``fixedcamid`` for a model camera); empty = default free camera.
    camera: dict[str, Any]

    def __init__(self) -> None:
        self.camera = {}
        self._guard: _DivergenceGuard | None = None

    @property
    def model(self) -> mujoco.MjModel:
        """The MuJoCo model."""
        raise NotImplementedError

    @property
    def data(self) -> mujoco.MjData:
        """The MuJoCo data (live simulation state)."""
        raise NotImplementedError

    @property
    def physics_step_s(self) -> float:
        """The physics time step, seconds (``model.opt.timestep``)."""
        return float(self.model.opt.timestep)

    @property
    def frame_skip(self) -> int:
        """Physics steps per control period."""
        return round(self.spec.control_period_s / self.physics_step_s)

    def _clear_warnings(self) -> None:
        """Zero MuJoCo's divergence warning counters and note the sim time (before stepping).

        The guard holds views of the ``MjData`` it was built for; a subclass that replaces its
        ``MjData`` (a re-created environment) sets ``self._guard = None``. After a healthy
        tick the counters are still zero, so they are compared rather than written.
        """
        guard = self._guard
        if guard is None:
            guard = self._guard = _DivergenceGuard(self.data)
        if guard.counters.tobytes() != guard.zero_counters:
            guard.counters[:] = 0
        guard.t_start = guard.data.time

    def _check_divergence(self) -> None:
        """Raise PlantError if the period since :meth:`_clear_warnings` diverged.

        MuJoCo resets the state when it meets a bad value (so ``data.time`` restarts at 0);
        the warning counters, cleared by :meth:`_clear_warnings` before stepping, tell, and a
        non-finite ``qpos``/``qvel`` after the last sub-step (not yet checked by MuJoCo) too.
        """
        guard = self._guard
        assert guard is not None, "_clear_warnings() must run before stepping"
        if guard.healthy():
            return
        data, numbers = guard.data, guard.data.warning.number
        where = f"in the control period starting at t={guard.t_start:.4f} s"
        for code, what in _DIVERGENCE_WARNINGS.items():
            if numbers[code] > 0:
                raise PlantError(
                    f"simulation of {self.spec.name} diverged {where}: MuJoCo reported {what} "
                    f"at DOF {data.warning[code].lastinfo}; lower the action limits or the time "
                    "step"
                )
        raise PlantError(f"simulation of {self.spec.name} diverged {where}: non-finite qpos/qvel")

    def safe_stop(self) -> None:
        """Set the actuators' ctrl to the safe action (no physics step). Never raises."""
        with contextlib.suppress(Exception):  # best effort on the way out
            self.data.ctrl[:] = self.spec.safe_action

    def summary(self) -> dict[str, Any]:
        """Physics details for the run summary: time step, frame skip, simulated time."""
        try:
            return {
                "physics_step_s": self.physics_step_s,
                "frame_skip": self.frame_skip,
                "sim_time_s": float(self.data.time),
            }
        except Exception:  # not connected
            return {}
