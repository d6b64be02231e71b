"""Comparison 4: serial round trip over a pty, through the bridge vs. a raw pty echo.

Bridge: :class:`firmware_bridge.twin.VirtualRobot` (the virtual device: DeviceCore behind a
pty, a MuJoCo InvertedPendulum-v5 stepping at its control period, in a thread) and the host's
:class:`firmware_bridge.link.SerialLink` (pyserial, reader thread, COBS/CRC deframer). One round
trip = ``link.send(Ping(token))`` until ``link.recv`` hands over the matching PONG, timed in the
calling thread (observations the device streams meanwhile are skipped).

Raw echo: a thread echoes every byte written to a pty back (``select`` + ``os.read`` +
``os.write`` on the master); the client writes the same number of bytes as a PING frame on the
wire to the slave and reads them back with ``os.read``. Same process, same thread hand-offs
minus the bridge's. The two alternate in segments; a short pause separates round trips.
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty

import numpy as np

from benchmarks.harness import Check, Section

KEY = "serial_rtt"
TITLE = "Serial round trip over a pty: bridge (PING/PONG) vs. raw pty echo (µs)"
GAP_S = 0.0005


class RawEcho:
    """A pty whose master end echoes every byte back, served by a thread."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                data = os.read(self.master, 4096)
                os.write(self.master, data)

    def round_trip(self, payload: bytes) -> int:
        """Write ``payload`` to the slave, read it back; return the time taken in ns."""
        t0 = time.perf_counter_ns()
        os.write(self.slave, payload)
        got = 0
        while got < len(payload):
            got += len(os.read(self.slave, len(payload) - got))
        return time.perf_counter_ns() - t0

    def close(self) -> None:
        """Stop the echo thread and close the pty."""
        self._stop.set()
        self._thread.join(timeout=1.0)
        os.close(self.master)
        os.close(self.slave)


class BridgePing:
    """The virtual robot on a pty and a host SerialLink to it."""

    def __init__(self, env_id: str = "InvertedPendulum-v5") -> None:
        from firmware_bridge.link import SerialLink
        from firmware_bridge.twin import VirtualRobot, make_twin_plant

        self.robot = VirtualRobot(make_twin_plant(env_id))
        port = self.robot.open()
        self.robot.start_thread()
        self.link = SerialLink(port)
        self.link.open()
        self.token = 0

    def round_trip(self) -> int:
        """PING -> PONG through the bridge; return the time taken in ns."""
        from firmware_bridge.protocol import Ping, Pong

        self.token = (self.token + 1) & 0xFFFFFFFF
        t0 = time.perf_counter_ns()
        self.link.send(Ping(self.token))
        while True:
            item = self.link.recv(1.0)
            if item is None:
                raise TimeoutError("no PONG from the virtual robot within 1 s")
            msg = item.frame.message
            if isinstance(msg, Pong) and msg.token == self.token:
                return time.perf_counter_ns() - t0

    def close(self) -> None:
        """Close the link and stop the robot."""
        self.link.close()
        self.robot.close()


def run(quick: bool = False, tiny: bool = False) -> Section:
    """Run the comparison; ``quick`` shortens it, ``tiny`` is for the smoke test."""
    try:
        from firmware_bridge.protocol import Ping, encode_wire

        bridge = BridgePing()
    except Exception as exc:  # a missing module or simulator: report it, do not crash
        return Section(KEY, TITLE, unavailable=f"bridge unavailable: {exc}")
    n = 40 if tiny else 1000 if quick else 4000
    segments = 2 if tiny else 5 if quick else 10
    payload = encode_wire(Ping(1), 1)
    echo = RawEcho()
    res: dict[str, list[int]] = {"bridge": [], "raw": []}
    try:
        for _ in range(5):  # warm-up
            bridge.round_trip()
            echo.round_trip(payload)
        for _ in range(segments):
            for _ in range(n // segments):
                res["bridge"].append(bridge.round_trip())
                time.sleep(GAP_S)
            for _ in range(n // segments):
                res["raw"].append(echo.round_trip(payload))
                time.sleep(GAP_S)
    finally:
        bridge.close()
        echo.close()
    stats = {}
    for name, values in res.items():
        a = np.asarray(values, dtype=np.float64) / 1e3
        stats[name] = (float(np.percentile(a, 50)), float(np.percentile(a, 99)), float(a.max()))
    sec = Section(KEY, TITLE, columns=["path", "round trips", "p50", "p99", "max", "p99 ratio"])
    labels = {"bridge": "bridge: SerialLink + virtual robot", "raw": "raw pty echo"}
    for name in ("bridge", "raw"):
        p50, p99, mx = stats[name]
        ratio = "-" if name == "raw" else f"{p99 / stats['raw'][1]:.2f}x"
        sec.rows.append(
            [labels[name], len(res[name]), f"{p50:.0f}", f"{p99:.0f}", f"{mx:.0f}", ratio]
        )
    r99 = stats["bridge"][1] / stats["raw"][1]
    sec.checks.append(
        Check(
            "serial: bridge round-trip p99 <= 2x raw pty echo",
            f"{stats['bridge'][1]:.0f} vs {stats['raw'][1]:.0f} µs ({r99:.2f}x)",
            r99 <= 2.0,
        )
    )
    sec.notes.append(
        f"{len(payload)}-byte PING frame on the wire; {n} round trips per path in {segments} "
        f"alternating segments, {GAP_S * 1e6:.0f} µs pause between round trips; the virtual "
        "robot streams InvertedPendulum-v5 observations meanwhile (skipped by the timer)."
    )
    sec.data = {k: {"p50_us": v[0], "p99_us": v[1], "max_us": v[2]} for k, v in stats.items()}
    return sec
