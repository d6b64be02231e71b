"""``deploy`` on real ports: the untrained-policy refusal, the handshake timeout and the
bootloader wait (``--allow-untrained``, ``--handshake-timeout``, ``--boot-wait``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from liquidnode.cli import main
from liquidnode.controller.policy import random_policy
from liquidnode.firmware_bridge.serial_plant import SerialPlant
from tests.firmware_bridge.firmware_session import (
    BUILD_DIR,
    DeviceSession,
    build_firmware,
    require_tools,
)


@pytest.fixture
def untrained(tmp_path: Path) -> Path:
    path = tmp_path / "untrained.safetensors"
    random_policy(4, 2, units=8, seed=1).save(path)
    return path


def test_untrained_policy_is_refused_on_a_real_port(
    untrained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["deploy", "--no-log", "--policy", str(untrained), "--port", "/dev/ttyACM97"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "UNTRAINED" in err and "--allow-untrained" in err and "/dev/ttyACM97" in err
    # allowed: it gets as far as opening the (absent) port
    assert main([*argv, "--allow-untrained", "--boot-wait", "0"]) != 0
    err = capsys.readouterr().err
    assert "refusing" not in err and "/dev/ttyACM97" in err


def test_handshake_timeout_flag_on_a_silent_port(
    untrained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pty nobody answers on: deploy gives up after --handshake-timeout, and says so."""
    master, slave = os.openpty()
    try:
        port = os.ttyname(slave)
        argv = ["deploy", "--no-log", "--policy", str(untrained), "--port", port]
        assert main([*argv, "--handshake-timeout", "0.3"]) != 0
        err = capsys.readouterr().err
        assert "no handshake answer" in err and "within 0.3 s" in err, err
    finally:
        os.close(master)
        os.close(slave)


def test_boot_wait_discards_what_arrives_before_the_handshake() -> None:
    """With a boot wait the plant sleeps first, drops what the device sent meanwhile
    (bootloader noise on a real board), then handshakes normally."""
    require_tools("make", "cc")
    build_firmware("host")
    session = DeviceSession([str(BUILD_DIR / "fw_host"), "--pty"])
    session.serial.close()
    plant = SerialPlant(session.port, obs_dim=4, act_dim=2, boot_wait_s=0.2)
    try:
        t0 = time.monotonic()
        plant.connect()
        assert time.monotonic() - t0 >= 0.2
        assert plant.device is not None and plant.device.identity.n_act == 2
        assert plant.link is not None and plant.link.stats.crc_errors == 0
    finally:
        plant.disconnect()
        session.close()
