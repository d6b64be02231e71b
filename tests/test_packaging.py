"""What an install puts in site-packages: one import package, ``liquidnode``, with its data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OLD_TOP_LEVEL = ("controller", "sim", "firmware_bridge", "benchmarks", "policies")


@pytest.mark.parametrize("name", OLD_TOP_LEVEL)
def test_only_liquidnode_is_importable(tmp_path, name):
    """Outside the checkout, the folders are reachable only under ``liquidnode``."""
    code = (
        "import importlib, importlib.util, sys\n"
        f"assert importlib.util.find_spec({name!r}) is None, {name!r}\n"
        f"importlib.import_module('liquidnode.{name}')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


def test_shipped_policies_found_from_any_directory(tmp_path):
    code = (
        "from liquidnode.policies import default_policy_path, shipped_policies\n"
        "from liquidnode import Policy\n"
        "p = Policy.load(default_policy_path())\n"
        "print(len(shipped_policies()), p.metadata.env_id)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    count, env = proc.stdout.split()
    assert int(count) >= 1 and env == "InvertedPendulum-v5"


@pytest.mark.slow
def test_wheel_holds_one_package_and_its_data(tmp_path):
    """The built wheel installs ``liquidnode/`` only, with policies, models and C sources."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("liquidnode-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"liquidnode"}
    for expected in (
        "liquidnode/policies/InvertedPendulum-v5-cfc.safetensors",
        "liquidnode/policies/README.md",
        "liquidnode/sim/models/pendulum.xml",
        "liquidnode/controller/cells/cfc_kernel.c",
        "liquidnode/firmware_bridge/firmware/device.h",
        "liquidnode/cli/__init__.py",
        "liquidnode/py.typed",
    ):
        assert expected in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "liquidnode = liquidnode.cli:main" in text
    assert "mujoco = liquidnode.sim" in text
