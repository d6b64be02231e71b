"""The C reference firmware built for the ATmega328P, run in the simavr emulator.

The AVR build (``make avr``: avr-gcc -mmcu=atmega328p -Os) is loaded by
``build/simavr_harness``, which bridges the emulated USART0 to a pty and paces the emulator
against the wall clock; the shared behaviour tests of :class:`DeviceBehaviour` then run
over that pty with pyserial: handshake, command/observation exchange with clamping, CRC
rejection, watchdog trip and re-arm, e-stop, PING/PONG.

Skips (or fails under LIQUIDNODE_REQUIRE_ALL=1) without avr-gcc, avr-libc or simavr.
"""

from __future__ import annotations

import itertools
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from liquidnode.firmware_bridge.protocol import Arm, ObservationMsg, Ping, Pong, Status
from tests.firmware_bridge.firmware_session import (
    BUILD_DIR,
    FAULT_ESTOP_LATCHED,
    FAULT_NONE,
    FAULT_WATCHDOG_RESET,
    SAFE_READBACK,
    STATE_DISARMED,
    STATE_ESTOP,
    DeviceBehaviour,
    DeviceSession,
    build_firmware,
    close_to,
    readbacks,
    require_simavr,
    require_tools,
)

ELF = BUILD_DIR / "fw_avr.elf"
HARNESS = BUILD_DIR / "simavr_harness"
FLASH_BYTES, SRAM_BYTES = 32 * 1024, 2 * 1024  #: ATmega328P
BOOTLOADER_BYTES = 512  #: Optiboot on an Arduino Uno
MIN_STACK_BYTES = 512  #: SRAM left for the stack (deepest path: encode buffer, 249 B)


@pytest.fixture(scope="module")
def avr_build() -> dict[str, int]:
    """Build the AVR ELF and the simavr harness; return avr-size's figures (bytes)."""
    require_tools("make", "cc", "avr-gcc", "avr-objcopy", "avr-size")
    require_simavr()
    out = build_firmware("avr", "simavr-harness")
    program = re.search(r"Program:\s+(\d+) bytes", out)
    data = re.search(r"Data:\s+(\d+) bytes", out)
    assert program and data, f"no avr-size figures in the build output:\n{out}"
    return {"program": int(program.group(1)), "data": int(data.group(1))}


def start_avr(*extra: str) -> DeviceSession:
    return DeviceSession([str(HARNESS), *extra, str(ELF)])


def test_avr_build_fits_the_atmega328p(avr_build: dict[str, int]) -> None:
    print(f"\nAVR firmware: flash {avr_build['program']} B, static RAM {avr_build['data']} B")
    assert 1000 < avr_build["program"] <= FLASH_BYTES - BOOTLOADER_BYTES
    assert avr_build["data"] <= SRAM_BYTES - MIN_STACK_BYTES


def test_emulated_time_follows_wall_time(avr_build: dict[str, int]) -> None:
    """The harness paces the emulator: never faster than real time, and - unless the
    machine starves it (then it skips the lost time, reported as slips) - as fast.

    Drift = change of (arrival time - device time) between the first and the last 25
    observations of a 1.2 s run, each taken as a minimum to filter out late reads.
    """
    session = start_avr()
    try:
        session.observation(timeout_s=2.0)
        session.poll(1.2)
    finally:
        stderr = session.close()
    offsets = [
        t - f.message.device_time_us * 1e-6
        for t, f in session.frames
        if isinstance(f.message, ObservationMsg)
    ]
    assert len(offsets) >= 80, len(offsets)
    drift_s = min(offsets[-25:]) - min(offsets[:25])  # > 0: emulation fell behind
    summary = re.search(r"(\d+) slips skipping ([\d.]+) ms", stderr)
    assert summary, stderr
    slipped_s = float(summary.group(2)) * 1e-3
    assert -0.005 <= drift_s <= slipped_s + 0.01, (drift_s, slipped_s)


def test_simavr_uart_pty_part_also_bridges(avr_build: dict[str, int]) -> None:
    """The harness's --simavr-uart-pty option (simavr's own uart_pty part) works too."""
    session = start_avr("--simavr-uart-pty")
    try:
        identity, channels = session.handshake()
        assert identity.device_id == "avr-atmega328p ref-fw 0.1"
        assert len(channels) == 6
        session.sync()  # a PING is answered (raises after 1 s without its PONG)
        assert isinstance(session.observation(), ObservationMsg)
    finally:
        session.close()


def test_project_host_link_handshakes_with_the_avr(avr_build: dict[str, int]) -> None:
    """firmware_bridge.handshake (the host side used by deploy) accepts the emulated AVR."""
    from liquidnode.firmware_bridge.handshake import handshake
    from liquidnode.firmware_bridge.link import SerialLink

    session = start_avr()
    session.serial.close()
    link = SerialLink(session.port)
    try:
        link.open()
        info = handshake(link, timeout_s=3.0)
        assert info.identity.device_id == "avr-atmega328p ref-fw 0.1"
        assert (info.identity.n_obs, info.identity.n_act) == (4, 2)
    finally:
        link.close()
        session.close()


class TestAvrFirmwareInSimavr(DeviceBehaviour):
    """The shared protocol behaviour, AVR build in simavr (115200 baud, 1 ms bridge sync)."""

    @pytest.fixture
    def device_factory(self, avr_build: dict[str, int]) -> Callable[[], DeviceSession]:
        return start_avr


HANG_ELF = BUILD_DIR / "fw_avr_hang.elf"
HANG_TOKEN = 0xDEAD0001  #: PING token that hangs the main loop of the test-only build


@pytest.fixture(scope="module")
def avr_hang_build(avr_build: dict[str, int]) -> Path:
    """The test-only AVR build (-DFW_TEST_HANG) whose main loop a PING can hang."""
    build_firmware("avr-test-hang")
    return HANG_ELF


def test_hardware_watchdog_restarts_a_hung_main_loop_into_the_safe_state(
    avr_hang_build: Path,
) -> None:
    """A hung main loop (the test build hangs on PING 0xDEAD0001) stops feeding the
    AVR's hardware watchdog: the MCU restarts, its actuators read their safe values from
    the first observation on, and STATUS reports fault 6 (watchdog reset) until ARM."""
    session = DeviceSession([str(HARNESS), str(avr_hang_build)])
    try:
        session.arm()
        last = session.command_for((0.8, 0.5), 0.1)
        session.wait_for(
            lambda f: isinstance(f.message, ObservationMsg) and f.message.ack_seq == last,
            0.5,
            "ack of the command",
        )
        assert close_to(readbacks(session.observation()), (0.8, 0.5))
        session.skip_received()
        session.send(Ping(HANG_TOKEN))
        _, frame = session.wait_for(
            lambda f: isinstance(f.message, Status) and f.message.fault == FAULT_WATCHDOG_RESET,
            3.0,
            "STATUS with fault 6 after the hang",
        )
        status = frame.message
        assert isinstance(status, Status) and status.state == STATE_DISARMED
        after = [
            f.message
            for _, f in session.frames[session.cursor - 1 :]
            if isinstance(f.message, ObservationMsg)
        ]
        restarted = session.observation()
        assert restarted.device_time_us < 1_000_000, "the device clock restarted"
        assert restarted.state == STATE_DISARMED
        assert all(close_to(readbacks(o), SAFE_READBACK) for o in [*after, restarted])
        assert not any(
            isinstance(f.message, Pong) and f.message.token == HANG_TOKEN for _, f in session.frames
        ), "the hang PING was answered: the loop did not hang"
        # the reset cause reaches a host that connects now, in the handshake's STATUS
        session.handshake()
        _, frame = session.wait_for(
            lambda f: isinstance(f.message, Status), 0.5, "STATUS after the handshake"
        )
        assert isinstance(frame.message, Status)
        assert frame.message.fault == FAULT_WATCHDOG_RESET
        assert session.arm().fault == FAULT_NONE  # ARM acknowledges it
    finally:
        stderr = session.close()
    assert "CRASHED" not in stderr, stderr


def test_button_estop_latch_survives_a_watchdog_restart(avr_hang_build: Path) -> None:
    """The latch lives in .noinit SRAM: a restart by the hardware watchdog (or the reset pin
    an Uno's host pulses when it opens the port) comes back e-stopped, refusing ARM."""
    session = DeviceSession([str(HARNESS), str(avr_hang_build)])
    try:
        session.arm()
        session.signal(signal.SIGUSR1)
        session.wait_for(
            lambda f: isinstance(f.message, Status) and f.message.fault == FAULT_ESTOP_LATCHED,
            1.0,
            "latched STATUS",
        )
        time.sleep(0.1)  # button released again
        session.skip_received()
        session.send(Ping(HANG_TOKEN))
        _, frame = session.wait_for(
            lambda f: isinstance(f.message, Status) and f.message.device_time_us < 100_000,
            3.0,
            "STATUS from the restarted MCU",
        )
        assert isinstance(frame.message, Status)
        assert (frame.message.state, frame.message.fault) == (STATE_ESTOP, FAULT_ESTOP_LATCHED)
        status = session.current_status(Arm())
        assert (status.state, status.fault) == (STATE_ESTOP, FAULT_ESTOP_LATCHED)
        assert close_to(readbacks(session.observation()), SAFE_READBACK)
    finally:
        stderr = session.close()
    assert "CRASHED" not in stderr, stderr


def test_the_normal_build_is_not_reset_by_its_watchdog(avr_build: dict[str, int]) -> None:
    """The hang token is an ordinary PING in the normal build: answered, no restart."""
    session = start_avr()
    try:
        session.observation(timeout_s=2.0)
        session.send(Ping(HANG_TOKEN))
        session.wait_for(
            lambda f: isinstance(f.message, Pong) and f.message.token == HANG_TOKEN,
            1.0,
            "PONG of the hang token",
        )
        frames = session.poll(0.3)
        statuses = [f.message for f in frames if isinstance(f.message, Status)]
        assert all(s.fault != FAULT_WATCHDOG_RESET for s in statuses)
        seqs = [f.seq for f in frames]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs)), "restarted"
    finally:
        session.close()


def test_harness_rejects_a_bad_adc_option(avr_build: dict[str, int]) -> None:
    import subprocess

    proc = subprocess.run(
        [str(HARNESS), "--adc", "9=100", str(ELF)],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert proc.returncode == 2
    assert "9=100" in proc.stderr
    assert isinstance(Path(ELF), Path)


def test_serial_plant_reports_the_watchdog_restart(avr_hang_build: Path) -> None:
    """deploy's plant sees the restarted device leave ARMED (the episode is truncated) and
    records the reset cause STATUS fault 6 as a ``watchdog_reset`` fault event."""
    from liquidnode.firmware_bridge.serial_plant import SerialPlant

    session = DeviceSession([str(HARNESS), str(avr_hang_build)])
    session.serial.close()
    plant = SerialPlant(session.port, obs_dim=4, act_dim=2, obs_timeout_s=2.0)
    try:
        plant.reset()
        plant.act(np.array([0.8, 0.5]))
        plant.observe()
        plant.link.send(Ping(HANG_TOKEN))
        deadline = time.monotonic() + 5.0
        while not (obs := plant.observe()).truncated:
            plant.act(np.array([0.8, 0.5]))
            assert time.monotonic() < deadline, "the restart was not seen"
        assert close_to(tuple(obs.values[2:]), SAFE_READBACK)
        codes = [e.detail.get("code") for e in plant.drain_events() if e.kind == "fault"]
        assert "watchdog_reset" in codes, codes
    finally:
        plant.disconnect()
        stderr = session.close()
    assert "CRASHED" not in stderr, stderr
