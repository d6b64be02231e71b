"""Domain randomisation of the MuJoCo plants and training environments.

- :mod:`.spec`: the declarative spec (typed dataclasses, TOML files, presets in this folder:
  ``<env id>.toml`` per shipped environment), :func:`load_spec` by preset name or path.
- :mod:`.perturbed_physics`: :class:`PerturbedPhysics`, the spec applied to one MuJoCo
  model/data at the physics step (latency queue, dt jitter, dynamics scaling, pushes,
  observation noise and bias); shared by the plants and the Gymnasium wrapper.
- :mod:`.gym_wrapper`: :class:`RandomizedEnv`, the Gymnasium wrapper used for training.
"""

from __future__ import annotations

from liquidnode.sim.randomization.spec import (
    PRESETS_DIR,
    RandomizationSpec,
    SpecError,
    load_spec,
    preset_names,
    spec_from_dict,
    spec_from_json,
)

__all__ = [
    "PRESETS_DIR",
    "RandomizationSpec",
    "SpecError",
    "load_spec",
    "preset_names",
    "spec_from_dict",
    "spec_from_json",
]
