"""Errors that liquidnode raises for users.

Every error a user can cause (bad file, bad argument, unplugged cable) derives from
:class:`LiquidNodeError`. The CLI prints such errors as one line (``error: ...``) and exits
with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class LiquidNodeError(Exception):
    """Base class of every user-facing liquidnode error."""


class PolicyFileError(LiquidNodeError):
    """A policy file is missing, truncated, malformed, or does not match what it claims."""


class SpaceMismatchError(LiquidNodeError):
    """A policy's observation/action sizes do not match the plant or device it is run on."""


class TimingError(LiquidNodeError, ValueError):
    """Inconsistent timing: control period vs. simulation step vs. firmware period."""


class PlantError(LiquidNodeError):
    """A plant (simulation or device) failed or diverged."""


class LinkError(PlantError):
    """The serial link to a device failed: no answer, port vanished, incompatible protocol."""


class LogFileError(LiquidNodeError):
    """An episode log is missing, truncated, of the wrong format, or from an unknown version."""
