"""A robot's link imperfections in milliseconds, as a randomisation spec (for ``twin``).

``liquidnode twin --latency-ms A[:B] --jitter-ms J --noise F`` describes the link the way a
robot builder measures it: each command reaches the actuators ``U(A, B)`` ms after the
observation it answers (drawn per command; commands stay in order), the device's control
period varies by ``U(-J, J)`` ms per tick, and every observation channel carries white noise
of ``F`` times its standard deviation. :func:`link_spec` turns that into a
:class:`~liquidnode.sim.randomization.spec.RandomizationSpec` on top of an optional base spec.
"""

from __future__ import annotations

from dataclasses import replace

from liquidnode.sim.randomization.spec import (
    ObservationSpec,
    RandomizationSpec,
    Range,
    SpecError,
    TimingSpec,
    load_spec,
    preset_names,
)


def parse_latency_ms(text: str) -> tuple[float, float]:
    """``"A"`` or ``"A:B"`` (ms, 0 <= A <= B) -> ``(A, B)``.

    Raises:
        ValueError: malformed, negative or decreasing (the message says which).
    """
    parts = text.split(":")
    if len(parts) not in (1, 2):
        raise ValueError(f"expected MS or MIN:MAX in milliseconds, got {text!r}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"expected MS or MIN:MAX in milliseconds, got {text!r}") from None
    lo, hi = values[0], values[-1]
    if not (0.0 <= lo <= hi < float("inf")):
        raise ValueError(f"latency must be 0 <= MIN <= MAX ms, got {text!r}")
    return lo, hi


def channel_scales(env: str) -> tuple[float, ...] | None:
    """The observation channel scales of the shipped preset for ``env``, if it has one."""
    if env in preset_names():
        return load_spec(env).observation.scale
    return None


def link_spec(
    control_period_s: float,
    *,
    base: RandomizationSpec | None = None,
    latency_ms: tuple[float, float] | None = None,
    jitter_ms: float = 0.0,
    noise: float = 0.0,
    obs_scale: tuple[float, ...] | None = None,
) -> RandomizationSpec:
    """The spec for a link with these imperfections (replacing those parts of ``base``).

    Args:
        control_period_s: the nominal control period, s.
        base: a spec to start from (e.g. ``--randomize``); None: the nominal plant.
        latency_ms: ``(A, B)``: each command's latency is ``U(A, B)`` ms.
        jitter_ms: the control period varies by ``U(-J, J)`` ms (J below the period).
        noise: observation noise std, fraction of each channel's scale.
        obs_scale: channel scales for ``noise`` (else ``base``'s).

    Raises:
        SpecError: jitter not below the period, or noise without channel scales.
    """
    spec = base or RandomizationSpec(name="link")
    period_ms = control_period_s * 1000.0
    if latency_ms is not None:
        lo, hi = latency_ms
        spec = replace(
            spec,
            latency=replace(
                spec.latency,
                ms=Range(lo, lo),
                ticks=Range(0.0, 0.0),
                jitter_ticks=(hi - lo) / period_ms,
            ),
        )
    if jitter_ms:
        if not 0.0 <= jitter_ms < period_ms:
            raise SpecError(
                f"--jitter-ms {jitter_ms:g} must be below the control period {period_ms:g} ms"
            )
        spec = replace(spec, timing=TimingSpec(dt_jitter=jitter_ms / period_ms))
    if noise:
        scale = obs_scale or spec.observation.scale
        if scale is None:
            raise SpecError(
                "--noise needs each observation channel's scale: this environment has no "
                "shipped preset; pass --randomize FILE with observation.scale"
            )
        spec = replace(
            spec,
            observation=ObservationSpec(
                noise=Range(noise, noise), bias=spec.observation.bias, scale=tuple(scale)
            ),
        )
    return spec
