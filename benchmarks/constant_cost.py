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

from benchmarks.harness import Check, Section, fmt_us, rss_bytes
from benchmarks.transformer import CausalTransformerPolicy

KEY = "constant_cost"
TITLE = "Constant cost: per-tick latency and memory at 1k / 10k / 100k ticks"
CHECKPOINTS = (1_000, 10_000, 100_000)
BLOCK = 100
MIB = 1024 * 1024


def _liquid_run(checkpoints: tuple[int, ...], window: int, obs: np.ndarray) -> dict[int, tuple]:
    """One liquid run: checkpoint -> (median s/tick in the window, RSS bytes)."""
    from controller.policy import random_policy

    options = {"backbone_units": 128}
    policy = random_policy(17, 6, cell="cfc", units=64, seed=0, cell_options=options)
    clock = time.perf_counter
    pool = len(obs)
    out = {}
    tick = 0
    blocks: list[tuple[int, float]] = []
    for cp in checkpoints:
        while tick < cp:
            n = min(BLOCK, cp - tick)
            t0 = clock()
            for i in range(tick, tick + n):
                policy.step(obs[i % pool], 0.02)
            blocks.append((tick + n, (clock() - t0) / n))
            tick += n
        recent = [t for end, t in blocks if end > cp - window]
        out[cp] = (statistics.median(recent), rss_bytes())
        blocks = blocks[-(window // BLOCK) :]
    return out


def _transformer_run(checkpoints: tuple[int, ...], window: int, obs: np.ndarray) -> dict:
    """Transformer: checkpoint -> (median s/tick over a window at that context, RSS, cache)."""
    model = CausalTransformerPolicy()
    clock = time.perf_counter
    pool = len(obs)
    out = {}
    block = max(1, min(BLOCK, window // 10))
    rng = np.random.default_rng(5)
    for cp in checkpoints:
        if model.context < cp:
            model.prefill(rng.normal(size=(cp - model.context, 17)).astype(np.float32))
        model.reserve(model.context + window)  # no cache doubling inside the timed window
        rss = rss_bytes()
        times = []
        for b in range(window // block):
            t0 = clock()
            for i in range(block):
                model.step(obs[(b * block + i) % pool])
            times.append((clock() - t0) / block)
        out[cp] = (statistics.median(times), rss, model.cache_bytes)
    return out


def run(quick: bool = False, tiny: bool = False) -> Section:
    """Run the comparison; ``quick`` shortens it, ``tiny`` is for the smoke test."""
    checkpoints = (200, 1_000, 2_000) if tiny else CHECKPOINTS
    repeats = 1 if tiny else 3 if quick else 5
    window = 200 if tiny else 2_000
    t_window = 20 if tiny else 200 if quick else 1_000
    obs = np.random.default_rng(0).normal(size=(997, 17))
    try:
        from controller.cells import kernel

        status = kernel.kernel_status()
    except ImportError as exc:
        return Section(KEY, TITLE, unavailable=f"runtime missing: {exc}")

    rss0 = rss_bytes()
    runs = [_liquid_run(checkpoints, window, obs) for _ in range(repeats)]
    liquid = {
        cp: (
            statistics.median(r[cp][0] for r in runs),
            statistics.median(r[cp][1] for r in runs),
        )
        for cp in checkpoints
    }
    trans = _transformer_run(checkpoints, t_window, obs)
    n_params = CausalTransformerPolicy().n_params

    sec = Section(
        KEY,
        TITLE,
        columns=[
            "tick (context)",
            "liquid µs/tick",
            "liquid RSS MiB",
            "transformer µs/tick",
            "transformer RSS MiB",
            "transformer KV cache MiB",
            "transformer / liquid",
        ],
    )
    for cp in checkpoints:
        lt, lr = liquid[cp]
        tt, tr, cache = trans[cp]
        sec.rows.append(
            [
                f"{cp:,}",
                fmt_us(lt),
                f"{lr / MIB:.1f}",
                fmt_us(tt),
                f"{tr / MIB:.1f}",
                f"{cache / MIB:.1f}",
                f"{tt / lt:.1f}x",
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
        f"liquid: CfC-64 policy (43,910 weights; kernel status: {status}), every tick run up to "
        f"{last:,}, median of {BLOCK}-tick blocks in the last {window:,} ticks before each "
        f"checkpoint, median of {repeats} runs; RSS of the whole process "
        f"(it was {rss0 / MIB:.0f} MiB before the runs).",
        f"transformer: 1 layer, d_model 64, 4 heads, MLP 192 ({n_params:,} weights), KV cache "
        f"filled to each context length by an exact one-pass prefill, then {t_window} real ticks "
        "timed (median of blocks); it runs after the liquid runs, so its RSS includes theirs.",
        f"transformer per-tick cost grows {growth:.1f}x from {first:,} to {last:,} ticks of "
        f"context; its KV cache holds {trans[last][2] / MIB:.1f} MiB at {last:,}.",
    ]
    sec.data = {
        "liquid": {str(cp): {"us": v[0] * 1e6, "rss_bytes": v[1]} for cp, v in liquid.items()},
        "transformer": {
            str(cp): {"us": v[0] * 1e6, "rss_bytes": v[1], "kv_cache_bytes": v[2]}
            for cp, v in trans.items()
        },
        "transformer_params": n_params,
    }
    return sec
