"""The device state machine (firmware_bridge/device.py): handshake, commands, watchdog."""

from __future__ import annotations

import math

import numpy as np
import pytest

from liquidnode.controller.plant import PlantSpec
from liquidnode.firmware_bridge.device import DeviceConfig, DeviceCore
from liquidnode.firmware_bridge.protocol import (
    Arm,
    Channel,
    Command,
    DeviceState,
    Estop,
    Fault,
    Frame,
    Hello,
    Identity,
    Ping,
    Pong,
    Status,
)

SPEC = PlantSpec(
    name="test",
    obs_names=("x", "theta"),
    obs_units=("m", "rad"),
    act_names=("force",),
    act_units=("N",),
    action_low=np.array([-3.0]),
    action_high=np.array([3.0]),
    safe_action=np.array([0.5]),
    control_period_s=0.01,
)


def frame(msg, seq=0):
    return Frame(1, seq, msg, int(msg.TYPE), msg.payload())


@pytest.fixture
def core():
    return DeviceCore(DeviceConfig(SPEC, watchdog_timeout_ms=30, device_id="unit"))


def test_hello_answers_identity_then_channels_obs_first(core):
    out = core.handle(frame(Hello(1)), 0)
    assert out[0] == Identity(1, 2, 1, 10000, 30, "unit")
    assert out[-1] == Status(0, 0, 0, 0, 0, 0)  # the handshake ends with STATUS
    assert [(c.kind, c.index, c.name, c.unit) for c in out[1:-1]] == [
        (0, 0, "x", "m"),
        (0, 1, "theta", "rad"),
        (1, 0, "force", "N"),
    ]
    act = out[3]
    assert isinstance(act, Channel) and (act.low, act.high, act.safe) == (-3.0, 3.0, 0.5)
    assert math.isinf(out[1].low)
    assert core.state is DeviceState.DISARMED  # HELLO does not arm


def test_commands_apply_only_when_armed_and_are_clamped(core):
    core.handle(frame(Command((2.0,)), seq=5), 0)
    assert core.action.tolist() == [0.5] and core.last_cmd_seq == 0
    assert core.handle(frame(Arm()), 0) == [Status(1, 0, 0, 0, 0, 0)]
    core.handle(frame(Command((9.0,)), seq=6), 1000)
    assert core.action.tolist() == [3.0] and core.last_cmd_seq == 6
    assert core.observation(np.zeros(2), 2000).ack_seq == 6


def test_non_finite_and_wrong_length_commands_rejected(core):
    core.handle(frame(Arm()), 0)
    core.handle(frame(Command((1.0,)), seq=1), 0)
    core.handle(frame(Command((float("nan"),)), seq=2), 0)
    assert core.action.tolist() == [1.0] and core.fault is Fault.BAD_COMMAND
    assert core.state is DeviceState.ARMED
    core.handle(frame(Command((1.0, 2.0)), seq=3), 0)
    assert core.dropped_frames == 2 and core.last_cmd_seq == 1


def test_watchdog_trips_after_timeout_and_stays_safe_until_arm(core):
    core.handle(frame(Arm()), 0)
    core.handle(frame(Command((2.0,)), seq=1), 10_000)
    assert core.poll(39_999) == []
    out = core.poll(40_000)
    assert out == [Status(2, 1, 0, 0, 1, 40_000)]
    assert core.action.tolist() == [0.5]
    core.handle(frame(Command((2.0,)), seq=2), 41_000)  # late command does not re-arm
    assert core.state is DeviceState.WATCHDOG and core.action.tolist() == [0.5]
    assert core.handle(frame(Arm()), 50_000)[0].state == DeviceState.ARMED
    assert core.fault is Fault.NONE and core.watchdog_deadline_us() == 80_000


def test_estop_and_ping(core):
    core.handle(frame(Arm()), 0)
    core.handle(frame(Command((2.0,)), seq=1), 0)
    out = core.handle(frame(Estop(0)), 5)
    assert out[0].state == DeviceState.ESTOP and out[0].fault == Fault.ESTOP
    assert core.action.tolist() == [0.5] and core.watchdog_deadline_us() is None
    assert core.handle(frame(Ping(77)), 6) == [Pong(77)]


def test_foreign_version_frame_dropped(core):
    assert core.handle(Frame(2, 0, None, 1, b"\x02"), 0) == []
    assert core.dropped_frames == 1


def test_button_estop_latches_and_host_arm_cannot_clear_it(core):
    core.handle(frame(Arm()), 0)
    core.handle(frame(Command((2.0,)), seq=1), 0)
    out = core.button_estop(10)
    assert out == [Estop(1), Status(3, 5, 0, 0, 1, 10)]
    assert core.action.tolist() == [0.5] and core.estop_latched
    assert core.button_estop(11) == []  # held: no repeat
    for t in (20, 30):
        assert core.handle(frame(Arm()), t) == [Status(3, 5, 0, 0, 1, t)]
    # a host e-stop does not downgrade the latch to the host-clearable fault 2
    assert core.handle(frame(Estop(0)), 40)[0].fault == Fault.ESTOP_LATCHED
    core.handle(frame(Command((2.0,)), seq=2), 50)
    assert core.action.tolist() == [0.5] and core.last_cmd_seq == 1
    # a host that reconnects sees the latch at the end of its handshake
    assert core.handle(frame(Hello(1)), 60)[-1] == Status(3, 5, 0, 0, 1, 60)
    assert core.armed_count == 1


def test_local_reset_clears_the_latch_only_with_the_button_released(core):
    core.button_estop(0)
    assert core.local_reset(5, estop_pressed=True) == []
    assert core.estop_latched
    assert core.local_reset(10) == [Status(0, 0, 0, 0, 0, 10)]
    assert core.state is DeviceState.DISARMED  # not armed: the host must ARM
    assert core.handle(frame(Arm()), 20)[0].state == DeviceState.ARMED
    assert core.local_reset(30) == []  # nothing to clear


def test_host_estop_is_cleared_by_arm(core):
    core.handle(frame(Estop(0)), 0)
    assert not core.estop_latched
    assert core.handle(frame(Arm()), 5)[0] == Status(1, 0, 0, 0, 0, 5)


def test_boot_faults_latch_and_watchdog_reset():
    config = DeviceConfig(SPEC, watchdog_timeout_ms=30, device_id="unit")
    latched = DeviceCore(config, boot_fault=Fault.ESTOP_LATCHED)
    assert latched.estop_latched and latched.action.tolist() == [0.5]
    assert latched.handle(frame(Arm()), 0)[0].state == DeviceState.ESTOP
    rebooted = DeviceCore(config, boot_fault=Fault.WATCHDOG_RESET)
    assert rebooted.status(0) == Status(0, 6, 0, 0, 0, 0)
    assert rebooted.handle(frame(Arm()), 1)[0] == Status(1, 0, 0, 0, 0, 1)
