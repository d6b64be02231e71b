"""What a control-loop run achieved: per-episode results and the run summary.

:class:`RunSummary` is what ``liquidnode sim`` / ``deploy`` print (``format_text``) and what
``--json`` emits (``to_json``, keys documented in the README).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from liquidnode.controller.timing import TimingStats


@dataclass
class EpisodeResult:
    """One episode.

    Attributes:
        index: episode index in the run, from 0.
        seed: the seed its reset got (``run`` seed + index), or None.
        return_: sum of the rewards, in the plant's reward units (``"return"`` in JSON).
        ticks: actions sent.
        terminated: the plant reported a terminal state.
        truncated: ended by a time limit (plant's, ``max_ticks`` or ``duration_s``).
        lateness_p99_us: 99th percentile tick lateness in this episode, µs (0 in fast mode).
        overruns: overruns in this episode.
        faults: fault / nan_guard / estop events in this episode.
    """

    index: int
    seed: int | None
    return_: float
    ticks: int
    terminated: bool
    truncated: bool
    lateness_p99_us: float
    overruns: int
    faults: int

    @property
    def end(self) -> str:
        """How the episode ended: ``"terminated"``, ``"truncated"`` or ``"stopped"``."""
        return "terminated" if self.terminated else "truncated" if self.truncated else "stopped"

    def format_line(self) -> str:
        """One line for a terminal, e.g. ``episode 0 (seed 7): return 1000.00, 1000 ticks,
        late p99 35.2 µs, overruns 0, truncated``."""
        seed = "" if self.seed is None else f" (seed {self.seed})"
        faults = f", faults {self.faults}" if self.faults else ""
        return (
            f"episode {self.index}{seed}: return {self.return_:.2f}, {self.ticks} ticks, "
            f"late p99 {self.lateness_p99_us:.1f} µs, overruns {self.overruns}{faults}, "
            f"{self.end}"
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict; ``return`` and ``ticks`` are the documented keys."""
        return {
            "return": self.return_,
            "ticks": self.ticks,
            "seed": self.seed,
            "terminated": self.terminated,
            "truncated": self.truncated,
            "lateness_p99_us": self.lateness_p99_us,
            "overruns": self.overruns,
            "faults": self.faults,
        }


@dataclass
class RunSummary:
    """What a run achieved and how well it kept time.

    Attributes:
        episodes: the finished (or interrupted) episodes.
        mode: ``"realtime"``, ``"fast"`` or ``"self_paced"``.
        nominal_rate_hz: the configured tick rate, Hz.
        timing: the cycle timer's statistics (achieved rate, lateness, overruns, sections).
        plant: what ``plant.summary()`` returned.
        faults: fault / nan_guard / estop events over the run.
        interrupted: the run was stopped by Ctrl-C, SIGTERM, SIGHUP or the hard time bound.
        stop_reason: what ended the run: ``"completed"``, ``"SIGINT"``, ``"SIGTERM"``,
            ``"SIGHUP"``, ``"time_bound"``, or the class name of the exception that ended it.
        error: that exception's message, or None.
        log_errors: write errors of the log (disk full...): non-empty means the log is
            incomplete.
        returns_unmeasured: why the episodes' returns were not measured (e.g. ``"reward not
            sent over serial"``), or None when they were: returns then show as ``n/a`` in
            text and null in JSON, never as 0.
    """

    episodes: list[EpisodeResult]
    mode: str
    nominal_rate_hz: float
    timing: TimingStats
    plant: dict[str, Any] = field(default_factory=dict)
    faults: int = 0
    interrupted: bool = False
    stop_reason: str = "completed"
    error: str | None = None
    log_errors: list[str] = field(default_factory=list)
    returns_unmeasured: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The documented JSON object (``episodes``, ``rate_hz``, ``lateness_us``, ``overruns``,
        ``sections_us``, ``plant``, ``faults``) plus ``mode``, ``nominal_rate_hz``,
        ``skipped_ticks``, ``interrupted``, ``stop_reason``, ``error`` (the exception that
        ended the run, else the log's write errors, else null), ``log_errors`` and
        ``returns_unmeasured`` (each episode's ``return`` is then null). NaN section times
        become null."""
        t = self.timing
        episodes = [e.to_json() for e in self.episodes]
        if self.returns_unmeasured is not None:
            for e in episodes:
                e["return"] = None
        return {
            "episodes": episodes,
            "rate_hz": t.rate_hz,
            "lateness_us": {
                "p50": t.lateness_p50_us,
                "p99": t.lateness_p99_us,
                "max": t.lateness_max_us,
            },
            "overruns": t.overruns,
            "sections_us": {k: (None if v != v else v) for k, v in t.sections_us.items()},
            "plant": self.plant,
            "faults": self.faults,
            "mode": self.mode,
            "nominal_rate_hz": self.nominal_rate_hz,
            "skipped_ticks": t.skipped_ticks,
            "interrupted": self.interrupted,
            "stop_reason": self.stop_reason,
            "error": self.error or ("; ".join(self.log_errors) or None),
            "log_errors": list(self.log_errors),
            "returns_unmeasured": self.returns_unmeasured,
        }

    def format_text(self) -> str:
        """Readable per-episode table plus a summary, for terminals."""
        lines = [
            f"{'episode':>7}  {'return':>10}  {'ticks':>6}  {'late p99 µs':>11}  "
            f"{'overruns':>8}  end"
        ]
        for e in self.episodes:
            ret = "n/a" if self.returns_unmeasured is not None else f"{e.return_:.2f}"
            lines.append(
                f"{e.index:>7}  {ret:>10}  {e.ticks:>6}  {e.lateness_p99_us:>11.1f}  "
                f"{e.overruns:>8}  {e.end}"
            )
        if self.returns_unmeasured is not None:
            lines.append(f"return n/a ({self.returns_unmeasured})")
        t = self.timing
        sec = ", ".join(f"{k} {v:.1f}" for k, v in t.sections_us.items())
        lines.append(
            f"mode {self.mode}: {t.rate_hz:.1f} Hz achieved (nominal {self.nominal_rate_hz:g} Hz), "
            f"lateness p50/p99/max {t.lateness_p50_us:.1f}/{t.lateness_p99_us:.1f}/"
            f"{t.lateness_max_us:.1f} µs, overruns {t.overruns} ({t.skipped_ticks} ticks "
            f"skipped), faults {self.faults}"
        )
        lines.append(f"median section times µs: {sec}")
        lines += format_plant_summary(self.plant)
        if self.interrupted:
            how = "Ctrl-C" if self.stop_reason == "SIGINT" else self.stop_reason
            lines.append(f"interrupted by {how}")
        for message in self.log_errors:
            lines.append(f"log error: {message}")
        return "\n".join(lines)


#: Key suffixes of plant summaries that carry a unit, and the unit.
_UNIT_SUFFIXES = (("_us", "µs"), ("_ms", "ms"), ("_hz", "Hz"), ("_s", "s"))


def _number(value: float) -> str:
    """A measured number for people: 4 significant digits, whole numbers from 10,000."""
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _plant_field(key: str, value: Any, unit: str | None = None) -> str:
    name = key
    for suffix, suffix_unit in _UNIT_SUFFIXES:
        if key.endswith(suffix):
            name, unit = key[: -len(suffix)], suffix_unit
            break
    name = name.replace("_", " ")
    if isinstance(value, dict):
        inner = ", ".join(
            _plant_field(str(k), v, None if k == "n" else unit) for k, v in value.items()
        )
        return f"{name} ({inner})"
    if value is None:
        text = "-"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, (int, float)):
        text = _number(value) if isinstance(value, float) else str(value)
        text += f" {unit}" if unit else ""
    else:
        text = str(value)
    return f"{name} {text}"


def format_plant_summary(plant: dict[str, Any]) -> list[str]:
    """``plant.summary()`` as lines for people: ``plant: physics step 0.02 s, frame skip 2,
    sim time 40 s``; each nested dict on a line of its own (``plant link: port ..., rtt (p50
    92 µs, ...)``). Key suffixes give units (``_s``, ``_ms``, ``_us``, ``_hz``); floats get 4
    significant digits. [] for an empty summary."""
    scalars = [_plant_field(str(k), v) for k, v in plant.items() if not isinstance(v, dict)]
    lines = [f"plant: {', '.join(scalars)}"] if scalars else []
    for key, value in plant.items():
        if isinstance(value, dict):
            inner = ", ".join(_plant_field(str(k), v) for k, v in value.items())
            lines.append(f"plant {str(key).replace('_', ' ')}: {inner}")
    return lines
