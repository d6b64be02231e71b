"""Test helpers for users' own suites: replaying an episode log is a one-line regression test.

Example (pytest)::

    from liquidnode.controller.testing import assert_replays

    def test_policy_still_balances_like_yesterday():
        assert_replays("tests/fixtures/pendulum.mcap")                   # recorded policy
        assert_replays("tests/fixtures/pendulum.mcap", policy="new.safetensors", tol=1e-3)
        assert_replays("tests/fixtures/pendulum.mcap", sim=True)         # physics unchanged

Parametrise over a folder of golden logs with :func:`golden_logs`::

    @pytest.mark.parametrize("log", golden_logs("tests/fixtures"), ids=lambda p: p.name)
    def test_golden(log):
        assert_replays(log)
"""

from __future__ import annotations

import os
from pathlib import Path

from liquidnode.controller.logs.episode import read_log
from liquidnode.controller.logs.replay import (
    PolicyReplay,
    PolicySource,
    SimReplay,
    replay_policy,
    replay_sim,
)


def assert_replays(
    log_path: str | os.PathLike[str],
    policy: PolicySource = None,
    tol: float = 0.0,
    *,
    sim: bool = False,
    sim_tol: float = 1e-9,
    episode: int | None = None,
    check_policy: bool = True,
) -> list[tuple[PolicyReplay | None, SimReplay | None]]:
    """Replay a log and fail (AssertionError) if it no longer reproduces.

    Args:
        log_path: an MCAP log from ``liquidnode sim`` / ``deploy``.
        policy: None (the policy attached to the log), a policy file path, or a policy object.
        tol: largest allowed |replayed - logged| raw action, env units (0: bit-for-bit).
        sim: also re-drive the simulation with the logged sent actions.
        sim_tol: largest allowed |simulated - logged| observation, env units.
        episode: replay only this episode index (default: every episode).
        check_policy: False to skip the policy replay (e.g. sim-only checks).
    Returns:
        Per episode, the policy and simulation replay results (None where not run).
    Raises:
        AssertionError: a deviation beyond tolerance, naming the episode, tick and size.
        LogFileError: the log cannot be read.
    """
    log = read_log(log_path)
    episodes = log.episodes if episode is None else [log.episodes[episode]]
    assert episodes, f"log {log_path} holds no ticks"
    results: list[tuple[PolicyReplay | None, SimReplay | None]] = []
    failures: list[str] = []
    for ep in episodes:
        pol = replay_policy(ep, policy) if check_policy else None
        if pol is not None and pol.max_action_dev > tol:
            failures.append(
                f"episode {ep.index}: policy ({pol.policy}) action deviates by "
                f"{pol.max_action_dev:.6g} > tol {tol:g} (worst at tick {pol.worst_tick})"
            )
        simulated = replay_sim(ep) if sim else None
        if simulated is not None and simulated.max_obs_drift > sim_tol:
            failures.append(
                f"episode {ep.index}: simulation drifts by {simulated.max_obs_drift:.6g} > "
                f"sim_tol {sim_tol:g} (worst at tick {simulated.worst_tick})"
            )
        results.append((pol, simulated))
    assert not failures, f"log {log_path} does not replay:\n  " + "\n  ".join(failures)
    return results


def golden_logs(directory: str | os.PathLike[str]) -> list[Path]:
    """The ``*.mcap`` files in ``directory``, sorted by name (for ``pytest.mark.parametrize``)."""
    return sorted(Path(directory).glob("*.mcap"))
