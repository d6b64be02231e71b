"""On-device inference on the board's own sensors: the InvertedPendulum NCP policy (q15)
inside the ATmega328P firmware in simavr, its ADC inputs held at fixed voltages, supervised
by ``liquidnode supervise`` (arm, PING per tick, MCAP log, DISARM on exit).

Skips (or fails under LIQUIDNODE_REQUIRE_ALL=1) without avr-gcc, avr-libc or simavr.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from liquidnode.controller.errors import LinkError
from liquidnode.controller.export.host_build import CompiledPolicy
from liquidnode.firmware_bridge.handshake import handshake
from liquidnode.firmware_bridge.link import SerialLink
from liquidnode.firmware_bridge.onboard import OnboardDevice, OnboardPolicy, check_onboard_device
from liquidnode.firmware_bridge.onboard_build import PolicyFirmware, build_policy_firmware
from liquidnode.firmware_bridge.protocol import DeviceState, PolicyInfo, state_digest
from liquidnode.firmware_bridge.simavr_board import SimavrBoard
from liquidnode.policies import POLICY_DIR
from tests.firmware_bridge.firmware_session import require_simavr, require_tools

CLI = [sys.executable, "-m", "liquidnode"]
POLICY = POLICY_DIR / "InvertedPendulum-v5-ncp.safetensors"
#: ADC inputs in mV: 2500 mV is mid-scale (obs 0 on the board's scaling), the others off it.
ADC_MV = (2500, 2600, 2400, 2700)


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> PolicyFirmware:
    require_tools("make", "avr-gcc", "avr-objcopy", "avr-size", "cc")
    require_simavr()
    return build_policy_firmware(POLICY, tmp_path_factory.mktemp("onboard-fw"), precision="q15")


def _adc_args() -> tuple[str, ...]:
    return tuple(a for ch, mv in enumerate(ADC_MV) for a in ("--adc", f"{ch}={mv}"))


def test_the_device_steps_its_policy_on_its_sensors(firmware: PolicyFirmware) -> None:
    with SimavrBoard(firmware.elf, _adc_args()) as board:
        link = SerialLink(board.port)
        link.open()
        try:
            info = handshake(link, 5.0)
            assert info.policy == PolicyInfo(1, 0, 16, 16_000_000, "InvertedPendulum-v5 wired_cfc")
            check_onboard_device(info, board.port)
            device = OnboardDevice(link, info)
            policy = OnboardPolicy(device)
            first = device.reset()
            steps = [device.last]
            for _ in range(9):
                device.act(policy.step(first.values, 0.04))
                device.observe()
                steps.append(device.last)
        finally:
            link.close()
    # the board's sensors, scaled as in the board file (10-bit ADC of 5 V: 2 m, 2 rad, 20 m/s...)
    raw = np.floor(np.asarray(ADC_MV) / 5000 * 1024)
    want_obs = raw * np.array([2, 2, 20, 20]) / 1024 - np.array([1, 1, 10, 10])
    host = CompiledPolicy(firmware.export_dir, "policy", 4, 1, 16)
    for t in steps:
        assert t is not None and t.state == DeviceState.ARMED and t.step_cycles > 30_000
        lsb = np.array([2, 2, 20, 20]) / 1024  # one ADC count (the emulator rounds down)
        assert np.all(np.abs(np.asarray(t.obs) - want_obs) <= 1.01 * lsb), t.obs
        a = np.asarray(host.step(np.asarray(t.obs, np.float32), 0.04), np.float32)
        assert a.tobytes() == np.asarray(t.policy_action, np.float32).tobytes()
        assert state_digest(host.state) == t.state_digest


def test_a_hil_build_is_refused_by_supervise(firmware: PolicyFirmware) -> None:
    info = None
    with SimavrBoard(firmware.elf, _adc_args()) as board:
        link = SerialLink(board.port)
        link.open()
        try:
            info = handshake(link, 5.0)
        finally:
            link.close()
    hil = type(info)(info.identity, info.channels, info.spec, info.status,
                     PolicyInfo(1, 1, 16, 16_000_000, "x"))  # fmt: skip
    with pytest.raises(LinkError, match="HIL build"):
        check_onboard_device(hil, "/dev/ttyX")


def test_supervise_cli_logs_the_device_run(firmware: PolicyFirmware, tmp_path: Path) -> None:
    log = tmp_path / "run.mcap"
    with SimavrBoard(firmware.elf, _adc_args()) as board:
        proc = subprocess.run(
            [
                *CLI,
                "supervise",
                "--port",
                board.port,
                "--max-ticks",
                "15",
                "--json",
                "--log",
                str(log),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["episodes"][0]["ticks"] == 15 and out["episodes"][0]["return"] is None
    d = out["device"]
    assert d["precision"] == "q15" and 30_000 < d["cycles_per_step"]["p50"] < 640_000
    logs = subprocess.run(
        [*CLI, "logs", "--json", str(log)], capture_output=True, text=True, timeout=60, check=False
    )
    assert logs.returncode == 0, logs.stderr
    summary = json.loads(logs.stdout)
    assert (summary["command"], summary["ticks"]) == ("supervise", 15)


def test_a_standalone_build_arms_itself_and_steps(tmp_path: Path) -> None:
    require_tools("make", "avr-gcc", "avr-objcopy", "avr-size", "cc")
    require_simavr()
    fw = build_policy_firmware(POLICY, tmp_path, precision="q15", standalone=True)
    with SimavrBoard(fw.elf, _adc_args()) as board:
        link = SerialLink(board.port)
        link.open()
        try:
            info = handshake(link, 5.0)  # no ARM from the host
            assert info.status is not None and info.status.state == DeviceState.ARMED
            device = OnboardDevice(link, info)
            t = None
            for _ in range(5):
                device.observe()
                t = device.last
            assert t is not None and t.state == DeviceState.ARMED and t.step_cycles > 30_000
        finally:
            link.close()


def test_a_policy_that_does_not_fit_the_board_stops_the_c_build(tmp_path: Path) -> None:
    """The firmware's static check: the double pendulum's board (9 observations) with the
    pendulum's 4-observation policy does not compile, and the error names the check."""
    require_tools("make", "avr-gcc")
    from liquidnode.controller.export import export_policy
    from liquidnode.controller.policy import Policy
    from liquidnode.firmware_bridge.board_codegen import generate
    from liquidnode.firmware_bridge.board_file import load_board
    from liquidnode.firmware_bridge.onboard_build import ENV_BOARDS, FIRMWARE_DIR

    export_policy(Policy.load(POLICY), tmp_path / "policy", "c", "q15", prefix="policy")
    generate(load_board(ENV_BOARDS["InvertedDoublePendulum-v5"]), tmp_path / "board")
    proc = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(FIRMWARE_DIR),
            "avr",
            f"BOARD_DIR={tmp_path / 'board'}",
            f"POLICY_DIR={tmp_path / 'policy'}",
            f"BUILD={tmp_path / 'build'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode != 0
    assert "policy_observations_equal_the_boards" in proc.stderr


def test_an_export_for_another_period_stops_the_c_build(tmp_path: Path) -> None:
    """An export specialised for 40 ms (its time gate folded for it) built into a firmware
    that steps every 20 ms does not compile, and the error says why."""
    require_tools("make", "avr-gcc")
    from liquidnode.controller.export import export_policy
    from liquidnode.controller.policy import Policy
    from liquidnode.firmware_bridge.board_codegen import generate
    from liquidnode.firmware_bridge.board_file import load_board
    from liquidnode.firmware_bridge.onboard_build import ENV_BOARDS, FIRMWARE_DIR

    policy = Policy.load(POLICY)
    export_policy(policy, tmp_path / "policy", "c", "q15", prefix="policy", fixed_dt=0.04)
    generate(load_board(ENV_BOARDS["InvertedPendulum-v5"]), tmp_path / "board")
    make = ["make", "--no-print-directory", "-C", str(FIRMWARE_DIR), "avr"]
    make += [f"BOARD_DIR={tmp_path / 'board'}", f"POLICY_DIR={tmp_path / 'policy'}"]
    for period, builds in (("20000u", False), ("40000u", True)):
        proc = subprocess.run(
            [*make, f"BUILD={tmp_path / period}", f"CONTROL_PERIOD_US={period}"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert (proc.returncode == 0) == builds, proc.stderr[-2000:]
        assert builds or "exported for another control period" in proc.stderr
