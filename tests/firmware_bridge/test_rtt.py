"""The RTT measurement helpers (firmware_bridge/rtt.py) on real ptys, briefly."""

from __future__ import annotations

from liquidnode.firmware_bridge.rtt import bench, percentiles


def test_percentiles():
    assert percentiles([]) == {"p50": None, "p99": None, "max": None, "n": 0}
    p = percentiles([float(i) for i in range(1, 101)])
    assert p["p50"] == 50.5 and p["max"] == 100.0 and p["n"] == 100 and 99 <= p["p99"] <= 100


def test_bench_measures_link_and_raw_echo_in_the_same_run():
    out = bench([200.0], n=60)
    row = out["rates"]["200"]
    echo, link = row["pty_echo"], row["link"]
    assert echo["rtt_us"]["n"] == 60 and link["rtt_us"]["n"] >= 55
    assert 0 < echo["rtt_us"]["p50"] < 50_000 and 0 < link["rtt_us"]["p50"] < 50_000
    assert link["crc_errors"] == 0
