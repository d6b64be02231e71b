"""The C reference firmware built for the host: unit tests and protocol behaviour.

``make test-host`` checks the C COBS/CRC/frame code against
firmware_bridge/test_vectors.json (converted by firmware/vectors_to_txt.py to line records
the C test reads) and fuzzes the C receiver. The host-native firmware (``fw_host``: same
portable core as the AVR build, POSIX HAL, simulated plant) then runs the shared behaviour
tests of :class:`DeviceBehaviour` over a pty.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from liquidnode.firmware_bridge.framing import Deframer
from liquidnode.firmware_bridge.protocol import Arm, Hello, Identity, Status, encode_wire
from tests.firmware_bridge.firmware_session import (
    BUILD_DIR,
    FAULT_ESTOP_LATCHED,
    FAULT_NONE,
    STATE_DISARMED,
    STATE_ESTOP,
    VECTORS_JSON,
    DeviceBehaviour,
    DeviceSession,
    build_firmware,
    require_tools,
)

FW_HOST = BUILD_DIR / "fw_host"


@pytest.fixture(scope="module")
def host_build() -> Path:
    """Build fw_host and the C unit test; skip without make/cc."""
    require_tools("make", "cc")
    build_firmware("host", "build/test_host")
    return FW_HOST


def test_c_codec_matches_the_shared_test_vectors(host_build: Path) -> None:
    """make test-host: the C COBS/CRC/frame code against firmware_bridge/test_vectors.json."""
    vectors = json.loads(VECTORS_JSON.read_text())
    keys = ("crc16", "cobs", "frames", "telemetry_frames", "invalid", "streams")
    n_records = sum(len(vectors[k]) for k in keys)
    (BUILD_DIR / "vectors.txt").unlink(missing_ok=True)  # regenerate from the JSON
    (BUILD_DIR / "policy_vectors.txt").unlink(missing_ok=True)
    out = build_firmware("test-host")
    assert f"vectors.txt: {n_records} records" in out, out
    # the on-device inference payloads (policy_frames.c): POLICY, SENSORS, TELEMETRY, digests
    n_policy = sum(1 for f in vectors["frames"] if f["type"] in ("POLICY", "SENSORS"))
    n_policy += len(vectors["telemetry_frames"]) + len(vectors["state_digests"])
    assert f"policy frames: {n_policy} records" in out and "checks, 0 failures" in out, out
    assert out.strip().endswith(", 0 failures"), out
    assert "fuzz: 20000 frames altered in 1..3 bytes: 0 accepted, 0 intact frames lost" in out
    assert len(vectors["frames"]) >= 10 and len(vectors["invalid"]) >= 5


def test_c_unit_test_detects_a_wrong_vector(host_build: Path, tmp_path: Path) -> None:
    """The C test is not a rubber stamp: one altered CRC vector makes it fail."""
    vec_file = tmp_path / "bad.txt"
    vec_file.write_text("crc 313233343536373839 10674\n")  # check value is 10673
    proc = subprocess.run(
        [str(BUILD_DIR / "test_host"), str(vec_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "1 failures" in proc.stdout


def test_stdio_mode_answers_hello(host_build: Path) -> None:
    """Without --pty the firmware speaks on stdin/stdout (pipes here)."""
    proc = subprocess.Popen(
        [str(FW_HOST)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(encode_wire(Hello(1), 0))
        proc.stdin.flush()
        deframer = Deframer()
        identity = None
        end = time.monotonic() + 5
        while identity is None and time.monotonic() < end:
            chunk = proc.stdout.read1(4096)
            assert chunk, "fw_host closed stdout"
            for frame in deframer.feed(chunk):
                if isinstance(frame.message, Identity):
                    identity = frame.message
        assert identity is not None and identity.device_id == "host ref-fw 0.1"
        proc.stdin.close()  # EOF on stdin ends the firmware
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_project_host_link_handshakes_with_the_firmware(host_build: Path) -> None:
    """firmware_bridge.handshake (the host side used by deploy) accepts the C device."""
    from liquidnode.firmware_bridge.handshake import handshake
    from liquidnode.firmware_bridge.link import SerialLink

    session = DeviceSession([str(FW_HOST), "--pty"])
    session.serial.close()
    link = SerialLink(session.port)
    try:
        link.open()
        info = handshake(link, timeout_s=3.0)
        assert (info.identity.n_obs, info.identity.n_act) == (4, 2)
        assert [c.name for c in info.channels][-2:] == ["pwm_d6", "motor_d5"]
    finally:
        link.close()
        session.close()


class TestHostFirmware(DeviceBehaviour):
    """The shared protocol behaviour, host-native build over a pty."""

    @pytest.fixture
    def device_factory(self, host_build: Path) -> Callable[[], DeviceSession]:
        return lambda: DeviceSession([str(host_build), "--pty"])


def test_local_clear_button_releases_the_button_estop_latch(host_build: Path) -> None:
    """Only the device's local clear input (SIGUSR2 in the host build) clears a button
    e-stop; the device then waits DISARMED for the host's ARM."""
    device = DeviceSession([str(host_build), "--pty"])
    try:
        device.arm()
        device.signal(signal.SIGUSR1)
        device.wait_for(
            lambda f: isinstance(f.message, Status) and f.message.fault == FAULT_ESTOP_LATCHED,
            1.0,
            "latched STATUS",
        )
        assert device.current_status(Arm()).state == STATE_ESTOP
        device.signal(signal.SIGUSR2)
        _, frame = device.wait_for(
            lambda f: isinstance(f.message, Status) and f.message.state == STATE_DISARMED,
            1.0,
            "STATUS(DISARMED) after the local clear",
        )
        assert isinstance(frame.message, Status) and frame.message.fault == FAULT_NONE
        device.arm()  # asserts ARMED
    finally:
        device.close()


@pytest.mark.parametrize("reconnect", [False, True])
def test_serial_plant_reports_a_latched_button_estop_instead_of_rearming(
    host_build: Path, reconnect: bool
) -> None:
    """SerialPlant (deploy's plant) cannot re-arm a device whose own e-stop is latched: reset()
    raises DeviceEstopLatchedError naming the local action (also with ``reconnect``, which
    must not retry it), the device stays safe; after the local clear, reset() arms again."""
    from liquidnode.firmware_bridge.serial_plant import DeviceEstopLatchedError, SerialPlant

    session = DeviceSession([str(FW_HOST), "--pty"])
    session.serial.close()
    plant = SerialPlant(session.port, obs_dim=4, act_dim=2, reconnect=reconnect)
    try:
        plant.reset()
        session.signal(signal.SIGUSR1)
        deadline = time.monotonic() + 2.0
        while not plant.observe().truncated:
            assert time.monotonic() < deadline, "the button e-stop was not seen"
        with pytest.raises(DeviceEstopLatchedError, match="cannot clear it"):
            plant.reset()
        events = plant.drain_events()
        assert any(e.kind == "estop" for e in events), events
        assert plant.last_status is not None
        assert (plant.last_status.state, plant.last_status.fault) == (
            STATE_ESTOP,
            FAULT_ESTOP_LATCHED,
        )
        obs = plant.observe()
        assert obs.truncated and obs.values[2:].tolist() == pytest.approx([0.0, 1 / 255], abs=1e-6)
        # a new connection (a second deploy) learns the latch in the handshake
        plant.disconnect()
        plant.connect()
        assert plant.device is not None and plant.device.status is not None
        assert plant.device.status.fault == FAULT_ESTOP_LATCHED
        with pytest.raises(DeviceEstopLatchedError):
            plant.reset()
        session.signal(signal.SIGUSR2)  # the local clear button
        time.sleep(0.05)
        assert not plant.reset().truncated
        assert plant.last_status is not None and plant.last_status.state == 1
    finally:
        plant.disconnect()
        session.close()


def test_deploy_stops_with_one_clear_line_on_a_latched_device(
    host_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``liquidnode deploy`` against a device whose own e-stop is latched: no re-arm, exit 3,
    one line that says the host cannot clear it (also with --reconnect)."""
    from liquidnode.cli import main
    from liquidnode.controller.policy import random_policy

    policy = tmp_path / "p.safetensors"
    random_policy(4, 2, units=8).save(policy)
    device = DeviceSession([str(host_build), "--pty"])
    try:
        device.signal(signal.SIGUSR1)
        device.wait_for(
            lambda f: isinstance(f.message, Status) and f.message.fault == FAULT_ESTOP_LATCHED,
            1.0,
            "latched STATUS",
        )
        device.serial.close()
        argv = ["deploy", "--no-log", "--port", device.port, "--policy", str(policy)]
        assert main([*argv, "--duration", "2", "--reconnect"]) == 3
        err = capsys.readouterr().err
        line = [ln for ln in err.splitlines() if "error" in ln]
        assert len(line) == 1 and "e-stopped by its own e-stop input" in line[0], err
        assert "cannot clear it" in line[0]
    finally:
        device.close()


def test_serial_plant_act_returns_what_the_device_applies(host_build: Path) -> None:
    """``SerialPlant.act`` returns the device's own clamp while ARMED and its safe action once
    the device stops taking commands (here: its e-stop); the readbacks agree."""
    from liquidnode.firmware_bridge.serial_plant import SerialPlant

    session = DeviceSession([str(host_build), "--pty"])
    session.serial.close()
    plant = SerialPlant(session.port, obs_dim=4, act_dim=2)
    try:
        plant.reset()
        assert plant.act(np.array([0.25, -0.5])).tolist() == [0.25, -0.5]
        assert plant.act(np.array([7.0, -3.0])).tolist() == [1.0, -1.0]  # the device's clamp
        for _ in range(3):
            obs = plant.observe()
            plant.act(np.array([7.0, -3.0]))
        assert obs.values[2:].tolist() == pytest.approx([1.0, -1.0], abs=2 / 255)
        session.signal(signal.SIGUSR1)
        deadline = time.monotonic() + 2.0
        while not plant.observe().truncated:
            assert time.monotonic() < deadline
        assert plant.act(np.array([0.9, 0.9])).tolist() == [0.0, 0.0]  # safe action
    finally:
        plant.disconnect()
        session.close()
