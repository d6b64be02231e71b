"""The randomisation spec: a small typed dataclass tree, loaded from TOML.

A spec says, per parameter, the range each episode draws its value from (uniformly). Every
field is optional; an empty spec is the nominal plant. In TOML a range is a number (a fixed
value) or ``[low, high]``::

    description = "what this preset is for"

    [latency]              # the previous command holds for the first part of each tick
    ticks = [0.0, 1.0]     # latency in control periods (drawn per episode); may exceed 1
    ms = 0.0               # plus a latency in milliseconds (drawn per episode)
    jitter_ticks = 0.1     # plus U(0, jitter_ticks) control periods, drawn per tick

    [timing]
    dt_jitter = 0.4        # each tick's control period is nominal * (1 + U(-f, f))

    [observation]          # fractions of each channel's scale (its standard deviation)
    noise = [0.0, 0.05]    # std of white noise added each tick (the fraction drawn per episode)
    bias = [0.0, 0.02]     # each channel's bias is U(-b, b) * scale, b drawn per episode
    scale = [0.33, 0.07, 0.64, 1.2]   # channel scales, env units (optional, see below)

    [dynamics]             # multiplicative factors, drawn per episode
    mass = [0.5, 1.5]      # every body's mass and inertia
    friction = [0.5, 1.25] # sliding friction of every geom
    damping = [0.8, 1.2]   # every joint's damping
    actuator_gain = [0.8, 1.2]   # every actuator's force per unit of control

    [push]                 # random pushes (xfrc_applied) on a body
    impulse = [0.0, 2.0]   # N·s, the push's magnitude (force = impulse / duration_s)
    interval_s = [1.0, 3.0]   # simulated seconds between pushes
    duration_s = 0.1       # how long each push lasts, s
    bodies = ["pole"]      # bodies pushed (one drawn per push); empty: any non-world body

    [initial_state]        # the reset state's random offset from the model's reference state
    spread = [1.0, 1.5]    # (qpos, qvel) times a factor drawn per episode; 1: the env's own

``observation.scale`` gives each channel's scale in env units; without it the caller supplies
one (``liquidnode eval``/``stress`` use the policy's ``obs_std``, the standard deviation its
normaliser measured in training). Parse errors raise :class:`SpecError` naming the field.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from liquidnode.controller.errors import LiquidNodeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Folder of the presets shipped with liquidnode (``<env id>.toml`` and named presets).
PRESETS_DIR = Path(__file__).resolve().parent


class SpecError(LiquidNodeError):
    """A randomisation spec that cannot be read; the message names the file and the field."""


@dataclass(frozen=True)
class Range:
    """A uniform range ``[lo, hi]`` (``lo == hi``: a fixed value)."""

    lo: float
    hi: float

    def sample(self, rng: np.random.Generator) -> float:
        """One draw from ``U(lo, hi)`` (``lo`` without touching ``rng`` when fixed)."""
        return self.lo if self.lo == self.hi else float(rng.uniform(self.lo, self.hi))

    @property
    def active(self) -> bool:
        """True unless the range is the single value 0 (for offsets) — see :meth:`is_fixed`."""
        return not (self.lo == 0.0 and self.hi == 0.0)

    def is_fixed(self, value: float) -> bool:
        """True when the range is exactly ``value``."""
        return self.lo == value and self.hi == value

    def to_json(self) -> float | list[float]:
        """A number when fixed, else ``[lo, hi]`` (the TOML form)."""
        return self.lo if self.lo == self.hi else [self.lo, self.hi]


ZERO = Range(0.0, 0.0)
ONE = Range(1.0, 1.0)


@dataclass(frozen=True)
class LatencySpec:
    """Actuation latency: how long the previous command keeps acting after a new one is sent.

    Attributes:
        ticks: latency in nominal control periods, drawn per episode (>= 0, may exceed 1).
        ms: further latency in milliseconds, drawn per episode (>= 0).
        jitter_ticks: each tick adds ``U(0, jitter_ticks)`` control periods (>= 0).
    """

    ticks: Range = ZERO
    ms: Range = ZERO
    jitter_ticks: float = 0.0


@dataclass(frozen=True)
class TimingSpec:
    """Control-period jitter.

    Attributes:
        dt_jitter: each tick's period is ``nominal * (1 + U(-dt_jitter, dt_jitter))``, in
            [0, 1); the true period is what the cell is fed.
    """

    dt_jitter: float = 0.0


@dataclass(frozen=True)
class ObservationSpec:
    """Observation noise and bias, as fractions of each channel's scale.

    Attributes:
        noise: std of the white noise added each tick, fraction of scale, drawn per episode.
        bias: half-width of each channel's constant bias, fraction of scale, drawn per episode
            (the bias itself is ``U(-b, b) * scale`` per channel).
        scale: each channel's scale in env units (``(obs_dim,)``), or None: the caller's.
    """

    noise: Range = ZERO
    bias: Range = ZERO
    scale: tuple[float, ...] | None = None


@dataclass(frozen=True)
class DynamicsSpec:
    """Multiplicative scaling of the model, drawn per episode (1 = nominal).

    Attributes:
        mass: every body's mass and rotational inertia.
        friction: every geom's sliding friction.
        damping: every DOF's joint damping.
        actuator_gain: every actuator's force per unit control (gain and bias parameters).
    """

    mass: Range = ONE
    friction: Range = ONE
    damping: Range = ONE
    actuator_gain: Range = ONE


@dataclass(frozen=True)
class PushSpec:
    """Random pushes: an external force on one body for ``duration_s``.

    Attributes:
        impulse: magnitude in N·s, drawn per push (0: no pushes).
        interval_s: simulated seconds from one push's start to the next, drawn per push (> 0).
        duration_s: length of a push, s (> 0).
        bodies: names of the bodies that may be pushed; empty: any body but the world.
    """

    impulse: Range = ZERO
    interval_s: Range = Range(1.0, 3.0)
    duration_s: float = 0.1
    bodies: tuple[str, ...] = ()


@dataclass(frozen=True)
class InitialStateSpec:
    """Wider (or narrower) random initial states than the environment's own reset.

    Attributes:
        spread: per episode, the reset state's offset from the model's reference state
            (``qpos - qpos_ref`` and ``qvel - qvel_ref``; Gymnasium: ``init_qpos``/``init_qvel``,
            MJCF plants: keyframe 0's state, else ``qpos0`` at rest) is multiplied by a factor
            drawn from this range (>= 0; 1 = the env's reset distribution unchanged). Used to
            practise recoveries from the rare large initial states of a nominal reset.
    """

    spread: Range = ONE


@dataclass(frozen=True)
class RandomizationSpec:
    """A whole randomisation spec (an empty one is the nominal plant).

    Attributes:
        name: where it came from (preset name or file path); informational.
        description: free text.
        latency, timing, observation, dynamics, push, initial_state: the parts, see their
            classes.
    """

    name: str = "nominal"
    description: str = ""
    latency: LatencySpec = field(default_factory=LatencySpec)
    timing: TimingSpec = field(default_factory=TimingSpec)
    observation: ObservationSpec = field(default_factory=ObservationSpec)
    dynamics: DynamicsSpec = field(default_factory=DynamicsSpec)
    push: PushSpec = field(default_factory=PushSpec)
    initial_state: InitialStateSpec = field(default_factory=InitialStateSpec)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, ranges as numbers or ``[lo, hi]`` (what provenance records)."""

        def conv(value: Any) -> Any:
            if isinstance(value, dict) and set(value) == {"lo", "hi"}:
                return value["lo"] if value["lo"] == value["hi"] else [value["lo"], value["hi"]]
            if isinstance(value, dict):
                return {k: conv(v) for k, v in value.items()}
            if isinstance(value, tuple):
                return list(value)
            return value

        return conv(asdict(self))

    @property
    def is_nominal(self) -> bool:
        """True when nothing is randomised."""
        lat, obs, dyn = self.latency, self.observation, self.dynamics
        return (
            not (lat.ticks.active or lat.ms.active or lat.jitter_ticks > 0)
            and self.timing.dt_jitter == 0.0
            and not (obs.noise.active or obs.bias.active)
            and all(getattr(dyn, f.name).is_fixed(1.0) for f in fields(DynamicsSpec))
            and not self.push.impulse.active
            and self.initial_state.spread.is_fixed(1.0)
        )


# ---------------------------------------------------------------------------- parsing


def _range(value: Any, where: str, *, low: float = -math.inf) -> Range:
    if isinstance(value, bool):
        raise SpecError(f"{where}: expected a number or [low, high], got {value!r}")
    if isinstance(value, (int, float)):
        lo = hi = float(value)
    elif (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        lo, hi = float(value[0]), float(value[1])
    else:
        raise SpecError(f"{where}: expected a number or [low, high], got {value!r}")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise SpecError(f"{where}: values must be finite, got {value!r}")
    if lo > hi:
        raise SpecError(f"{where}: low {lo:g} is above high {hi:g}")
    if lo < low:
        raise SpecError(f"{where}: must be >= {low:g}, got {value!r}")
    return Range(lo, hi)


def _number(value: Any, where: str, *, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{where}: expected a number, got {value!r}")
    if not (low <= float(value) < high or (high == math.inf and float(value) >= low)):
        raise SpecError(f"{where}: must be in [{low:g}, {high:g}), got {value!r}")
    return float(value)


def _table(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise SpecError(f"{where}{key}: expected a table [{key}], got {value!r}")
    return value


def _unknown(table: dict[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(table) - known)
    if extra:
        raise SpecError(f"{where}{extra[0]}: unknown field (known: {', '.join(sorted(known))})")


def spec_from_dict(raw: dict[str, Any], name: str = "inline") -> RandomizationSpec:
    """Build a spec from the TOML structure (a dict of tables).

    Raises:
        SpecError: unknown or malformed field; the message starts with ``name: field.path``.
    """
    w = f"{name}: "
    _unknown(raw, {f.name for f in fields(RandomizationSpec)} - {"name"}, w)
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise SpecError(f"{w}description: expected a string, got {description!r}")

    lat = _table(raw, "latency", w)
    _unknown(lat, {"ticks", "ms", "jitter_ticks"}, w + "latency.")
    latency = LatencySpec(
        ticks=_range(lat.get("ticks", 0.0), w + "latency.ticks", low=0.0),
        ms=_range(lat.get("ms", 0.0), w + "latency.ms", low=0.0),
        jitter_ticks=_number(lat.get("jitter_ticks", 0.0), w + "latency.jitter_ticks", low=0.0),
    )
    tim = _table(raw, "timing", w)
    _unknown(tim, {"dt_jitter"}, w + "timing.")
    timing = TimingSpec(
        dt_jitter=_number(tim.get("dt_jitter", 0.0), w + "timing.dt_jitter", low=0.0, high=1.0)
    )
    obs = _table(raw, "observation", w)
    _unknown(obs, {"noise", "bias", "scale"}, w + "observation.")
    scale = obs.get("scale")
    if scale is not None:
        if not isinstance(scale, list) or not scale:
            raise SpecError(f"{w}observation.scale: expected a list of numbers, got {scale!r}")
        scale = tuple(
            _number(v, f"{w}observation.scale[{i}]", low=0.0) for i, v in enumerate(scale)
        )
    observation = ObservationSpec(
        noise=_range(obs.get("noise", 0.0), w + "observation.noise", low=0.0),
        bias=_range(obs.get("bias", 0.0), w + "observation.bias", low=0.0),
        scale=scale,
    )
    dyn = _table(raw, "dynamics", w)
    _unknown(dyn, {f.name for f in fields(DynamicsSpec)}, w + "dynamics.")
    dynamics = DynamicsSpec(
        **{
            f.name: _range(dyn.get(f.name, 1.0), f"{w}dynamics.{f.name}", low=0.0)
            for f in fields(DynamicsSpec)
        }
    )
    if dynamics.mass.lo <= 0.0:
        raise SpecError(f"{w}dynamics.mass: scale must be > 0, got {dyn.get('mass')!r}")
    psh = _table(raw, "push", w)
    _unknown(psh, {"impulse", "interval_s", "duration_s", "bodies"}, w + "push.")
    bodies = psh.get("bodies", [])
    if not isinstance(bodies, list) or not all(isinstance(b, str) for b in bodies):
        raise SpecError(f"{w}push.bodies: expected a list of body names, got {bodies!r}")
    interval = _range(psh.get("interval_s", [1.0, 3.0]), w + "push.interval_s", low=0.0)
    if interval.lo <= 0.0:
        raise SpecError(f"{w}push.interval_s: must be > 0, got {psh.get('interval_s')!r}")
    duration = _number(psh.get("duration_s", 0.1), w + "push.duration_s", low=0.0)
    if duration <= 0.0:
        raise SpecError(f"{w}push.duration_s: must be > 0, got {duration!r}")
    push = PushSpec(
        impulse=_range(psh.get("impulse", 0.0), w + "push.impulse", low=0.0),
        interval_s=interval,
        duration_s=duration,
        bodies=tuple(bodies),
    )
    ini = _table(raw, "initial_state", w)
    _unknown(ini, {"spread"}, w + "initial_state.")
    initial_state = InitialStateSpec(
        spread=_range(ini.get("spread", 1.0), w + "initial_state.spread", low=0.0)
    )
    return RandomizationSpec(
        name=name,
        description=description,
        latency=latency,
        timing=timing,
        observation=observation,
        dynamics=dynamics,
        push=push,
        initial_state=initial_state,
    )


def spec_from_json(data: dict[str, Any]) -> RandomizationSpec:
    """Inverse of :meth:`RandomizationSpec.to_dict` (e.g. a policy file's provenance)."""
    raw = {k: v for k, v in data.items() if k != "name"}
    obs = dict(raw.get("observation", {}))
    if obs.get("scale") is None:
        obs.pop("scale", None)
    raw["observation"] = obs
    return spec_from_dict(raw, name=str(data.get("name", "inline")))


def preset_names() -> list[str]:
    """Names of the presets shipped in this folder (file stems)."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def load_spec(name_or_path: str | Path) -> RandomizationSpec:
    """A spec from a TOML file path, or a shipped preset's name (e.g. ``InvertedPendulum-v5``).

    Raises:
        SpecError: no such file or preset, invalid TOML, or a malformed field.
    """
    text = str(name_or_path)
    path = Path(text)
    if not path.is_file():
        preset = PRESETS_DIR / f"{text}.toml"
        if text.endswith(".toml") or not preset.is_file():
            raise SpecError(
                f"randomisation spec {text!r} is neither a file nor a shipped preset "
                f"(presets: {', '.join(preset_names())})"
            )
        path, label = preset, text
    else:
        label = text
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{label}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise SpecError(f"{label}: cannot read: {exc.strerror}") from None
    return spec_from_dict(raw, name=label)
