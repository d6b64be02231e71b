"""Recurrent PPO for liquid policies, as one story (CleanRL style).

Read top to bottom: set-up, then per rollout (1) act in the vectorised envs with the liquid
cell, carrying its hidden state and feeding it each tick's true control period, (2) GAE,
(3) PPO epochs over sequence chunks with truncated BPTT from the stored chunk-start states,
(4) logging, periodic deterministic evaluation of the *exported numpy policy*, checkpoints.
The result is a runtime policy file (safetensors) with frozen observation normalisation,
action mapping and provenance. The parts live in small modules: :mod:`.agent`,
:mod:`.envs`, :mod:`.normalization`, :mod:`.gae`, :mod:`.rollout.buffer`, :mod:`.export`,
:mod:`.evaluate`, :mod:`.checkpoint`.

Why not a library: sb3-contrib's ``RecurrentPPO`` hard-codes LSTM states and gives the cell
no per-step time input; CleanRL is a set of scripts, not a library. The algorithm here follows
CleanRL's ``ppo_continuous_action.py`` (obs/reward normalisation, GAE, clipped objective,
annealed Adam) with the recurrent parts of its ``ppo_atari_lstm.py`` (stored states, resets at
episode starts), and a separate MLP critic (see :mod:`.agent`).

Time input: ``ts = dt * time_scale`` with ``time_scale = 1 / nominal control period`` so the
cell sees ``ts = 1`` at the nominal rate (the ncps default the cells are initialised for) and
the true, possibly jittered, period otherwise. An episode's first tick uses the nominal period.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.train import checkpoint as ckpt
from liquidnode.controller.train.agent import Actor, scale_output_layer, to_tensor
from liquidnode.controller.train.config import (
    TrainConfig,
    parse_obs_cost,
    run_paths,
    with_run_paths,
)
from liquidnode.controller.train.envs import (
    check_obs_cost,
    env_info,
    privileged_dim,
    randomization_record,
    told_latency,
)
from liquidnode.controller.train.evaluate import evaluate_policy
from liquidnode.controller.train.export import ExportSpec, export_policy
from liquidnode.controller.train.gae import compute_gae
from liquidnode.controller.train.normalization import ObsNormalizer, RewardScaler
from liquidnode.controller.train.rollout.buffer import sequences
from liquidnode.controller.train.rollout.collector import (
    SQUASH,
    Acting,
    Agent,
    CollectorFactory,
    in_process_collector,
    scaled_rewards,
)

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    from liquidnode.controller.policy import Policy


@dataclass
class TrainResult:
    """What :func:`train` produced.

    Attributes:
        policy_path: the written policy file.
        steps: environment steps trained in total (including a resumed checkpoint's).
        wall_time_s: wall time in seconds, a resumed checkpoint's included.
        evaluation: final deterministic evaluation (``mean_return``, ``std_return``,
            ``returns``, ``episodes``, ``seed``).
        history: ``(step, mean_return)`` of every periodic evaluation.
    """

    policy_path: Path
    steps: int
    wall_time_s: float
    evaluation: dict[str, Any]
    history: list[tuple[int, float]] = field(default_factory=list)


def train(
    cfg: TrainConfig, command: str = "", collector: CollectorFactory | None = None
) -> TrainResult:
    """Train a liquid policy with recurrent PPO and write its policy file.

    Writes the run folder of :func:`~liquidnode.controller.train.config.run_paths`: the policy
    (``cfg.out``, else ``<run dir>/policy.safetensors``), ``checkpoints/latest.pt`` and
    TensorBoard scalars in ``tb/``.

    Args:
        cfg: the configuration (validated here; ``run_dir`` / ``out`` resolved if unset).
        command: the command line to record in the policy's provenance.
        collector: builds the source of experience (see
            :mod:`~liquidnode.controller.train.rollout.collector`); default: the ``cfg.envs``
            environments in this process (:func:`in_process_collector`).

    Raises:
        LiquidNodeError: bad configuration, unknown env, non-Box action space, or a resume
            checkpoint that does not match the env.
    """
    # ---- set-up -----------------------------------------------------------------------------
    cfg.validate()
    cfg = with_run_paths(cfg)
    paths = run_paths(cfg)
    t_start = time.perf_counter()
    info = env_info(cfg.env)  # raises on unknown ids and non-Box action spaces
    if cfg.obs_cost is not None:
        check_obs_cost(parse_obs_cost(cfg.obs_cost), info.obs_dim)
    # The spec as resolved (raises on a bad one before any work); recorded in provenance.
    randomization = randomization_record(cfg.env, cfg.randomize) if cfg.randomize else None
    eval_randomize = cfg.randomize if cfg.eval_randomize else None
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    out, ckpt_path = paths.policy, paths.checkpoint
    out.parent.mkdir(parents=True, exist_ok=True)
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    told = None
    if cfg.latency_input:  # the cell's latency input, from the spec's latency range
        told = told_latency(cfg.env, randomization, info.control_period_s)
    privileged = 0  # the critic's privileged features (validate: only with --randomize)
    if cfg.privileged_critic and cfg.randomize:
        privileged = privileged_dim(cfg.env, cfg.randomize)
    acting = Acting.of(info, told, privileged)

    agent = Agent.build(cfg, info, privileged)
    actor, critic, obs_norm = agent.actor, agent.critic, agent.obs_norm
    scale_output_layer(actor, 0.01)
    optimizer = torch.optim.Adam(
        list(actor.parameters()) + list(critic.parameters()), lr=cfg.lr, eps=1e-5
    )
    reward_scaler = RewardScaler(cfg.envs, cfg.gamma)
    warm = None
    if cfg.init_from and not cfg.resume:  # fine-tune a policy file's weights
        from liquidnode.controller.train.warm_start import warm_start

        warm = warm_start(
            cfg.init_from, actor.cell, obs_norm, cfg.env, cfg.latency_input, cfg.action_low_pass
        )
    global_step, prior_wall = 0, 0.0
    if cfg.resume:
        state = ckpt.load(cfg.resume, info, cfg)
        ckpt.restore(cfg.resume, state, actor, critic, optimizer, obs_norm, reward_scaler)
        global_step, prior_wall = int(state["global_step"]), float(state["wall_time_s"])
        if cfg.reset_log_std is not None:  # re-open collapsed exploration
            with torch.no_grad():
                actor.log_std.fill_(cfg.reset_log_std)
        if global_step > cfg.steps:
            raise LiquidNodeError(
                f"checkpoint {cfg.resume} is already at {global_step} steps, past --steps "
                f"{cfg.steps}; pass --steps {global_step} to write its policy as it is, or "
                f"more to train further"
            )
    export_only = cfg.resume is not None and global_step == cfg.steps  # a snapshot, untrained

    spec = ExportSpec(
        info=info,
        cell=cfg.cell,
        squash=SQUASH,
        time_scale=acting.time_scale,
        act_scale=acting.act_scale,
        act_offset=acting.act_offset,
        latency_input=told,
        low_pass_hz=cfg.action_low_pass,
    )

    def make_policy(provenance: dict[str, Any] | None = None) -> Policy:
        return export_policy(actor.cell, obs_norm, spec, provenance or {})

    # no experience to collect for a snapshot (nor Ray workers to start)
    source = None if export_only else (collector or in_process_collector)(cfg, info, acting)
    writer = _tensorboard(cfg, paths.tensorboard)
    planned = global_step if export_only else cfg.planned_steps(global_step)
    bar = _progress(cfg, global_step, planned)
    num_updates = (planned - global_step) // cfg.batch_size
    recent: list[float] = []
    history: list[tuple[int, float]] = []
    best_return, best_policy = -np.inf, None

    interrupted = False
    try:
        if source is not None:
            source.reset(seed=cfg.seed + global_step)
        if cfg.eval_interval and num_updates:  # the starting point of the learning curve
            ev = evaluate_policy(
                make_policy(), cfg.env, cfg.eval_episodes, cfg.eval_seed, eval_randomize
            )
            history.append((global_step, ev["mean_return"]))
            # a candidate too: a fine-tune that finds nothing better writes what it started from
            best_return, best_policy = ev["mean_return"], _snapshot(actor, obs_norm)
            if writer:
                writer.add_scalar("eval/mean_return", ev["mean_return"], global_step)
        for update in range(1, num_updates + 1):
            if cfg.anneal_lr:
                frac = max(1.0 - global_step / cfg.steps, 0.05)  # resume-consistent
                optimizer.param_groups[0]["lr"] = cfg.lr * frac

            # ---- 1. rollout: act with the liquid cell, carry its state ----------------------
            assert source is not None  # a snapshot (export_only) runs no update
            rollout = source.collect(agent, cfg.rollout_steps)
            buf = rollout.buffer
            if rollout.raw_obs is not None:  # acted with frozen statistics: fold them in now
                obs_norm.rms.update(rollout.raw_obs.reshape(-1, info.obs_dim))
            scaler = reward_scaler if cfg.normalize_reward else None
            buf.rewards[:] = scaled_rewards(rollout, scaler, cfg.gamma)
            for t, ret in rollout.episodes:
                recent.append(ret)
                if writer:
                    writer.add_scalar("charts/episodic_return", ret, global_step + t * cfg.envs)
            global_step += cfg.rollout_steps * cfg.envs
            recent = recent[-20:]

            # ---- 2. advantages ---------------------------------------------------------------
            with torch.no_grad():
                after = acting.cell_input(obs_norm(rollout.last_obs), rollout.last_latency_s)
                last_value = critic(to_tensor(after), to_tensor(rollout.last_privileged)).numpy()
            advantages, returns = compute_gae(
                buf.rewards, buf.values, buf.dones, last_value, cfg.gamma, cfg.gae_lambda
            )

            # ---- 3. PPO epochs over sequence chunks (truncated BPTT) -------------------------
            seqs = {
                k: to_tensor(v)
                for k, v in sequences(
                    buf, cfg.seq_len, advantages=advantages, returns=returns
                ).items()
            }
            warming = update <= cfg.critic_warmup
            n_seq = seqs["obs"].shape[0]
            per_mb = n_seq // cfg.minibatches
            stats: dict[str, float] = {}
            for _epoch in range(cfg.epochs):
                order = rng.permutation(n_seq)
                for m in range(cfg.minibatches):
                    idx = torch.as_tensor(order[m * per_mb : (m + 1) * per_mb])
                    mb = {k: v[idx] for k, v in seqs.items()}
                    mean = actor.unroll(mb["obs"], mb["ts"], mb["starts"], mb["h0"])
                    dist = actor.distribution(mean)
                    logprob = dist.log_prob(mb["actions"]).sum(-1)
                    log_ratio = logprob - mb["logprobs"]
                    ratio = log_ratio.exp()
                    adv = mb["advantages"]
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                    pg_loss = torch.max(
                        -adv * ratio,
                        -adv * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef),
                    ).mean()
                    v_loss = (
                        0.5 * ((critic(mb["obs"], mb["privileged"]) - mb["returns"]) ** 2).mean()
                    )
                    entropy = dist.entropy().sum(-1).mean()
                    loss = pg_loss + cfg.vf_coef * v_loss - cfg.ent_coef * entropy
                    if warming:  # only the critic learns: the actor's gradients stay None
                        loss = cfg.vf_coef * v_loss
                    elif cfg.smoothness > 0:  # |mean_t - mean_(t-1)| within an episode
                        same = 1.0 - mb["starts"][:, 1:]
                        delta = (mean[:, 1:] - mean[:, :-1]).abs().mean(-1)
                        smooth = (delta * same).sum() / same.sum().clamp(min=1.0)
                        loss = loss + cfg.smoothness * smooth
                    optimizer.zero_grad()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(
                        list(actor.parameters()) + list(critic.parameters()), cfg.max_grad_norm
                    )
                    optimizer.step()
                    with torch.no_grad():
                        approx_kl = ((ratio - 1) - log_ratio).mean().item()
                    stats = {
                        "policy_loss": pg_loss.item(),
                        "value_loss": v_loss.item(),
                        "entropy": entropy.item(),
                        "approx_kl": approx_kl,
                    }
                    if cfg.smoothness > 0 and not warming:
                        stats["smoothness"] = smooth.item()
                if cfg.target_kl is not None and stats["approx_kl"] > cfg.target_kl:
                    break

            # ---- 4. logging, evaluation, checkpoints -----------------------------------------
            mean_recent = float(np.mean(recent)) if recent else float("nan")
            if writer:
                for k, v in stats.items():
                    writer.add_scalar(f"losses/{k}", v, global_step)
                writer.add_scalar(
                    "charts/learning_rate", optimizer.param_groups[0]["lr"], global_step
                )
                writer.add_scalar("charts/std", actor.log_std.exp().mean().item(), global_step)
                writer.add_scalar(
                    "charts/steps_per_s", global_step / (time.perf_counter() - t_start), global_step
                )
            if bar is not None:
                bar.update(cfg.batch_size)
                bar.set_postfix(progress_postfix(mean_recent, best_return))
            last = update == num_updates
            if cfg.eval_interval and (update % cfg.eval_interval == 0 or last):
                ev = evaluate_policy(
                    make_policy(), cfg.env, cfg.eval_episodes, cfg.eval_seed, eval_randomize
                )
                history.append((global_step, ev["mean_return"]))
                if writer:
                    writer.add_scalar("eval/mean_return", ev["mean_return"], global_step)
                if ev["mean_return"] >= best_return:
                    best_return, best_policy = ev["mean_return"], _snapshot(actor, obs_norm)
                if cfg.target_return is not None and ev["mean_return"] >= cfg.target_return:
                    last = True
            if update % cfg.checkpoint_interval == 0 or last:
                ckpt.save(
                    ckpt_path,
                    cfg,
                    info,
                    actor,
                    critic,
                    optimizer,
                    obs_norm,
                    reward_scaler,
                    global_step,
                    prior_wall + time.perf_counter() - t_start,
                )
            if last:
                break
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP: keep what was learnt, then stop
        interrupted = True
        wall = prior_wall + time.perf_counter() - t_start
        ckpt.save(ckpt_path, cfg, info, actor, critic, optimizer, obs_norm, reward_scaler,
                  global_step, wall)  # fmt: skip
        print(
            f"train: stopped at {global_step} steps; checkpoint {ckpt_path} (continue with "
            f"--resume {ckpt_path})",
            file=sys.stderr,
            flush=True,
        )
        raise
    finally:
        # After an interrupt a worker may be mid-step: let it finish (workers ignore the
        # signals), but never wait on it for long.
        if source is not None:
            source.close(interrupted)
        if bar is not None:
            bar.close()
        if writer:
            writer.close()

    # ---- final policy: best (or last) weights, evaluated with the numpy runtime -------------
    if cfg.keep_best and best_policy is not None:
        _restore(actor, obs_norm, best_policy)
    final_seed = cfg.eval_seed + 100_000
    evaluation = evaluate_policy(make_policy(), cfg.env, cfg.final_eval_episodes, final_seed)
    wall = prior_wall + time.perf_counter() - t_start
    provenance = _provenance(cfg, command, global_step, wall, evaluation)
    provenance["randomization"] = randomization
    provenance["smoothness_weight"] = cfg.smoothness
    provenance["init_from"] = warm
    policy = make_policy(provenance)
    policy.save(out)
    return TrainResult(out, global_step, wall, evaluation, history)


def progress_postfix(mean_recent: float, best_return: float) -> dict[str, str]:
    """The progress bar's figures: ``ret``, the mean return of the last (up to 20) finished
    training episodes, and ``best_eval``, the best periodic evaluation's mean return; ``-``
    stands for "none yet"."""

    def fmt(x: float) -> str:
        return f"{x:.1f}" if np.isfinite(x) else "-"

    return {"ret": fmt(mean_recent), "best_eval": fmt(best_return)}


def _snapshot(actor: Actor, obs_norm: ObsNormalizer) -> dict[str, Any]:
    state = {k: v.detach().clone() for k, v in actor.state_dict().items()}
    return {"actor": state, "obs_rms": obs_norm.rms.state_dict()}


def _restore(actor: Actor, obs_norm: ObsNormalizer, snap: dict[str, Any]) -> None:
    actor.load_state_dict(snap["actor"])
    obs_norm.rms.load_state_dict(snap["obs_rms"])


def _provenance(
    cfg: TrainConfig, command: str, steps: int, wall: float, evaluation: dict[str, Any]
) -> dict[str, Any]:
    import dataclasses
    import datetime
    import subprocess

    from liquidnode.controller import __version__

    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "created_by": f"liquidnode {__version__} train (recurrent PPO)",
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "env_id": cfg.env,
        "steps": int(steps),
        "seed": cfg.seed,
        "wall_time_s": round(wall, 1),
        "evaluation": evaluation,
        "git_commit": commit,
        "liquidnode_version": __version__,
        "torch_version": torch.__version__,
        "config": dataclasses.asdict(cfg),
    }


def _tensorboard(cfg: TrainConfig, log_dir: Path) -> SummaryWriter | None:
    if not cfg.tensorboard:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(log_dir))


def _progress(cfg: TrainConfig, initial: int, total: int) -> tqdm | None:
    """A tqdm bar on stderr from ``initial`` to ``total`` steps (``cfg.steps`` rounded up to
    whole rollouts, said on the line before the bar), or None without ``cfg.progress``."""
    if not cfg.progress:
        return None
    import sys

    from tqdm import tqdm

    if total != cfg.steps:
        print(
            f"train: --steps {cfg.steps} rounded up to {total} (whole rollouts of "
            f"{cfg.envs} envs x {cfg.rollout_steps} steps = {cfg.batch_size})",
            file=sys.stderr,
        )
    return tqdm(
        total=total,
        initial=initial,
        unit="step",
        file=sys.stderr,
        dynamic_ncols=True,
        desc=f"train {cfg.env} {cfg.cell}",
    )
