"""The ``device`` bench section: its rows, its targets and its reason when tools are missing."""

from __future__ import annotations

from liquidnode.benchmarks import device


def _result(**over):
    r = {
        "policy": "InvertedPendulum-v5-ncp.safetensors",
        "precision": "q15",
        "target": "avr",
        "return": 1000.0,
        "ticks": 1000,
        "cycles_p50": 55_000.0,
        "cycles_max": 55_100,
        "step_us_p50": 3437.5,
        "flash_bytes": 15_000,
        "ram_bytes": 1418,
        "bit_exact_vs_host_build": True,
        "max_abs_daction_vs_runtime": 3.4e-3,
    }
    r.update(over)
    return r


def test_missing_emulators_and_toolchains_give_one_line_reason(monkeypatch):
    monkeypatch.setattr(device.shutil, "which", lambda name: None)
    sec = device.run(quick=True)
    assert sec.rows == [] and sec.unavailable is not None
    assert "\n" not in sec.unavailable
    assert "avr-gcc" in sec.unavailable and "qemu-system-arm" in sec.unavailable
    assert "install-system-deps.sh" in sec.unavailable


def test_a_result_becomes_a_table_row():
    row = device.table_row(_result())
    assert len(row) == len(device.COLUMNS)
    assert row[0] == "InvertedPendulum-v5-ncp" and row[2] == "ATmega328P 16 MHz"
    assert row[3] == "1000 (1000)" and row[5] == "3437.5" and row[8] == "yes"


def test_targets_judge_the_step_time_and_the_bit_exactness():
    slow = _result(precision="q7", step_us_p50=4100.0)
    checks = {c.name: c for c in device._checks([_result(), slow])}
    ok = checks["InvertedPendulum-v5-ncp q15 on ATmega328P 16 MHz: <= 4000 µs per step"]
    late = checks["InvertedPendulum-v5-ncp q7 on ATmega328P 16 MHz: <= 4000 µs per step"]
    assert ok.met is True and late.met is False
    assert checks["every device step equals the host build of the export"].met is True
    mismatch = device._checks([_result(bit_exact_vs_host_build=False)])
    assert mismatch[-1].met is False


def test_quick_rows_are_the_target_rows():
    want = {(t, s, p) for t, s, ps, _ in device.TARGETS for p in ps}
    assert {(r.target, r.stem, r.precision) for r in device.QUICK} == want
    assert set(device.QUICK) <= set(device.FULL)
