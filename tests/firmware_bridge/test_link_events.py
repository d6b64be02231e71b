"""Every link event reaches the log; absurd device announcements are refused at handshake.

Against :class:`FakeDevice` on a real pty, through :class:`SerialPlant` and the control loop.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from liquidnode.controller.errors import LinkError
from liquidnode.controller.loop import ControlLoop, LoopConfig
from liquidnode.firmware_bridge.fake_device import FakeDevice, Script, Step
from liquidnode.firmware_bridge.protocol import Command, Estop
from liquidnode.firmware_bridge.serial_plant import SerialPlant

from ..controller.test_loop import ListRecorder
from .conftest import PD


def _run(script: Script, duration_s: float = 2.0, **plant_kw):
    """Run PD against the fake device; return (device, recorder, summary, error)."""
    device = FakeDevice(script).start()
    recorder = ListRecorder()
    plant = SerialPlant(device.port, obs_dim=4, act_dim=1, handshake_timeout_s=1.0, **plant_kw)
    plant.connect()
    loop = ControlLoop(plant, PD(), LoopConfig(duration_s=duration_s), recorder=recorder)
    error = None
    try:
        loop.run()
    except LinkError as exc:
        error = exc
    finally:
        plant.disconnect()
        time.sleep(0.05)  # the last frames reach the device
        device.close()
    return device, recorder, loop.summary, error


def _kinds(recorder) -> list[str]:
    return [e.kind for e in recorder.events]


def _left_safe(device) -> bool:
    last = [f.message for f in device.received[-2:]]
    return (
        len(last) == 2
        and isinstance(last[0], Command)
        and list(last[0].values) == [0.0]
        and isinstance(last[1], Estop)
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("period_us", 0xFFFFFFFF, "control period of 4294967295 µs; this host accepts"),
        ("period_us", 0, "control period of 0 µs"),
        ("watchdog_ms", 0, "watchdog timeout of 0 ms; this host accepts 1..10000"),
        ("watchdog_ms", 65535, "watchdog timeout of 65535 ms"),
    ],
)
def test_absurd_periods_and_timeouts_are_refused_at_handshake(field, value, message):
    with FakeDevice(Script(**{field: value})) as device:
        plant = SerialPlant(device.port, obs_dim=4, act_dim=1, handshake_timeout_s=1.0)
        with pytest.raises(LinkError, match=message):
            plant.connect()
        assert device.armed == 0


def test_a_frame_of_another_version_mid_run_is_a_protocol_mismatch():
    device, rec, _summary, error = _run(Script(steps=[Step(20, "version", value=7)]))
    assert error is not None and "protocol version 7" in str(error)
    assert "no observation" not in str(error)
    kinds = _kinds(rec)
    assert kinds.index("protocol_mismatch") < kinds.index("link_lost") < kinds.index("run_end")
    assert _left_safe(device)  # the port was still writable: safe command, then ESTOP


def test_silence_is_link_loss_logged_with_a_safe_stop():
    device, rec, summary, error = _run(
        Script(steps=[Step(10, "silence", seconds=5.0)]), obs_timeout_s=0.3
    )
    assert error is not None and "no observation within 300 ms" in str(error)
    lost = [e for e in rec.events if e.kind == "link_lost"]
    assert len(lost) == 1 and lost[0].detail["safe_stop_sent"] is True
    assert _left_safe(device)
    assert summary.stop_reason == "LinkError"


def test_a_device_estop_is_logged_and_ends_the_episode():
    _device, rec, summary, error = _run(Script(steps=[Step(10, "estop")]))
    assert error is None
    estops = [e for e in rec.events if e.kind == "estop"]
    assert estops and estops[0].detail["source"] == "device"
    assert summary.episodes[0].truncated and summary.faults >= 1
    assert _kinds(rec)[-1] == "run_end"


def test_a_watchdog_trip_is_logged_as_a_fault():
    _device, rec, summary, error = _run(Script(steps=[Step(10, "watchdog")]))
    assert error is None
    faults = [e for e in rec.events if e.kind == "fault"]
    assert faults and faults[0].detail["code"] == "watchdog"
    assert summary.episodes[0].truncated


def test_nan_and_huge_observations_are_guarded_not_fed_to_the_policy():
    steps = [Step(5, "values", values=(np.nan, 0, 0, 0)), Step(8, "values", values=(3e38,) * 4)]
    _device, rec, _summary, error = _run(Script(steps=steps), duration_s=0.5)
    assert error is None
    assert [e.detail["channels"] for e in rec.events if e.kind == "nan_guard"] == [[0]]
    sent = np.array([t.sent for t in rec.ticks])
    assert np.all(np.abs(sent) <= 3.0)  # clamped to the device's limits
