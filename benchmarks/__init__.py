"""Side-by-side benchmarks: ``liquidnode bench`` (``python -m liquidnode.benchmarks``).

One module per comparison, each with ``run(quick, tiny) -> harness.Section``:
``policy_latency`` (runtime vs. ncps torch vs. a C floor), ``constant_cost`` (liquid vs. a
KV-cache transformer over 100k ticks), ``loop_timing`` (CycleTimer vs. time.sleep),
``serial_rtt`` (bridge vs. raw pty echo), ``sim_overhead`` (closed loop vs. bare env.step).
``report`` renders the table and the README section; ``transformer`` and ``cfloor`` are the
baselines. ``train_vs_sb3`` (training comparison) runs on its own.
"""
