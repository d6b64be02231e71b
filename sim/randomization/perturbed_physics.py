"""One randomisation spec applied to one MuJoCo model and data, at the physics step.

:class:`PerturbedPhysics` is the one implementation behind both users of a spec: the
simulation plants (:class:`liquidnode.sim.mjcf_plant.MjcfPlant` calls it directly; the
Gymnasium plant goes through the wrapper) and the training environments
(:class:`liquidnode.sim.randomization.gym_wrapper.RandomizedEnv` hooks it into Gymnasium's
``MujocoEnv`` stepping). Per episode (:meth:`PerturbedPhysics.reset`) it restores the nominal
model, draws the episode's values and scales the model; per tick it draws the control period,
runs the physics steps with the delayed commands and pushes, and corrupts the observation.

Actuation latency. A command issued at simulated time ``c`` (the tick's start) reaches the
actuators at ``c + L``; until then the previous command keeps acting. Commands form a FIFO
queue (a link delivers in order), so ``L`` may exceed one tick. When ``c + L`` falls inside a
physics step, that step is split in two (``opt.timestep`` shortened for each part), so a
latency of a quarter tick is exact even when a tick has two physics steps; a latency that is a
whole number of physics steps never splits a step, so the command lands exactly ``k`` steps late.

Units: times in seconds of simulated time; ``ctrl`` in the model's control units; pushes in N
(``xfrc_applied`` force at the body's centre of mass, direction uniform in the xy-plane).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import mujoco
import numpy as np

from liquidnode.controller.errors import LiquidNodeError
from liquidnode.sim.randomization.spec import RandomizationSpec, Range

#: Order of :meth:`PerturbedPhysics.privileged`'s features.
PRIVILEGED_FEATURES = (
    "latency",
    "mass",
    "friction",
    "damping",
    "actuator_gain",
    "noise",
    "push_x",
    "push_y",
)


@dataclass
class EpisodeDraw:
    """The values one episode drew (JSON-able via :meth:`to_json`).

    Attributes:
        latency_s: actuation latency, s (before the per-tick jitter).
        mass, friction, damping, actuator_gain: the model's scale factors.
        noise: std of the observation noise, fraction of each channel's scale.
        bias: each channel's observation bias, env units, ``(obs_dim,)`` (empty if unknown).
        spread: factor on the reset state's offset from the reference state (1: unchanged).
    """

    latency_s: float = 0.0
    mass: float = 1.0
    friction: float = 1.0
    damping: float = 1.0
    actuator_gain: float = 1.0
    noise: float = 0.0
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0))
    spread: float = 1.0

    def to_json(self) -> dict[str, Any]:
        """The draw as a dict of floats (``bias`` as a list)."""
        return {
            "latency_s": self.latency_s,
            "mass": self.mass,
            "friction": self.friction,
            "damping": self.damping,
            "actuator_gain": self.actuator_gain,
            "noise": self.noise,
            "bias": [float(b) for b in self.bias],
            "spread": self.spread,
        }


class PerturbedPhysics:
    """Apply ``spec`` to ``model``/``data``: per-episode scaling, per-tick latency and pushes.

    Args:
        model: the MuJoCo model (scaled in place per episode; its nominal values are kept here).
        data: the MuJoCo data stepped by :meth:`run_tick`.
        spec: the randomisation spec.
        control_period_s: the nominal control period, s (latency in ticks is relative to it).
        obs_scale: each observation channel's scale in env units, used when the spec has none
            (None: observation noise and bias need ``spec.observation.scale``).

    Raises:
        LiquidNodeError: a pushed body that the model does not have, or observation noise
            without any channel scale.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        spec: RandomizationSpec,
        control_period_s: float,
        obs_scale: np.ndarray | None = None,
    ) -> None:
        self.model, self.data, self.spec = model, data, spec
        self.control_period_s = float(control_period_s)
        self.nominal_substep = float(model.opt.timestep)
        self._nominal = {
            "body_mass": model.body_mass.copy(),
            "body_inertia": model.body_inertia.copy(),
            "geom_friction": model.geom_friction.copy(),
            "dof_damping": model.dof_damping.copy(),
            "actuator_gainprm": model.actuator_gainprm.copy(),
            "actuator_biasprm": model.actuator_biasprm.copy(),
        }
        scale = spec.observation.scale
        self.obs_scale = np.asarray(scale if scale is not None else obs_scale, np.float64)
        obs = spec.observation
        if (obs.noise.active or obs.bias.active) and self.obs_scale.ndim == 0:
            raise LiquidNodeError(
                f"randomisation spec {spec.name}: observation noise/bias needs each channel's "
                "scale: set observation.scale in the spec (or evaluate with a policy, whose "
                "obs_std is used)"
            )
        names = spec.push.bodies
        if names:
            ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, n) for n in names]
            missing = [n for n, i in zip(names, ids, strict=True) if i < 0]
            if missing:
                known = [model.body(i).name for i in range(1, model.nbody)]
                raise LiquidNodeError(
                    f"randomisation spec {spec.name}: push.bodies names {missing[0]!r}, which "
                    f"the model does not have (bodies: {', '.join(known)})"
                )
            self._push_bodies = np.asarray(ids)
        else:
            self._push_bodies = np.arange(1, model.nbody)
        self.rng = np.random.default_rng(0)
        self.draw = EpisodeDraw()
        self._privileged = np.zeros(len(PRIVILEGED_FEATURES), dtype=np.float32)
        self._queue: deque[tuple[float, np.ndarray]] = deque()
        self._last_due = 0.0
        self.clock = 0.0
        self._push_start = self._push_end = np.inf
        self._push_force = np.zeros(6)
        self._push_body = 0

    # ------------------------------------------------------------------ episode
    def reset(
        self,
        rng: np.random.Generator,
        reference: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> EpisodeDraw:
        """Restore the nominal model, draw this episode's values with ``rng`` and apply them.

        Call after the environment's own reset (the queue starts from the current ``ctrl``).
        ``rng`` is kept for the per-tick draws of the episode. ``reference`` is the model's
        reference state ``(qpos, qvel)`` that the env's reset noise was added to; with an
        ``initial_state.spread`` other than 1 the state's offset from it is scaled (and
        ``mj_forward`` run): the caller must then observe the state again.

        Raises:
            LiquidNodeError: a spread to apply but no ``reference``.
        """
        spec, m = self.spec, self.model
        self.rng = rng
        for name, value in self._nominal.items():
            getattr(m, name)[:] = value
        m.opt.timestep = self.nominal_substep
        dyn = spec.dynamics
        d = EpisodeDraw(
            latency_s=spec.latency.ticks.sample(rng) * self.control_period_s
            + spec.latency.ms.sample(rng) * 1e-3,
            mass=dyn.mass.sample(rng),
            friction=dyn.friction.sample(rng),
            damping=dyn.damping.sample(rng),
            actuator_gain=dyn.actuator_gain.sample(rng),
            noise=spec.observation.noise.sample(rng),
        )
        b = spec.observation.bias.sample(rng)
        if b > 0.0:
            d.bias = rng.uniform(-b, b, size=self.obs_scale.shape) * self.obs_scale
        m.body_mass[:] *= d.mass
        m.body_inertia[:] *= d.mass
        m.geom_friction[:, 0] *= d.friction
        m.dof_damping[:] *= d.damping
        m.actuator_gainprm[:] *= d.actuator_gain
        m.actuator_biasprm[:] *= d.actuator_gain
        self.draw = d
        self._privileged = self._episode_places()
        self._queue.clear()
        self.clock = self._last_due = 0.0
        self.data.xfrc_applied[:] = 0.0
        self._push_start = self._push_end = np.inf
        if spec.push.impulse.active:
            self._push_start = spec.push.interval_s.sample(rng)
            self._push_end = self._push_start + spec.push.duration_s
            self._draw_push()
        # drawn last, so that a spread leaves every other draw of the episode as it was
        d.spread = spec.initial_state.spread.sample(rng)
        if d.spread != 1.0:
            if reference is None:
                raise LiquidNodeError(
                    f"randomisation spec {spec.name}: initial_state.spread needs the model's "
                    "reference state, which this plant does not give"
                )
            qpos_ref, qvel_ref = reference
            self.data.qpos[:] = qpos_ref + d.spread * (self.data.qpos - qpos_ref)
            self.data.qvel[:] = qvel_ref + d.spread * (self.data.qvel - qvel_ref)
            mujoco.mj_forward(self.model, self.data)
        return d

    def _draw_push(self) -> None:
        push, rng = self.spec.push, self.rng
        angle = rng.uniform(0.0, 2.0 * np.pi)
        magnitude = push.impulse.sample(rng) / push.duration_s
        self._push_force = np.array([np.cos(angle), np.sin(angle), 0, 0, 0, 0]) * magnitude
        self._push_body = int(rng.choice(self._push_bodies))

    # ------------------------------------------------------------------ tick
    def draw_period(self, frame_skip: int) -> tuple[int, float, float]:
        """This tick's ``(physics steps, physics step s, period s)``.

        Without dt jitter: ``(frame_skip, nominal step, nominal period)``. With jitter ``f``
        the period is ``nominal * (1 + U(-f, f))``, realised with the nearest whole number of
        steps (>= 1), each ``period / steps`` long.
        """
        f = self.spec.timing.dt_jitter
        if f <= 0.0:
            return frame_skip, self.nominal_substep, frame_skip * self.nominal_substep
        period = frame_skip * self.nominal_substep * (1.0 + self.rng.uniform(-f, f))
        steps = max(1, round(period / self.nominal_substep))
        return steps, period / steps, period

    def run_tick(self, action: np.ndarray, n_steps: int, substep: float | None = None) -> None:
        """Issue ``action`` now and advance the physics ``n_steps`` steps of ``substep`` s.

        The command joins the latency queue; each physics step applies the commands due by
        then (splitting the step at a due time inside it) and the push active at its start.
        ``model.opt.timestep`` is ``substep`` again on return. Ends with
        ``mj_rnePostConstraint`` (as Gymnasium's stepping does).
        """
        m, d = self.model, self.data
        h = float(m.opt.timestep if substep is None else substep)
        lat = self.spec.latency
        delay = self.draw.latency_s
        if lat.jitter_ticks > 0.0:
            delay += self.rng.uniform(0.0, lat.jitter_ticks) * self.control_period_s
        due = max(self.clock + delay, self._last_due)
        self._last_due = due
        self._queue.append((due, np.array(action, dtype=np.float64)))
        tol = 1e-9 * h
        queue = self._queue
        try:
            for _ in range(n_steps):
                self._apply_push()
                remaining = h
                while True:
                    while queue and queue[0][0] <= self.clock + tol:
                        d.ctrl[:] = queue.popleft()[1]
                    if queue and queue[0][0] < self.clock + remaining - tol:
                        part = queue[0][0] - self.clock
                        m.opt.timestep = part
                        mujoco.mj_step(m, d)
                        self.clock += part
                        remaining -= part
                        continue
                    m.opt.timestep = remaining
                    mujoco.mj_step(m, d)
                    self.clock += remaining
                    break
        finally:
            m.opt.timestep = h
        mujoco.mj_rnePostConstraint(m, d)

    def _apply_push(self) -> None:
        if self.clock >= self._push_end:
            self.data.xfrc_applied[self._push_body] = 0.0
            interval = self.spec.push.interval_s.sample(self.rng)
            self._push_start += interval
            self._push_end = self._push_start + self.spec.push.duration_s
            self._draw_push()
        if self._push_start <= self.clock < self._push_end:
            self.data.xfrc_applied[self._push_body] = self._push_force

    def privileged(self) -> np.ndarray:
        """What the randomisation knows about the plant now and a policy is not told, for a
        trainer's critic (``liquidnode train --privileged-critic``): float32 ``(8,)`` in the
        order of :data:`PRIVILEGED_FEATURES`.

        ``latency`` .. ``noise``: the episode's draw as its place in the spec's range, -1 at the
        low end, +1 at the high end, 0 where the spec fixes the value (``latency`` in control
        periods over the ``ticks`` + ``ms`` range, without the per-tick jitter). ``push_x``,
        ``push_y``: the push force on its body at the current time (the end of the last
        physics step), in units of the largest force the spec can draw (``impulse`` high end /
        ``duration_s``); 0 between pushes and without pushes.
        """
        out = self._privileged.copy()  # the episode's places, set by reset; no push
        push = self.spec.push
        if push.impulse.hi > 0.0 and self._push_start <= self.clock < self._push_end:
            out[6:8] = self._push_force[:2] / (push.impulse.hi / push.duration_s)
        return out

    def _episode_places(self) -> np.ndarray:
        """:meth:`privileged` without the push: the current draw's places in the spec."""
        spec, d = self.spec, self.draw
        lat, dyn = spec.latency, spec.dynamics
        period = self.control_period_s
        latency = Range(lat.ticks.lo + lat.ms.lo * 1e-3 / period,
                        lat.ticks.hi + lat.ms.hi * 1e-3 / period)  # fmt: skip
        out = np.zeros(len(PRIVILEGED_FEATURES), dtype=np.float32)
        out[0] = _place(d.latency_s / period, latency)
        out[1] = _place(d.mass, dyn.mass)
        out[2] = _place(d.friction, dyn.friction)
        out[3] = _place(d.damping, dyn.damping)
        out[4] = _place(d.actuator_gain, dyn.actuator_gain)
        out[5] = _place(d.noise, spec.observation.noise)
        return out

    def observe(self, obs: np.ndarray) -> np.ndarray:
        """``obs`` plus this episode's bias and this tick's noise (env units, float64)."""
        out = np.asarray(obs, dtype=np.float64)
        d = self.draw
        if d.bias.size:
            out = out + d.bias
        if d.noise > 0.0:
            out = out + self.rng.normal(0.0, d.noise, size=out.shape) * self.obs_scale
        return out


def _place(value: float, span: Range) -> float:
    """``value``'s place in ``span``: -1 at ``lo``, +1 at ``hi``; 0 when the span is fixed."""
    if span.hi <= span.lo:
        return 0.0
    return 2.0 * (value - span.lo) / (span.hi - span.lo) - 1.0
