"""SerialLink on pyserial URLs other than a pty: ``loop://`` and ``socket://``."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from liquidnode.controller.errors import LinkError
from liquidnode.firmware_bridge.link import SerialLink
from liquidnode.firmware_bridge.protocol import Command, Ping
from liquidnode.firmware_bridge.rtt import BenchPlant
from liquidnode.firmware_bridge.serial_plant import SerialPlant
from liquidnode.firmware_bridge.twin import VirtualRobot


def test_loop_url_round_trip_and_sequence_numbers():
    link = SerialLink("loop://")
    link.open()
    try:
        assert link.send(Ping(7)) == 0
        assert link.send(Command((0.5, -1.0))) == 1
        got = [link.recv(1.0), link.recv(1.0)]
        assert [g.frame.message for g in got] == [Ping(7), Command((0.5, -1.0))]
        assert [g.frame.seq for g in got] == [0, 1]
        assert got[0].t_ns <= got[1].t_ns
        assert link.recv(0.01) is None  # timeout, not an exception
    finally:
        link.close()
    with pytest.raises(LinkError, match="not open"):
        link.send(Ping(1))


def test_loop_url_recv_times_out_and_returns_none():
    link = SerialLink("loop://")
    link.open()
    try:
        t0 = time.perf_counter()
        assert link.recv(0.02) is None
        assert time.perf_counter() - t0 >= 0.018  # it waited its timeout (less clock rounding)
        assert link.drain() == []
    finally:
        link.close()


def test_socket_url_serves_the_protocol():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    robot = VirtualRobot(BenchPlant(200.0), watchdog_ms=300)

    def serve():
        conn, _ = server.accept()
        conn.setblocking(False)
        robot.master_fd = conn.fileno()
        robot.serve()
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    plant = SerialPlant(f"socket://127.0.0.1:{port}", obs_dim=4, act_dim=1, ping_every=1)
    try:
        plant.connect()
        assert plant.spec.rate_hz == pytest.approx(200.0)
        plant.reset()
        for _ in range(20):
            plant.act(np.array([0.75]))
            obs = plant.observe()
        assert obs.values[1] == pytest.approx(0.75)  # the bench plant echoes the action
        # one PING per tick; on a loaded machine some PONGs miss their tick, so only ask for
        # enough samples to show the round trip is measured over a socket:// URL too
        assert plant.summary()["link"]["rtt_us"]["n"] >= 5
    finally:
        plant.disconnect()
        robot.stop()
        thread.join(timeout=2)
        server.close()
