"""Hardware in the loop on the emulated ATmega328P: the shipped InvertedPendulum NCP policy,
exported in q15, runs inside the firmware (``make avr POLICY_DIR=... HIL=1``) in simavr;
MuJoCo runs here. simavr runs at about real time (25 Hz control), so episodes are short.

Skips (or fails under LIQUIDNODE_REQUIRE_ALL=1) without avr-gcc, avr-libc or simavr.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from liquidnode.controller.errors import LinkError
from liquidnode.controller.export.host_build import CompiledPolicy
from liquidnode.controller.loop import ControlLoop, LoopConfig
from liquidnode.firmware_bridge.handshake import DeviceInfo, handshake
from liquidnode.firmware_bridge.hil import DevicePolicy, HilPlant, check_hil_device
from liquidnode.firmware_bridge.link import SerialLink
from liquidnode.firmware_bridge.onboard_build import PolicyFirmware, build_policy_firmware
from liquidnode.firmware_bridge.protocol import (
    Command,
    DeviceState,
    Disarm,
    Fault,
    Identity,
    Message,
    PolicyInfo,
    Sensors,
    Status,
    Telemetry,
    decode_telemetry,
    state_digest,
)
from liquidnode.firmware_bridge.simavr_board import SimavrBoard
from liquidnode.policies import POLICY_DIR
from liquidnode.sim import make_plant
from tests.firmware_bridge.firmware_session import FIRMWARE_DIR, require_simavr, require_tools

CLI = [sys.executable, "-m", "liquidnode"]
POLICY = POLICY_DIR / "InvertedPendulum-v5-ncp.safetensors"
TICKS = 60  #: HIL ticks per test episode (2.4 s of control at 25 Hz)
CLOCK_HZ = 16_000_000
PERIOD_CYCLES = 40_000 * 16  #: one 40 ms control period at 16 MHz


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> PolicyFirmware:
    require_tools("make", "avr-gcc", "avr-objcopy", "avr-size", "cc")
    require_simavr()
    return build_policy_firmware(
        POLICY, tmp_path_factory.mktemp("hil-fw"), precision="q15", hil=True
    )


@pytest.fixture
def device(firmware: PolicyFirmware) -> Iterator[tuple[SerialLink, DeviceInfo]]:
    with SimavrBoard(firmware.elf) as board:
        link = SerialLink(board.port)
        link.open()
        try:
            yield link, handshake(link, 5.0)
        finally:
            link.close()


def _next(link: SerialLink, kind: type, timeout_s: float = 2.0) -> Message:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        item = link.recv(0.05)
        if item is not None and isinstance(item.frame.message, kind):
            if kind is Telemetry:
                return decode_telemetry(item.frame.payload, 4)
            return item.frame.message
    raise AssertionError(f"no {kind.__name__} within {timeout_s} s")


def test_the_policy_firmware_fits_the_atmega328p(firmware: PolicyFirmware) -> None:
    assert 0 < firmware.flash_bytes <= 32 * 1024 - 512  # Optiboot keeps the last 512 B
    assert 0 < firmware.ram_bytes <= 2048 - 400  # room for the stack
    assert firmware.control_period_us == 40_000


def test_hil_balances_and_the_device_equals_the_host_q15_build_bit_for_bit(
    firmware: PolicyFirmware, device: tuple[SerialLink, DeviceInfo]
) -> None:
    link, info = device
    assert info.policy == PolicyInfo(1, 1, 16, CLOCK_HZ, "InvertedPendulum-v5 wired_cfc")
    check_hil_device(info, "simavr")
    dev = DevicePolicy(link, info)
    loop = ControlLoop(
        HilPlant(make_plant("InvertedPendulum-v5"), dev),
        dev,
        LoopConfig(realtime=False, max_ticks=TICKS),
    )
    summary = loop.run(episodes=1, seed=3)
    ep = summary.episodes[0]
    assert (ep.ticks, ep.terminated, ep.faults) == (TICKS, False, 0)  # the pole stayed up
    assert ep.return_ == TICKS
    steps = dev.telemetry
    assert len(steps) == TICKS and dev.stale == 0
    assert all(t.state == DeviceState.ARMED for t in steps)
    # The same observations through the host build of the same export: identical bits.
    host = CompiledPolicy(firmware.export_dir, "policy", 4, 1, 16)
    host.reset()
    for k, t in enumerate(steps):
        want = np.asarray(host.step(np.asarray(t.obs, np.float32), 0.04), np.float32)
        assert want.tobytes() == np.asarray(t.policy_action, np.float32).tobytes(), k
        assert state_digest(host.state) == t.state_digest, k
        clamped = np.clip(np.asarray(t.policy_action, np.float32), -3, 3)
        assert clamped.tobytes() == np.asarray(t.applied, np.float32).tobytes(), k
    # The hidden state moved (a digest of zeros would repeat).
    assert len({t.state_digest for t in steps}) > TICKS // 2
    # Timer1 cycles of the step: the measured ~38.0k of `scripts/avr_step_cycles.py
    # --fixed-dt` (the firmware's export is specialised for its period), in period.
    cycles = np.asarray([t.step_cycles for t in steps])
    assert np.all(cycles > 30_000) and np.all(cycles < PERIOD_CYCLES // 4)
    stats = dev.stats()
    assert stats["cycles_per_step"]["n"] == TICKS
    assert stats["step_us_at_clock"] == pytest.approx(np.median(cycles) / 16)


def test_a_policy_build_drops_commands_disarms_and_refuses_bad_sensors(
    device: tuple[SerialLink, DeviceInfo],
) -> None:
    link, info = device
    dev = DevicePolicy(link, info)
    dev.reset()  # ARMED
    link.send(Command((2.5,)))  # the policy drives the actuators: dropped, counted
    link.send(Disarm())
    status = _next(link, Status)
    while status.state != DeviceState.DISARMED:
        status = _next(link, Status)
    assert status.dropped_frames >= 1
    seq = link.send(Sensors((0.0, 0.05, 0.0, 0.0)))
    t = _next(link, Telemetry)
    while t.sensor_seq != seq:
        t = _next(link, Telemetry)
    # not armed: no step, the safe action applied
    assert (t.state, t.step_cycles, t.applied) == (DeviceState.DISARMED, 0, (0.0,))
    link.send(Sensors((math.nan, 0.0, 0.0, 0.0)))
    status = _next(link, Status)
    while status.fault != Fault.BAD_COMMAND:
        status = _next(link, Status)
    assert status.state == DeviceState.DISARMED


def test_the_device_watchdog_trips_without_sensors(device: tuple[SerialLink, DeviceInfo]) -> None:
    link, info = device
    dev = DevicePolicy(link, info)
    dev.reset()
    status = _next(link, Status, timeout_s=3.0)  # 200 ms without SENSORS or PING
    while status.state == DeviceState.ARMED:
        status = _next(link, Status, timeout_s=3.0)
    assert (status.state, status.fault) == (DeviceState.WATCHDOG, Fault.WATCHDOG)


def test_an_io_device_is_refused_for_hil() -> None:
    ident = Identity(1, 4, 1, 40_000, 200, "io board")
    plain = DeviceInfo(ident, (), make_plant("InvertedPendulum-v5").spec)
    with pytest.raises(LinkError, match="runs no policy"):
        check_hil_device(plain, "/dev/ttyX")
    own = DeviceInfo(ident, (), plain.spec, policy=PolicyInfo(1, 0, 16, CLOCK_HZ, "p"))
    with pytest.raises(LinkError, match="reads its own sensors"):
        check_hil_device(own, "/dev/ttyX")


def test_hil_cli_simavr_json(tmp_path: Path, firmware: PolicyFirmware) -> None:
    proc = subprocess.run(
        [
            *CLI,
            "hil",
            "--env",
            "InvertedPendulum-v5",
            "--simavr",
            "--policy",
            str(POLICY),
            "--max-ticks",
            "40",
            "--json",
            "--log",
            str(tmp_path / "hil.mcap"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["episodes"][0]["ticks"] == 40 and not out["episodes"][0]["terminated"]
    d = out["device"]
    assert (d["target"], d["precision"], d["clock_hz"]) == ("atmega328p (simavr)", "q15", CLOCK_HZ)
    assert 30_000 < d["cycles_per_step"]["p50"] <= d["cycles_per_step"]["max"] < PERIOD_CYCLES
    assert d["step_us_at_clock"] == pytest.approx(d["cycles_per_step"]["p50"] / 16)
    assert (d["flash_bytes"], d["ram_bytes"]) == (firmware.flash_bytes, firmware.ram_bytes)
    assert (d["checked"], d["action_mismatches"], d["digest_mismatches"]) == (True, 0, 0)
    logs = subprocess.run(
        [*CLI, "logs", "--json", str(tmp_path / "hil.mcap")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert logs.returncode == 0, logs.stderr
    log = json.loads(logs.stdout)
    assert (log["command"], log["ticks"], log["complete"]) == ("hil", 40, True)
    assert [(e["ticks"], e["return"]) for e in log["episodes"]] == [(40, 40.0)]


def test_c_policy_frames_test_fails_on_a_wrong_vector(tmp_path: Path) -> None:
    """test_policy_frames is not a rubber stamp: one altered digest makes it fail."""
    require_tools("make", "cc")
    build = tmp_path / "build"
    proc = subprocess.run(
        ["make", "--no-print-directory", "-C", str(FIRMWARE_DIR), f"BUILD={build}", "test-host"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    bad = tmp_path / "bad.txt"
    bad.write_text("digest 0000003f 1\n")
    run = subprocess.run(
        [str(build / "test_policy_frames"), str(bad)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 1 and "FAIL" in run.stdout and "digest of 0000003f" in run.stdout
