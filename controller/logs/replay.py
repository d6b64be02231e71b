"""Replay a logged episode: through the policy (regression test) or through the simulation.

Policy replay (:func:`replay_policy`): reset the policy (hidden state := the logged initial
state, zeros unless the loop recorded one), feed it the logged observations and measured
``dt`` tick by tick, and compare its actions with the logged raw actions (and its hidden
state with the logged state). The runtime is deterministic numpy, so replaying a log with the
policy that wrote it on the same machine reproduces the actions bit-for-bit; another
machine's BLAS or CPU kernels may differ in the last bits (float32 cell), hence the
tolerance. Ticks whose logged observation is non-finite are skipped, as the loop skipped the
policy on them.

Simulation replay (:func:`replay_sim`): rebuild the plant from the log's metadata, reset it
with the episode's seed (its initial state), apply the logged *sent* actions one control
period each and compare the observations it produces with the logged ones. MuJoCo is
deterministic, so a sim log replays exactly; a drift means the model, the environment's
version or the physics changed.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import numpy as np

from liquidnode.controller.errors import LogFileError
from liquidnode.controller.logs.episode import Episode
from liquidnode.controller.plant import Plant


class ReplayablePolicy(Protocol):
    """What a policy replay needs (:class:`controller.policy.Policy` is one).

    ``step`` maps an observation ``(obs_dim,)`` and the tick's ``dt`` in seconds to a raw
    action ``(act_dim,)``; ``state`` is the hidden state, set to the logged initial state
    before the first tick when the log has one.
    """

    obs_dim: int
    act_dim: int
    state: np.ndarray

    def reset(self) -> None: ...
    def step(self, obs: np.ndarray, dt: float) -> np.ndarray: ...


#: A policy object, a path to a policy file, or None (the policy the log names).
PolicySource: TypeAlias = ReplayablePolicy | str | os.PathLike[str] | None


@dataclass
class PolicyReplay:
    """Result of a policy replay.

    Attributes:
        episode: episode index.
        ticks: ticks compared.
        max_action_dev: max |replayed - logged| raw action over ticks and channels, env units.
        max_action_dev_per_channel: the same per action channel, ``(act_dim,)``.
        worst_tick: tick of the largest action deviation (-1 if none).
        max_state_dev: max |replayed - logged| hidden state (None: state not logged).
        bit_exact: every compared action (and state, if logged) is identical.
        policy: where the policy came from (``"attached"`` or a path).
        actions: the replayed actions, float64 ``(n, act_dim)`` (NaN where not stepped); not
            in :meth:`to_json`.
    """

    episode: int
    ticks: int
    max_action_dev: float
    max_action_dev_per_channel: list[float]
    worst_tick: int
    max_state_dev: float | None
    bit_exact: bool
    policy: str
    actions: np.ndarray | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict with the attributes above (``actions`` left out)."""
        return {k: v for k, v in self.__dict__.items() if k != "actions"}


@dataclass
class SimReplay:
    """Result of a simulation replay.

    Attributes:
        episode: episode index.
        ticks: observations compared (the reset one included).
        max_obs_drift: max |simulated - logged| observation, env units.
        max_obs_drift_per_channel: the same per observation channel, ``(obs_dim,)``.
        worst_tick: tick of the largest drift (-1 if none).
        plant: the rebuilt plant's name.
    """

    episode: int
    ticks: int
    max_obs_drift: float
    max_obs_drift_per_channel: list[float]
    worst_tick: int
    plant: str

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict with the attributes above."""
        return dict(self.__dict__)


def load_policy_for(episode: Episode, policy: PolicySource = None) -> tuple[ReplayablePolicy, str]:
    """The policy to replay ``episode`` with, and a label saying where it came from.

    Args:
        episode: the logged episode (its attached policy file is the default).
        policy: None (use the attached policy file, else the recorded path if its sha256
            matches), a path to a policy file, or a policy object with ``reset``/``step``.
    Raises:
        LogFileError: no policy given and the log carries none that can be found.
    """
    from liquidnode.controller.policy import Policy

    if policy is not None and not isinstance(policy, (str, os.PathLike)):
        return policy, type(policy).__name__
    if policy is not None:
        return Policy.load(policy), str(policy)
    if episode.policy_bytes is not None:
        with tempfile.TemporaryDirectory(prefix="liquidnode-replay-") as tmp:
            path = Path(tmp) / "policy.safetensors"
            path.write_bytes(episode.policy_bytes)
            return Policy.load(path), "attached"
    run = episode.metadata.get("run") or {}
    recorded = run.get("policy_path")
    if recorded and Path(recorded).is_file():
        from liquidnode.controller.run_metadata import file_sha256

        if run.get("policy_sha256") in (None, file_sha256(recorded)):
            return Policy.load(recorded), str(recorded)
        raise LogFileError(
            f"log {episode.path} names policy {recorded}, but that file changed since (sha256 "
            "differs) and the log has no attached copy; pass --policy to compare anyway"
        )
    raise LogFileError(
        f"log {episode.path} has no attached policy and its recorded policy "
        f"{recorded!r} is not found; pass --policy PATH"
    )


def replay_policy(episode: Episode, policy: PolicySource = None) -> PolicyReplay:
    """Feed the logged observations and dt to a policy and compare actions (see module doc).

    Args:
        episode: the logged episode.
        policy: as for :func:`load_policy_for`.
    Raises:
        LogFileError: no policy available; SpaceMismatchError: its sizes differ from the log's.
    """
    from liquidnode.controller.errors import SpaceMismatchError

    pol, label = load_policy_for(episode, policy)
    n = episode.ticks
    if (pol.obs_dim, pol.act_dim) != (episode.obs.shape[1], episode.action.shape[1]):
        raise SpaceMismatchError(
            f"policy {label} maps {pol.obs_dim} observations to {pol.act_dim} actions but log "
            f"{episode.path} has {episode.obs.shape[1]} and {episode.action.shape[1]}"
        )
    pol.reset()
    set_latency = getattr(pol, "set_latency", None)
    if set_latency is not None and getattr(pol, "latency_input", None) is not None:
        if episode.latency_ticks is None:  # told what the loop told it
            raise LogFileError(
                f"policy {label} takes the actuation latency as an input but log "
                f"{episode.path} (episode {episode.index}) does not say what it was told"
            )
        set_latency(episode.latency_ticks)
    initial = episode.initial_state
    if initial is not None:
        pol.state = initial
    replayed = np.full_like(episode.action, np.nan)
    logged_state = episode.state
    states = None
    if logged_state is not None and getattr(pol, "state_dim", None) == logged_state.shape[1]:
        states = np.full(logged_state.shape, np.nan, np.float32)
    stepped = np.zeros(n, dtype=bool)
    for i in range(n):
        obs = episode.obs[i]
        if not np.isfinite(obs).all():
            continue  # the loop held its action and did not step the policy
        replayed[i] = pol.step(obs, float(episode.dt[i]))
        stepped[i] = True
        if states is not None:
            states[i] = pol.state
    dev = _deviation(replayed[stepped], episode.action[stepped])
    per_channel = dev.max(axis=0) if dev.size else np.zeros(episode.action.shape[1])
    state_dev = None
    bit_exact = bool(np.array_equal(replayed[stepped], episode.action[stepped], equal_nan=True))
    if states is not None and episode.state is not None:
        sdev = _deviation(states[stepped], episode.state[stepped])
        state_dev = float(sdev.max()) if sdev.size else 0.0
        bit_exact = bit_exact and states[stepped].tobytes() == episode.state[stepped].tobytes()
    worst = -1
    if dev.size and dev.max() > 0:
        worst = int(episode.tick[stepped][int(np.argmax(dev.max(axis=1)))])
    return PolicyReplay(
        episode=episode.index,
        ticks=int(stepped.sum()),
        max_action_dev=float(per_channel.max()) if per_channel.size else 0.0,
        max_action_dev_per_channel=[float(v) for v in per_channel],
        worst_tick=worst,
        max_state_dev=state_dev,
        bit_exact=bit_exact,
        policy=label,
        actions=replayed,
    )


def plant_from_metadata(episode: Episode) -> Plant:
    """Rebuild the simulated plant a log was recorded on (from its ``plant`` metadata).

    A Gymnasium plant is rebuilt from its id; an MJCF plant from its model file as recorded,
    else from the copy attached to the log (``model.xml``).

    Raises:
        LogFileError: the log's plant is not a simulation liquidnode can rebuild.
    """
    from liquidnode.controller.simulators import make_plant

    run = episode.metadata.get("run") or {}
    plant = run.get("plant") or {}
    info = plant.get("info") or {}
    rate = plant.get("rate_hz") or run.get("rate_hz")
    source = info.get("source")
    if source == "gymnasium" and info.get("env_id"):
        return make_plant(info["env_id"], rate_hz=rate, max_ticks=info.get("max_episode_steps"))
    if source == "mjcf" and info.get("model_file"):
        model = Path(info["model_file"])
        if not model.is_file() and episode.model_bytes is not None:
            tmp = Path(tempfile.mkdtemp(prefix="liquidnode-replay-"))
            model = tmp / model.name
            model.write_bytes(episode.model_bytes)
        if not model.is_file():
            raise LogFileError(
                f"log {episode.path} was recorded on MJCF model {info['model_file']}, which is "
                "not found (run replay from the directory the log was recorded in)"
            )
        return make_plant(model, rate_hz=rate, max_ticks=info.get("max_ticks"))
    raise LogFileError(
        f"log {episode.path} was recorded on plant {plant.get('name')!r} (source {source!r}), "
        "which is not a simulation that --sim can rebuild (policy replay works on any log)"
    )


def replay_sim(episode: Episode, plant: Plant | None = None) -> SimReplay:
    """Re-drive the simulation with the logged sent actions and measure observation drift.

    Args:
        episode: the logged episode (needs its seed, from the ``episode_start`` event).
        plant: a plant to use instead of rebuilding it from the log's metadata.
    Raises:
        LogFileError: the plant cannot be rebuilt, or the episode has no seed.
    """
    plant = plant if plant is not None else plant_from_metadata(episode)
    if episode.seed is None:
        raise LogFileError(
            f"episode {episode.index} of {episode.path} has no recorded seed; a simulation "
            "cannot be reset to its initial state"
        )
    n = episode.ticks
    simulated = np.full_like(episode.obs, np.nan)
    plant.connect()
    try:
        simulated[0] = plant.reset(episode.seed).values
        for i in range(n - 1):
            plant.act(np.asarray(episode.sent[i], dtype=np.float64))
            simulated[i + 1] = plant.observe().values
    finally:
        plant.disconnect()
    drift = _deviation(simulated, episode.obs)
    per_channel = drift.max(axis=0) if drift.size else np.zeros(episode.obs.shape[1])
    worst = -1
    if drift.size and drift.max() > 0:
        worst = int(episode.tick[int(np.argmax(drift.max(axis=1)))])
    return SimReplay(
        episode=episode.index,
        ticks=n,
        max_obs_drift=float(per_channel.max()) if per_channel.size else 0.0,
        max_obs_drift_per_channel=[float(v) for v in per_channel],
        worst_tick=worst,
        plant=str(plant.spec.name),
    )


def _deviation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| elementwise, 0 where both are NaN, inf where exactly one is."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    one_nan = np.isnan(a) ^ np.isnan(b)
    with np.errstate(invalid="ignore"):
        dev = np.abs(a - b)
    dev[both_nan] = 0.0
    dev[one_nan] = np.inf
    return dev
