"""The runtime never imports torch (nor ray): load and run the shipped policy, and a random
policy of every cell type (liquid and baseline), in a clean interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import importlib, importlib.util, json, sys
import numpy as np
from liquidnode.controller.policy import Policy, random_policy
from liquidnode.controller.policy_file import read_policy_file

policy = Policy.load(sys.argv[1])
for _ in range(5):
    action = policy.step(np.zeros(policy.obs_dim), 0.04)
for kind in ("cfc", "wired_cfc", "ltc", "ltc_fc", "lstm", "gru", "mlp"):
    random_policy(3, 2, cell=kind, units=8).step(np.zeros(3), 0.01)
imported = []
RUNTIME = ("controller", "controller.loop", "controller.safety", "controller.timing", "cli",
           "controller.logs", "sim", "sim.mujoco_plant", "sim.video", "firmware_bridge",
           "firmware_bridge.serial_plant", "firmware_bridge.twin", "sim.episodes",
           "sim.stress")
for name in ("liquidnode." + short for short in RUNTIME):
    try:
        found = importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        found = False
    if found:
        importlib.import_module(name)
        imported.append(name)
print(json.dumps({"torch": "torch" in sys.modules, "ncps": "ncps" in sys.modules,
                  "ray": "ray" in sys.modules,
                  "imported": imported, "action": action.tolist()}))
"""


def test_runtime_does_not_import_torch():
    policy = ROOT / "policies" / "InvertedPendulum-v5-cfc.safetensors"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(policy)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "liquidnode.controller" in result["imported"]
    assert len(result["action"]) == 1
    assert result["torch"] is False, f"torch was imported by {result['imported']}"
    assert result["ncps"] is False
    assert result["ray"] is False, f"ray was imported by {result['imported']}"
