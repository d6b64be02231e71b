"""Comparison 4: serial round trip over a pty, through the bridge vs. a raw pty echo.

Built on :mod:`firmware_bridge.rtt` (the bridge's own measurement):

- bridge: a device process (``liquidnode.firmware_bridge.rtt serve-twin``: the virtual robot
  serving a physics-free plant at the rate) and, here, a
  :class:`~firmware_bridge.serial_plant.SerialPlant` closing a trivial loop at that rate,
  sending a COMMAND and a PING each tick; RTT = PING written -> PONG read
  (:func:`~firmware_bridge.rtt.measure_link_rtt`).
- raw echo: a process echoing every byte of a pty (``serve-echo``); the same number of bytes as
  a PING frame written and read back with pyserial at the same pace
  (:func:`~firmware_bridge.rtt.measure_echo_rtt`).

Per rate, both device processes run for the whole comparison and the two paths alternate in
segments; p50 and p99 are the medians over segments, max the maximum.
"""

from __future__ import annotations

import statistics

from liquidnode.benchmarks.harness import Check, Section

KEY = "serial_rtt"
TITLE = "Serial round trip over a pty: bridge (PING/PONG) vs. raw pty echo (µs)"


def _combine(segments: list[dict]) -> dict[str, float]:
    return {
        "p50": statistics.median(s["p50"] for s in segments),
        "p99": statistics.median(s["p99"] for s in segments),
        "max": max(s["max"] for s in segments),
        "n": sum(s["n"] for s in segments),
    }


def run(quick: bool = False, tiny: bool = False) -> Section:
    """Run the comparison; ``quick`` shortens it, ``tiny`` is for the smoke test."""
    try:
        from liquidnode.controller.errors import LinkError
        from liquidnode.firmware_bridge import rtt
    except ImportError as exc:
        return Section(KEY, TITLE, unavailable=f"firmware_bridge.rtt missing: {exc}")
    segments = 1 if tiny else 2 if quick else 4
    ticks = {1000.0: 50 if tiny else 1000 if quick else 2500}
    ticks[100.0] = 20 if tiny else 200 if quick else 500
    sec = Section(
        KEY,
        TITLE,
        columns=["rate", "path", "round trips", "p50", "p99", "max", "p99 vs. raw echo"],
    )
    lost: list[str] = []
    for rate, n in ticks.items():
        procs = []
        try:
            echo_proc, echo_port = rtt.spawn("echo", rate)
            procs.append(echo_proc)
            twin_proc, twin_port = rtt.spawn("twin", rate)
            procs.append(twin_proc)
            link, echo = [], []
            for _ in range(segments):
                for attempt in range(3):  # a loaded machine can stall the link past its timeout
                    try:
                        link.append(rtt.measure_link_rtt(twin_port, n)["rtt_us"])
                        break
                    except LinkError as exc:
                        lost.append(f"{rate:g} Hz: {exc}")
                        if attempt == 2:
                            raise
                echo.append(rtt.measure_echo_rtt(echo_port, n, rate)["rtt_us"])
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=5)
        stats = {"bridge": _combine(link), "raw": _combine(echo)}
        ratio = stats["bridge"]["p99"] / stats["raw"]["p99"]
        for name, label in (("bridge", "bridge: SerialPlant + twin"), ("raw", "raw pty echo")):
            s = stats[name]
            sec.rows.append(
                [
                    f"{rate:g} Hz",
                    label,
                    s["n"],
                    f"{s['p50']:.0f}",
                    f"{s['p99']:.0f}",
                    f"{s['max']:.0f}",
                    f"{ratio:.2f}x" if name == "bridge" else "-",
                ]
            )
        sec.checks.append(
            Check(
                f"serial at {rate:g} Hz: bridge round-trip p99 <= 2x raw pty echo",
                f"{stats['bridge']['p99']:.0f} vs {stats['raw']['p99']:.0f} µs ({ratio:.2f}x)",
                ratio <= 2.0,
            )
        )
        sec.data[f"{rate:g}Hz"] = stats
    sec.notes.append(
        f"firmware_bridge.rtt: device and echo in their own processes; a "
        f"{rtt.PING_WIRE_BYTES}-byte PING frame per tick (with a COMMAND) vs. the same bytes "
        f"echoed; {segments} alternating segments per rate, p50/p99 = median over segments."
    )
    if lost:
        sec.notes.append(
            f"{len(lost)} bridge segment(s) lost the link and were run again (first: {lost[0]})."
        )
    sec.data["link_losses"] = lost
    return sec
