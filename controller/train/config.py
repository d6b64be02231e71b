"""Training configuration: one typed dataclass whose field docstrings are the CLI help.

:class:`TrainConfig` holds every knob of :func:`controller.train.ppo.train`. Each field carries
an attribute docstring (the string literal right below it); :func:`field_docs` reads those
strings from this file's source, and ``liquidnode train`` turns every field into a
``--flag`` with that text as help, so the documentation and the CLI cannot drift apart.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as _dt
import inspect
import itertools
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from liquidnode.controller.errors import LiquidNodeError

CellType = Literal["cfc", "ltc", "ncp", "lstm", "gru", "mlp"]

#: Folder that default run folders go under, relative to the working directory.
DEFAULT_RUN_ROOT = Path("runs") / "train"
#: Initial log std of the action Gaussian for a run from random weights.
FRESH_LOG_STD = -0.5
#: Initial log std for a fine-tune (``--init-from``): std 0.22 in normalised action units.
FINE_TUNE_LOG_STD = -1.5


@dataclass
class TrainConfig:
    """Recurrent PPO for a liquid (CfC / LTC / NCP) policy on a Gymnasium task."""

    env: str = "InvertedPendulum-v5"
    """Gymnasium environment id (must have a Box action space), e.g. InvertedPendulum-v5."""
    cell: CellType = "cfc"
    """Policy cell: cfc (CfC, fully connected), ltc (LTC, fully connected), ncp (CfC with
    AutoNCP wiring), or a baseline: lstm, gru, mlp (two tanh layers of --units)."""
    units: int = 32
    """Hidden units of the cell (state size). For ncp: total neurons of the AutoNCP wiring."""
    backbone_units: int = 64
    """Width of the CfC backbone layer (cfc only)."""
    frames: int = 1
    """Observations the mlp cell sees: the current one and FRAMES-1 previous ones, stacked
    (mlp only; 1 = memoryless)."""
    steps: int = 200_000
    """Total environment steps to train for (summed over all parallel environments)."""
    envs: int = 4
    """Parallel environments; > 1 runs them in worker processes (AsyncVectorEnv)."""
    seed: int = 0
    """Seed of torch, numpy and the training environments (printed on the first line)."""
    out: str | None = None
    """Path of the final policy file (default: <run dir>/policy.safetensors)."""
    run_dir: str | None = None
    """Folder of the run: checkpoints/, tb/ (TensorBoard) and, without --out,
    policy.safetensors (default: the --resume checkpoint's run folder, else
    runs/train/<UTC timestamp>)."""
    resume: str | None = None
    """Checkpoint (.pt) to continue training from; its env and spaces must match. With
    --steps equal to the checkpoint's own step count it trains nothing and writes the
    checkpoint's policy as it is (evaluated and with provenance, like any run's): how to
    export a snapshot of a run."""
    rollout_steps: int = 512
    """Steps per environment per rollout (PPO horizon); a multiple of --seq-len."""
    seq_len: int = 16
    """Truncated-BPTT chunk length in steps; the hidden state is stored at each chunk start."""
    minibatches: int = 8
    """Minibatches (of whole sequence chunks) per epoch."""
    epochs: int = 10
    """Optimisation epochs per rollout."""
    lr: float = 3e-4
    """Adam learning rate (annealed linearly to 0 unless --no-anneal-lr)."""
    anneal_lr: bool = True
    """Anneal the learning rate linearly to 0 over the run."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_coef: float = 0.2
    """PPO ratio clipping range."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Gradient norm clip."""
    target_kl: float | None = None
    """Stop an update's epochs early once the approximate KL exceeds this (off if unset)."""
    init_from: str | None = None
    """Policy file to fine-tune: its cell weights and observation statistics start the actor
    (the critic starts fresh); --cell/--units/--backbone-units must match the file."""
    init_log_std: float | None = None
    """Initial log standard deviation of the Gaussian, in normalised action units ([-1, 1]);
    unset: -0.5, or -1.5 with --init-from (a fine-tune starts close to the file's
    deterministic policy: at -0.5 the exploration noise alone drops a balanced
    InvertedDoublePendulum policy to returns of ~200 and PPO unlearns it)."""
    reset_log_std: float | None = None
    """With --resume: set the Gaussian's log standard deviation (normalised action units) to
    this before training on, for every action channel; unset: the checkpoint's. Re-opens
    exploration that a long run has collapsed (the HalfCheetah policy's std fell to ~0.03 by
    7 M steps, where PPO's updates stopped changing what it does under perturbations)."""
    critic_warmup: int = 0
    """Updates at the start of a fine-tune (--init-from) that train only the critic, which
    starts fresh: the actor acts and collects but its weights (log std included) stay as the
    file's until the critic's advantages mean something. 0: none."""
    critic_units: int = 64
    """Width of the two hidden layers of the MLP value function."""
    obs_clip: float = 10.0
    """Normalised observations are clipped to [-obs_clip, obs_clip] (exported to the policy)."""
    normalize_reward: bool = True
    """Scale rewards by the running std of the discounted return (training only)."""
    dt_jitter: float = 0.0
    """Randomise each tick's control period by up to +-FRAC (e.g. 0.2) by varying the MuJoCo
    sub-steps; the true dt is fed to the cell."""
    randomize: str | None = None
    """Domain randomisation of every training env: a preset name (e.g. InvertedPendulum-v5,
    see sim/randomization/) or a TOML spec file (actuation latency, dt jitter, observation
    noise, masses, pushes...); recorded in the policy's provenance."""
    randomize_seed: int | None = None
    """Base seed of the randomisation (default: --seed)."""
    latency_input: bool = False
    """Tell the policy its actuation latency: the cell gets one more input after the
    observation, the episode's latency (the randomisation's draw, in control periods, clipped
    to the --randomize spec's latency range and normalised; see controller/latency_input.py),
    written to the policy file as its latency_input, so that sim, eval and deploy tell it too
    (deploy: --latency-ms). Needs --randomize with a latency range. With --init-from a file
    without the input (--cell cfc), the new input's weights start at zero."""
    privileged_critic: bool = False
    """Asymmetric actor-critic: the critic (training only, never exported) also sees what the
    --randomize spec drew and the policy is not told: the episode's latency, mass, friction,
    damping, motor gain and noise (each as its place in the spec's range, -1..1) and the push
    acting now, so that its values, and the advantages, do not average over plants the
    observation cannot tell apart. Needs --randomize."""
    smoothness: float = 0.0
    """Weight of the action-smoothness loss: mean |mean_t - mean_(t-1)| of the deterministic
    action between consecutive ticks of an episode (normalised units, [-1, 1]); 0 disables it."""
    action_low_pass: float | None = None
    """Cut-off (Hz) of a first-order low-pass on the policy's actions, part of the policy: the
    training envs filter every action (controller/action_filter.py) and the file's
    action.low_pass_hz makes every runtime filter alike (sim, deploy, ONNX, C). Smooths the
    command a plant holds for a varying time (control-period jitter) at the cost of phase lag.
    With --init-from the file must have the same cut-off or none. Unset: no filter."""
    episode_ticks: int | None = None
    """Cut training episodes after N ticks (a time-limit truncation: the return bootstraps from
    the critic's value of the last observation), so that episode starts, and the recovery from
    the env's random initial states, make up a larger share of the data (1000-tick episodes cut
    at 100 see ten times as many starts); evaluations keep the env's own length. Unset: the
    env's own limit."""
    obs_cost: str | None = None
    """Reward shaping, training only, a comma-separated list of terms on observation channels
    (env units, the observation the policy sees), each subtracted from every training step's
    reward: I=W is W * obs[I]**2 (e.g. 0=1.0 keeps the InvertedDoublePendulum cart near the
    middle of its rail); I>L=W is W * max(0, obs[I] - L) and I<L=W is W * max(0, L - obs[I])
    (e.g. HalfCheetah's 8>5.0=1 turns its forward reward into min(speed, 5 m/s): a gait with
    torque to spare). Evaluations and the returns reported are the env's own. Recorded in the
    provenance's config."""
    eval_interval: int = 10
    """Deterministic evaluation (numpy runtime) every N rollouts; 0 disables it."""
    eval_episodes: int = 5
    """Episodes per periodic evaluation (seeds from --eval-seed, never used in training; >= 1,
    use --eval-interval 0 for none)."""
    final_eval_episodes: int = 20
    """Episodes of the final evaluation recorded in the policy file's provenance (>= 1: checked
    before training, so a run never ends without a file)."""
    eval_seed: int = 1_000_000
    """First seed of the evaluation episodes (training uses --seed .. --seed + envs)."""
    eval_randomize: bool = True
    """With --randomize: run the periodic evaluations (which choose the exported policy) under
    the same randomisation, seeded by their episode seeds; the final evaluation stays nominal."""
    target_return: float | None = None
    """Stop early once a periodic evaluation reaches this mean return."""
    keep_best: bool = True
    """Export the policy of the best periodic evaluation rather than the last one; the
    evaluation of the starting point (random weights, the --init-from file or the --resume
    checkpoint) is a candidate too, so a fine-tune that finds nothing better writes the
    policy it started from."""
    checkpoint_interval: int = 20
    """Save a resumable checkpoint every N rollouts (and at the end)."""
    threads: int = 1
    """torch CPU threads."""
    async_envs: bool = True
    """Step parallel envs in worker processes (AsyncVectorEnv); --no-async-envs steps them in
    the training process (SyncVectorEnv), which is faster on a loaded or single-core machine."""
    progress: bool = True
    """Show a progress bar (steps/s, recent return) on stderr."""
    tensorboard: bool = True
    """Write TensorBoard scalars."""

    @property
    def initial_log_std(self) -> float:
        """``init_log_std`` if set, else -1.5 for a fine-tune (``init_from``), else -0.5."""
        if self.init_log_std is not None:
            return self.init_log_std
        return FINE_TUNE_LOG_STD if self.init_from else FRESH_LOG_STD

    @property
    def batch_size(self) -> int:
        """Transitions per rollout (``envs * rollout_steps``)."""
        return self.envs * self.rollout_steps

    def planned_steps(self, start: int = 0) -> int:
        """Steps the run reaches from ``start``: ``steps`` rounded up to whole rollouts.

        Training stops after the rollout that reaches ``steps`` (or earlier, at
        ``target_return``), so a run from 0 ends at ``batch_size * ceil(steps / batch_size)``.
        """
        remaining = max(self.steps - start, 1)
        return start + -(-remaining // self.batch_size) * self.batch_size

    def validate(self) -> None:
        """Check the values; raises :class:`LiquidNodeError` naming the offending one."""
        if self.cell not in ("cfc", "ltc", "ncp", "lstm", "gru", "mlp"):
            raise LiquidNodeError(
                f"unknown cell {self.cell!r}; choose cfc, ltc, ncp, lstm, gru or mlp"
            )
        if self.frames != 1 and self.cell != "mlp":
            raise LiquidNodeError(f"--frames is for --cell mlp only, got --cell {self.cell}")
        for name in (
            "units",
            "frames",
            "steps",
            "envs",
            "rollout_steps",
            "seq_len",
            "minibatches",
            "eval_episodes",
            "final_eval_episodes",
        ):
            if getattr(self, name) < 1:
                raise LiquidNodeError(
                    f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}"
                )
        if self.rollout_steps % self.seq_len:
            raise LiquidNodeError(
                f"--rollout-steps {self.rollout_steps} is not a multiple of --seq-len "
                f"{self.seq_len}"
            )
        chunks = self.envs * self.rollout_steps // self.seq_len
        if chunks < self.minibatches:
            raise LiquidNodeError(
                f"{chunks} sequence chunks per rollout cannot fill --minibatches {self.minibatches}"
            )
        if not 0.0 <= self.dt_jitter < 1.0:
            raise LiquidNodeError(f"--dt-jitter must be in [0, 1), got {self.dt_jitter}")
        if self.episode_ticks is not None and self.episode_ticks < 1:
            raise LiquidNodeError(f"--episode-ticks must be >= 1, got {self.episode_ticks}")
        if self.obs_cost is not None:
            parse_obs_cost(self.obs_cost)
        if self.latency_input and not self.randomize:
            raise LiquidNodeError(
                "--latency-input needs --randomize with a latency range (nominal training "
                "episodes have none to tell)"
            )
        if self.reset_log_std is not None:
            if not self.resume:
                raise LiquidNodeError(
                    "--reset-log-std needs --resume (a new or --init-from run starts at "
                    "--init-log-std)"
                )
            if not math.isfinite(self.reset_log_std):
                raise LiquidNodeError(f"--reset-log-std must be finite, got {self.reset_log_std}")
        if self.critic_warmup:
            if self.critic_warmup < 0:
                raise LiquidNodeError(f"--critic-warmup must be >= 0, got {self.critic_warmup}")
            if not self.init_from or self.resume:
                raise LiquidNodeError(
                    "--critic-warmup needs --init-from without --resume (only a fine-tune's "
                    "critic starts fresh next to a trained actor)"
                )
        if self.privileged_critic and not self.randomize:
            raise LiquidNodeError(
                "--privileged-critic needs --randomize (a nominal plant has nothing to tell "
                "the critic)"
            )
        if self.action_low_pass is not None and not 0.0 < self.action_low_pass < math.inf:
            raise LiquidNodeError(
                f"--action-low-pass must be a cut-off in Hz > 0, got {self.action_low_pass}"
            )
        if not self.smoothness >= 0.0:
            raise LiquidNodeError(f"--smoothness must be >= 0, got {self.smoothness}")
        if self.cell == "ncp" and self.units < 4:
            raise LiquidNodeError(f"--units {self.units} is too small for an AutoNCP wiring")


@cache
def field_docs() -> dict[str, str]:
    """The attribute docstring of every :class:`TrainConfig` field, whitespace-collapsed."""
    tree = ast.parse(inspect.getsource(TrainConfig))
    (class_def,) = (node for node in tree.body if isinstance(node, ast.ClassDef))
    body = class_def.body
    docs: dict[str, str] = {}
    for node, nxt in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


ObsCostTerm = tuple[int, float, str, float]
"""One ``--obs-cost`` term: (channel index, weight, kind, limit); kind ``"sq"`` costs
``w * obs[i]**2`` (limit 0, unused), ``">"`` ``w * max(0, obs[i] - limit)``, ``"<"``
``w * max(0, limit - obs[i])``."""


def parse_obs_cost(text: str) -> tuple[ObsCostTerm, ...]:
    """``--obs-cost`` as ``((index, weight, kind, limit), ...)``: ``"0=1.0,8>5=0.5"`` ->
    ``((0, 1.0, "sq", 0.0), (8, 0.5, ">", 5.0))``.

    Raises:
        LiquidNodeError: a term not I=W, I>L=W or I<L=W, a negative index, a limit that is not
            finite or a weight that is negative or not finite.
    """
    terms = []
    for part in text.split(","):
        lhs, sep, weight = part.strip().partition("=")
        kind = ">" if ">" in lhs else "<" if "<" in lhs else "sq"
        index, _, limit = lhs.partition(kind) if kind != "sq" else (lhs, "", "0")
        try:
            i, w, lim = int(index), float(weight), float(limit)
        except ValueError:
            i, w, lim = -1, float("nan"), float("nan")
        if not sep or i < 0 or not (w >= 0.0 and math.isfinite(w)) or not math.isfinite(lim):
            raise LiquidNodeError(
                f"--obs-cost {text!r}: expected INDEX=WEIGHT, INDEX>LIMIT=WEIGHT or "
                f"INDEX<LIMIT=WEIGHT terms, comma-separated, with an index >= 0, a finite "
                f"limit and a finite weight >= 0 (e.g. 0=1.0 or 8>5.0=1), got {part.strip()!r}"
            )
        terms.append((i, w, kind, lim))
    return tuple(terms)


def config_fields() -> list[dataclasses.Field]:
    """The dataclass fields of :class:`TrainConfig`, in declaration order."""
    return list(dataclasses.fields(TrainConfig))


@dataclass(frozen=True)
class RunPaths:
    """Where a training run writes (see :func:`run_paths`).

    Attributes:
        run_dir: the run folder.
        policy: the final policy file: ``--out``, else ``run_dir/policy.safetensors``.
        checkpoint: the resumable checkpoint, ``run_dir/checkpoints/latest.pt``.
        tensorboard: the TensorBoard log folder, ``run_dir/tb``.
    """

    run_dir: Path
    policy: Path
    checkpoint: Path
    tensorboard: Path


def new_run_dir(now: _dt.datetime | None = None) -> Path:
    """``runs/train/<UTC timestamp>``, e.g. ``runs/train/20260101T120000Z``.

    The timestamp has second resolution; when that folder exists already, a ``-2``, ``-3``...
    suffix keeps both runs. The folder is not created here.
    """
    stamp = (now or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    path, n = DEFAULT_RUN_ROOT / stamp, 2
    while path.exists():
        path, n = DEFAULT_RUN_ROOT / f"{stamp}-{n}", n + 1
    return path


def run_paths(cfg: TrainConfig) -> RunPaths:
    """Resolve the folders and files ``cfg`` writes.

    The run folder is ``cfg.run_dir`` if set; else, when resuming from
    ``<run>/checkpoints/<name>.pt``, that ``<run>``; else a fresh :func:`new_run_dir`. So
    nothing goes into the shipped ``policies/`` folder unless ``--out`` or ``--run-dir``
    names it.
    """
    if cfg.run_dir is not None:
        run_dir = Path(cfg.run_dir)
    elif cfg.resume is not None and Path(cfg.resume).parent.name == "checkpoints":
        run_dir = Path(cfg.resume).parent.parent
    else:
        run_dir = new_run_dir()
    policy = Path(cfg.out) if cfg.out is not None else run_dir / "policy.safetensors"
    return RunPaths(run_dir, policy, run_dir / "checkpoints" / "latest.pt", run_dir / "tb")


def with_run_paths(cfg: TrainConfig) -> TrainConfig:
    """A copy of ``cfg`` with ``run_dir`` and ``out`` resolved by :func:`run_paths`, so that a
    later :func:`run_paths` (and the policy's provenance) sees the same paths."""
    paths = run_paths(cfg)
    return dataclasses.replace(cfg, run_dir=str(paths.run_dir), out=str(paths.policy))
