"""The policies shipped with liquidnode (package data), found without the working directory.

``default_policy_path()`` is the default policy (InvertedPendulum-v5, CfC);
``default_policy_path("HalfCheetah-v5")`` that environment's shipped CfC policy;
``shipped_policies()`` every shipped file with the model card next to it.
"""

from __future__ import annotations

from pathlib import Path

#: File name of the shipped default policy inside this package.
DEFAULT_POLICY = "InvertedPendulum-v5-cfc.safetensors"

#: The folder holding the shipped policy files and their model card (README.md).
POLICY_DIR = Path(__file__).resolve().parent


def shipped_policies() -> list[Path]:
    """Every shipped policy file, sorted by name."""
    return sorted(POLICY_DIR.glob("*.safetensors"))


def default_policy_path(env: str | None = None) -> str:
    """Path of the shipped policy for ``env`` (a file of this package).

    ``env`` None: the default policy (InvertedPendulum-v5). Otherwise the shipped
    ``policies/<env>-cfc.safetensors``; an env with no shipped policy raises.

    Raises:
        LiquidNodeError: no shipped policy for ``env``.
    """
    from liquidnode.controller.errors import LiquidNodeError

    if env is None:
        return str(POLICY_DIR / DEFAULT_POLICY)
    path = POLICY_DIR / f"{env}-cfc.safetensors"
    if not path.is_file():
        names = [p.name for p in shipped_policies()]
        raise LiquidNodeError(
            f"no shipped policy for environment {env!r}; pass --policy PATH (shipped: "
            f"{', '.join(names)})"
        )
    return str(path)
