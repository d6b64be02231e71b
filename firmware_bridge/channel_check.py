"""Does a policy fit the device it is about to drive? Units and action ranges, per channel.

The handshake already refuses other vector sizes (:class:`SerialPlant`). A policy trained in
simulation also records the unit of every observation and action channel and the action
range it was trained for (``observation_space.units``, ``action_space.low/high/units`` in its
metadata). :func:`check_policy_fits_device` compares them with what the device announced and
raises :class:`~controller.errors.SpaceMismatchError` naming the first channel that differs:
a gyro in deg/s where the policy learned rad/s, or a motor channel that takes [-1, 1] where
the policy learned torques in [-2, 2] N·m, would otherwise run silently wrong. Units are
compared as they travel on the wire (:func:`~firmware_bridge.protocol.ascii_text`: ``N·m`` is
``N*m``). What the policy file does not record (an untrained placeholder) is not checked.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from liquidnode.controller.errors import SpaceMismatchError
from liquidnode.controller.plant import PlantSpec
from liquidnode.firmware_bridge.protocol import ascii_text


def _f32(x: float) -> float:
    return float(np.float32(x))


def check_policy_fits_device(metadata: Any, spec: PlantSpec, device: str) -> None:
    """Compare the policy's recorded units and action range with the device's channels.

    Args:
        metadata: the policy's :class:`~controller.policy_file.PolicyMetadata`.
        spec: the device's spec from the handshake (names, units, action limits).
        device: how to name the device in the message (its id and port).

    Raises:
        SpaceMismatchError: a unit or an action range differs; the message names the channel
            on both sides.
    """
    for kind, space, names, units in (
        ("observation", metadata.observation_space, spec.obs_names, spec.obs_units),
        ("action", metadata.action_space, spec.act_names, spec.act_units),
    ):
        space = space or {}
        p_units = space.get("units")
        p_names = space.get("names") or [None] * len(names)
        if not p_units:
            continue
        for i, (pu, pn, du, dn) in enumerate(zip(p_units, p_names, units, names, strict=False)):
            if ascii_text(pu) != ascii_text(du):
                theirs = f" ({pn!r})" if pn else ""
                raise SpaceMismatchError(
                    f"{kind} channel {i}: the policy was trained on {ascii_text(pu)!r}{theirs} "
                    f"but {device} announces {dn!r} in {ascii_text(du)!r}; fix the board "
                    "file's unit/scale or train on a model with this channel's unit"
                )
    low, high = metadata.space_bounds("action")
    p_names = (metadata.action_space or {}).get("names") or [None] * spec.act_dim
    for i in range(min(len(low), spec.act_dim)):
        lo, hi = low[i], high[i]
        if not (math.isfinite(lo) and math.isfinite(hi)):
            continue
        dlo, dhi = _f32(spec.action_low[i]), _f32(spec.action_high[i])
        if not (
            math.isclose(_f32(lo), dlo, abs_tol=1e-6) and math.isclose(_f32(hi), dhi, abs_tol=1e-6)
        ):
            theirs = f" ({p_names[i]!r})" if p_names[i] else ""
            raise SpaceMismatchError(
                f"action channel {i}: the policy was trained for [{lo:g}, {hi:g}]{theirs} but "
                f"{device}'s {spec.act_names[i]!r} takes [{dlo:g}, {dhi:g}] "
                f"{ascii_text(spec.act_units[i])}; make the board file's range match the model's "
                "ctrlrange"
            )
