"""Comparison 2: cost per tick over time, liquid policy vs. a transformer that keeps its context.

Liquid: the CfC-64 policy (17 obs, 6 actions, 128-unit backbone; random weights, numpy-only
:func:`controller.policy.random_policy`, compiled kernel when available) really runs every
tick up to the last checkpoint (100k), on observations cycled from a fixed pool. Its latency
at a checkpoint is the median time per tick of the 100-tick blocks in the last ``window``
ticks before it; its memory is the process RSS there. The run is repeated and the medians over
repeats are reported.

Transformer: :class:`benchmarks.transformer.CausalTransformerPolicy` (one layer, d_model 64,
about the same parameter count), KV cache of its whole context. Stepping it through 100k
ticks costs minutes (its cost per tick grows with the context), so its cache is filled to each
checkpoint with :meth:`~benchmarks.transformer.CausalTransformerPolicy.prefill` (exact for one
layer: a position's key and value depend only on its observation), then a window of real
ticks is timed at that context length. Memory: process RSS after the fill, and the cache size.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from liquidnode.benchmarks.harness import Check, Section, fmt_us, rss_bytes
from liquidnode.benchmarks.transformer import CausalTransformerPolicy

KEY = "constant_cost"
TITLE = "Constant cost: per-tick latency and memory at 1k / 10k / 100k ticks"
CHECKPOINTS = (1_000, 10_000, 100_000)
BLOCK = 100  # ticks per block of the long run
SIDE_BLOCK = 10  # ticks per timed block side by side: short, so few are hit by preemption
MIB = 1024 * 1024


def _liquid(checkpoints: tuple[int, ...], obs: np.ndarray, rounds: int) -> dict[int, tuple]:
    """Liquid: checkpoint -> (median s/tick at that tick, RSS bytes there, in-flight s/tick)."""
    from liquidnode.controller.policy import random_policy

    options = {"backbone_units": 128}
    policy = random_policy(17, 6, cell="cfc", units=64, seed=0, cell_options=options)
    clock = time.perf_counter
    pool = len(obs)
    snaps: dict[int, tuple] = {}
    tick = 0
    for cp in checkpoints:  # really run every tick, keep the state and RSS at each checkpoint
        last = []
        while tick < cp:
            n = min(BLOCK, cp - tick)
            t0 = clock()
            for i in range(tick, tick + n):
                policy.step(obs[i % pool], 0.02)
            last.append((clock() - t0) / n)
            tick += n
        snaps[cp] = (policy.state, rss_bytes(), statistics.median(last[-20:]))
    # side by side: the state at each checkpoint, its next ticks, rotated round by round
    times: dict[int, list[float]] = {cp: [] for cp in checkpoints}
    for r in range(rounds):
        k = r % len(checkpoints)
        for cp in checkpoints[k:] + checkpoints[:k]:
            policy.state = snaps[cp][0]
            t0 = clock()
            for i in range(cp, cp + SIDE_BLOCK):
                policy.step(obs[i % pool], 0.02)
            times[cp].append((clock() - t0) / SIDE_BLOCK)
    return {cp: (statistics.median(times[cp]), snaps[cp][1], snaps[cp][2]) for cp in checkpoints}


def _transformer(checkpoints: tuple[int, ...], obs: np.ndarray, rounds: int, block: int) -> dict:
    """Transformer: checkpoint -> (median s/tick at that context, RSS added, KV cache bytes)."""
    clock = time.perf_counter
    pool = len(obs)
    rng = np.random.default_rng(5)
    models, added = {}, {}
    for cp in checkpoints:
        before = rss_bytes()
        model = CausalTransformerPolicy()
        model.prefill(rng.normal(size=(cp, 17)).astype(np.float32))
        model.reserve(cp + rounds * block)  # no cache doubling inside the timed ticks
        models[cp], added[cp] = model, rss_bytes() - before
    times: dict[int, list[float]] = {cp: [] for cp in checkpoints}
    for r in range(rounds):
        k = r % len(checkpoints)
        for cp in checkpoints[k:] + checkpoints[:k]:
            model = models[cp]
            t0 = clock()
            for i in range(block):
                model.step(obs[(r * block + i) % pool])
            times[cp].append((clock() - t0) / block)
    return {
        cp: (statistics.median(times[cp]), added[cp], models[cp].cache_bytes) for cp in checkpoints
    }


def run(quick: bool = False, tiny: bool = False) -> Section:
    """Run the comparison; ``quick`` shortens it, ``tiny`` is for the smoke test."""
    checkpoints = (200, 1_000, 2_000) if tiny else CHECKPOINTS
    rounds = 3 if tiny else 301 if quick else 1001
    t_rounds = 3 if tiny else 31 if quick else 61
    t_block = 2 if tiny else 5
    obs = np.random.default_rng(0).normal(size=(997, 17))
    try:
        from liquidnode.controller.cells import kernel

        status = kernel.kernel_status()
    except ImportError as exc:
        return Section(KEY, TITLE, unavailable=f"runtime missing: {exc}")

    rss0 = rss_bytes()
    liquid = _liquid(checkpoints, obs, rounds)
    trans = _transformer(checkpoints, obs, t_rounds, t_block)
    n_params = CausalTransformerPolicy().n_params

    sec = Section(
        KEY,
        TITLE,
        columns=[
            "tick (context)",
            "liquid µs/tick",
            "liquid µs/tick in flight",
            "liquid process RSS MiB",
            "transformer µs/tick",
            "transformer memory MiB",
            "transformer KV cache MiB (used)",
            "transformer / liquid",
        ],
    )
    for cp in checkpoints:
        lt, lr, lf = liquid[cp]
        tt, tm, cache = trans[cp]
        sec.rows.append(
            [
                f"{cp:,}",
                fmt_us(lt),
                fmt_us(lf),
                f"{lr / MIB:.2f}",
                fmt_us(tt),
                f"{tm / MIB:.1f}",
                f"{cache / MIB:.1f}",
                f"{tt / lt:.0f}x",
            ]
        )
    first, last = checkpoints[0], checkpoints[-1]
    lat_change = liquid[last][0] / liquid[first][0] - 1.0
    mem_change = liquid[last][1] / liquid[first][1] - 1.0
    sec.checks.append(
        Check(
            f"liquid latency at {last:,} ticks within 5% of {first:,}",
            f"{lat_change * 100:+.1f}%",
            abs(lat_change) <= 0.05,
        )
    )
    sec.checks.append(
        Check(
            f"liquid memory (RSS) at {last:,} ticks within 5% of {first:,}",
            f"{mem_change * 100:+.2f}% ({(liquid[last][1] - liquid[first][1]) / 1024:+.0f} KiB)",
            abs(mem_change) <= 0.05,
        )
    )
    growth = trans[last][0] / trans[first][0]
    sec.notes += [
        f"liquid: CfC-64 policy (43,910 weights; kernel status: {status}) really runs every "
        f"tick up to {last:,}; its state is kept at each checkpoint, then the {SIDE_BLOCK} ticks "
        f"that follow each checkpoint are timed from that state, checkpoints rotated, {rounds} "
        f"rounds (median); 'in flight' = median of the last 20 {BLOCK}-tick blocks before the "
        f"checkpoint during the long run. RSS of the whole process ({rss0 / MIB:.0f} MiB "
        "before the run).",
        f"transformer: 1 layer, d_model 64, 4 heads, MLP 192 ({n_params:,} weights); one model "
        "per context length, its KV cache filled by an exact one-pass prefill; memory = RSS "
        f"added by that fill; {t_block}-tick blocks timed at each context, rotated, {t_rounds} "
        f"rounds (median; the context grows by at most {t_rounds * t_block} ticks meanwhile).",
        f"transformer per-tick cost grows {growth:.1f}x from {first:,} to {last:,} ticks of "
        f"context; its KV cache holds {trans[last][2] / MIB:.1f} MiB at {last:,}.",
    ]
    sec.data = {
        "liquid": {
            str(cp): {"us": v[0] * 1e6, "rss_bytes": v[1], "in_flight_us": v[2] * 1e6}
            for cp, v in liquid.items()
        },
        "transformer": {
            str(cp): {"us": v[0] * 1e6, "rss_added_bytes": v[1], "kv_cache_bytes": v[2]}
            for cp, v in trans.items()
        },
        "transformer_params": n_params,
    }
    return sec
