"""Link round-trip measurement: PING/PONG over the protocol vs a raw pty echo.

Reusable pieces (``benchmarks/`` builds on them):

- :class:`BenchPlant`: a physics-free plant at any rate, so the twin can stream at 1 kHz.
- :func:`spawn` starts a device process (``twin``: the virtual robot with a
  :class:`BenchPlant`; ``echo``: a pty that writes back every byte) and returns its port.
- :func:`measure_link_rtt`: a :class:`~firmware_bridge.serial_plant.SerialPlant` session
  answering every OBSERVATION with a COMMAND plus a PING; RTT = PING written -> PONG read.
- :func:`measure_echo_rtt`: the same-size write and read-back on a raw echo pty, paced at the
  same rate: the floor the operating system's pty layer sets.

Command line::

    python -m liquidnode.firmware_bridge.rtt bench --rates 100 1000 --n 2000      # one JSON object
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import time
from typing import Any

import numpy as np

from liquidnode.controller.plant import Observation, Plant, PlantSpec

#: Size of a PING frame on the wire (COBS + delimiter), bytes: the echo test writes this much.
PING_WIRE_BYTES = 12


class BenchPlant(Plant):
    """A 4-observation, 1-action plant with no physics (observation = last action, time).

    Args:
        rate_hz: control rate, Hz (any positive value).
    """

    def __init__(self, rate_hz: float) -> None:
        self.spec = PlantSpec(
            name="bench",
            obs_names=("t", "a", "zero0", "zero1"),
            obs_units=("s", "1", "1", "1"),
            act_names=("a",),
            act_units=("1",),
            action_low=np.array([-1.0]),
            action_high=np.array([1.0]),
            safe_action=np.array([0.0]),
            control_period_s=1.0 / rate_hz,
        )
        self._t = 0.0
        self._a = 0.0

    def connect(self) -> None:
        """Nothing to open."""

    def reset(self, seed: int | None = None) -> Observation:
        """Time back to 0."""
        self._t = 0.0
        return self.observe()

    def act(self, action: np.ndarray) -> None:
        """Hold ``action`` for one period."""
        self._a = float(np.asarray(action).reshape(-1)[0])
        self._t += self.spec.control_period_s

    def observe(self) -> Observation:
        """``[t, last action, 0, 0]``."""
        return Observation(np.array([self._t, self._a, 0.0, 0.0]))

    def disconnect(self) -> None:
        """Nothing to close."""


def percentiles(samples_us: list[float]) -> dict[str, Any]:
    """``{"p50", "p99", "max", "n"}`` of samples in µs (None when empty)."""
    a = np.asarray(samples_us, dtype=np.float64)
    if a.size == 0:
        return {"p50": None, "p99": None, "max": None, "n": 0}
    return {
        "p50": float(np.percentile(a, 50)),
        "p99": float(np.percentile(a, 99)),
        "max": float(a.max()),
        "n": int(a.size),
    }


def spawn(kind: str, rate_hz: float = 100.0) -> tuple[subprocess.Popen[str], str]:
    """Start ``python -m liquidnode.firmware_bridge.rtt serve-<kind>``; return process and port.

    Args:
        kind: ``"twin"`` (virtual robot with a :class:`BenchPlant` at ``rate_hz``) or
            ``"echo"`` (raw byte echo).
    """
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "liquidnode.firmware_bridge.rtt",
            f"serve-{kind}",
            "--rate",
            str(rate_hz),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
    except BaseException:  # stopped (Ctrl-C, SIGTERM) while it starts: it must not outlive us
        proc.kill()
        proc.wait()
        raise
    if not line.startswith("port: "):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{kind} server did not print its port (got {line!r})")
    return proc, line.split(" ", 1)[1].strip()


def measure_link_rtt(port: str, n: int) -> dict[str, Any]:
    """Close a trivial loop over ``port`` for ``n`` ticks, a PING per tick; RTT statistics.

    Returns:
        ``{"rtt_us": percentiles, "ticks", "stale_observations", "crc_errors", "rate_hz"}``.
    """
    from liquidnode.firmware_bridge.serial_plant import SerialPlant

    plant = SerialPlant(port, ping_every=1)
    plant.connect()
    try:
        plant.reset()
        t0 = time.perf_counter()
        for _ in range(n):
            plant.act(np.array([0.5]))
            plant.observe()
        elapsed = time.perf_counter() - t0
        link = plant.summary()["link"]
        rtt = percentiles(plant.rtt_samples_us)
    finally:
        plant.safe_stop()
        plant.disconnect()
    return {
        "rtt_us": rtt,
        "ticks": n,
        "rate_hz": n / elapsed,
        "stale_observations": link["stale_observations"],
        "crc_errors": link["crc_errors"],
    }


def measure_echo_rtt(port: str, n: int, rate_hz: float, size: int = PING_WIRE_BYTES) -> dict:
    """Write ``size`` bytes to an echo pty and read them back, ``n`` times at ``rate_hz``."""
    import serial

    ser = serial.Serial(port, timeout=1.0)
    payload = bytes(range(1, size + 1))
    samples: list[float] = []
    period = 1.0 / rate_hz
    next_t = time.perf_counter()
    try:
        for _ in range(n):
            t0 = time.perf_counter_ns()
            ser.write(payload)
            got = b""
            while len(got) < size:
                chunk = ser.read(ser.in_waiting or 1)
                if not chunk:
                    raise RuntimeError(f"echo on {port} timed out")
                got += chunk
            samples.append((time.perf_counter_ns() - t0) / 1000.0)
            next_t += period
            delay = next_t - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    finally:
        ser.close()
    return {"rtt_us": percentiles(samples), "ticks": n, "rate_hz": rate_hz, "bytes": size}


def serve_echo() -> None:
    """Create a raw pty, print ``port: PATH``, echo every byte until killed."""
    from liquidnode.firmware_bridge.twin import open_pty

    master, _slave, path = open_pty()
    print(f"port: {path}", flush=True)
    while True:
        select.select([master], [], [])
        try:
            data = os.read(master, 4096)
        except BlockingIOError:
            continue
        os.write(master, data)


def serve_twin(rate_hz: float) -> None:
    """The virtual robot with a :class:`BenchPlant` at ``rate_hz``; prints ``port: PATH``."""
    from liquidnode.firmware_bridge.twin import VirtualRobot

    robot = VirtualRobot(BenchPlant(rate_hz), watchdog_ms=500)
    print(f"port: {robot.open()}", flush=True)
    robot.serve()


def bench(rates: list[float], n: int) -> dict[str, Any]:
    """For each rate: link RTT over the twin, and raw pty echo RTT; JSON-able dict."""
    out: dict[str, Any] = {"n": n, "rates": {}}
    for rate in rates:
        row: dict[str, Any] = {}
        for kind in ("echo", "twin"):
            proc, port = spawn(kind, rate)
            try:
                if kind == "echo":
                    row["pty_echo"] = measure_echo_rtt(port, n, rate)
                else:
                    row["link"] = measure_link_rtt(port, n)
            finally:
                proc.terminate()
                proc.wait(timeout=5)
        out["rates"][f"{rate:g}"] = row
    return out


def main() -> None:
    """Entry point: ``bench``, ``serve-twin``, ``serve-echo``. SIGINT, SIGTERM and SIGHUP
    end it quietly with exit status 128+N (the servers run until one comes)."""
    from liquidnode.controller.shutdown import interrupt_exit_code, stop_signals

    try:
        with stop_signals():
            _main()
    except KeyboardInterrupt as exc:
        sys.exit(interrupt_exit_code(exc))


def _main() -> None:
    ap = argparse.ArgumentParser(description="link round-trip measurement over a pty")
    ap.add_argument("what", choices=("bench", "serve-twin", "serve-echo"))
    ap.add_argument("--rate", type=float, default=100.0, help="serve-twin: rate in Hz")
    ap.add_argument("--rates", type=float, nargs="+", default=[100.0, 1000.0], help="bench: Hz")
    ap.add_argument("--n", type=int, default=2000, help="bench: round trips per rate")
    args = ap.parse_args()
    if args.what == "serve-echo":
        serve_echo()
    elif args.what == "serve-twin":
        serve_twin(args.rate)
    else:
        print(json.dumps(bench(args.rates, args.n)))


if __name__ == "__main__":
    main()
