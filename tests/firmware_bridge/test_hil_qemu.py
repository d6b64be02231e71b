"""Hardware in the loop on an emulated Cortex-M4F: the shipped InvertedPendulum NCP policy in
float32 inside the ``make cm4`` firmware on QEMU's mps2-an386 machine (``-icount shift=0``:
the step's count is instructions); MuJoCo runs here. Short episodes: the emulated board keeps
about real time (25 Hz control) or slower.

Skips (or fails under LIQUIDNODE_REQUIRE_ALL=1) without arm-none-eabi-gcc or qemu-system-arm.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from liquidnode.controller.export.host_build import CompiledPolicy
from liquidnode.controller.loop import ControlLoop, LoopConfig
from liquidnode.firmware_bridge.handshake import handshake
from liquidnode.firmware_bridge.hil import DevicePolicy, HilPlant, check_hil_device
from liquidnode.firmware_bridge.link import SerialLink
from liquidnode.firmware_bridge.onboard_build import PolicyFirmware, build_policy_firmware
from liquidnode.firmware_bridge.protocol import PolicyInfo, state_digest
from liquidnode.firmware_bridge.qemu_board import QemuBoard
from liquidnode.policies import POLICY_DIR
from liquidnode.sim import make_plant
from tests.firmware_bridge.firmware_session import require_tools

CLI = [sys.executable, "-m", "liquidnode"]
POLICY = POLICY_DIR / "InvertedPendulum-v5-ncp.safetensors"
TICKS = 30


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> PolicyFirmware:
    require_tools("make", "arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm", "cc")
    return build_policy_firmware(
        POLICY, tmp_path_factory.mktemp("cm4-fw"), precision="f32", hil=True, target="cm4"
    )


def test_cortex_m4f_hil_balances_and_equals_the_host_f32_build(firmware: PolicyFirmware) -> None:
    assert firmware.target == "cm4" and firmware.hex is None
    assert 0 < firmware.flash_bytes < 64 * 1024 and 0 < firmware.ram_bytes < 8 * 1024
    with QemuBoard(firmware.elf) as board:
        link = SerialLink(board.port)
        link.open()
        try:
            info = handshake(link, 10.0)
            assert info.policy == PolicyInfo(0, 1, 16, 168_000_000, "InvertedPendulum-v5 wired_cfc")
            check_hil_device(info, board.port)
            dev = DevicePolicy(link, info)
            loop = ControlLoop(
                HilPlant(make_plant("InvertedPendulum-v5"), dev),
                dev,
                LoopConfig(realtime=False, max_ticks=TICKS),
            )
            summary = loop.run(episodes=1, seed=5)
        finally:
            link.close()
    ep = summary.episodes[0]
    assert (ep.ticks, ep.terminated, ep.faults, ep.return_) == (TICKS, False, 0, TICKS)
    host = CompiledPolicy(firmware.export_dir, "policy", 4, 1, 16)
    host.reset()
    assert len(dev.telemetry) == TICKS
    for k, t in enumerate(dev.telemetry):
        want = np.asarray(host.step(np.asarray(t.obs, np.float32), 0.04), np.float32)
        assert want.tobytes() == np.asarray(t.policy_action, np.float32).tobytes(), k
        assert state_digest(host.state) == t.state_digest, k
    # instructions per step (40-instruction resolution): thousands, far below a 40 ms period
    cycles = np.asarray(dev.cycles)
    assert np.all(cycles >= 1000) and np.all(cycles < 100_000) and np.all(cycles % 40 == 0)


def test_hil_cli_qemu_json() -> None:
    require_tools("make", "arm-none-eabi-gcc", "qemu-system-arm", "cc")
    proc = subprocess.run(
        [
            *CLI,
            "hil",
            "--env",
            "InvertedPendulum-v5",
            "--qemu",
            "--max-ticks",
            "20",
            "--json",
            "--no-log",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["episodes"][0]["ticks"] == 20 and not out["episodes"][0]["terminated"]
    d = out["device"]
    assert d["target"].startswith("cortex-m4f") and d["precision"] == "f32"
    assert d["clock_hz"] == 168_000_000 and d["step_us_at_clock"] < 100  # the target
    assert (d["action_mismatches"], d["digest_mismatches"]) == (0, 0)
