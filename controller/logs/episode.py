"""Reading liquidnode logs back as numpy arrays: :func:`load_episode`, :func:`load_episodes`.

A log holds every episode of one run. ``load_episodes(path)`` returns one :class:`Episode`
per episode, in order; ``load_episode(path, index=0)`` returns one of them (negative indices
count from the end). Both read the file sequentially, so a log whose writer was killed (no
footer, a truncated last chunk) reads back up to its last complete chunk; such episodes
have ``complete == False``.

Example, in a user's test::

    from liquidnode import load_episode
    ep = load_episode("runs/20260101T120000Z/sim.mcap")
    assert ep.obs.shape == (ep.ticks, 4) and abs(ep.sent).max() <= 3.0
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mcap.exceptions import InvalidMagic, McapError, RecordLengthLimitExceeded
from mcap.records import Attachment, Channel, Message, Metadata
from mcap.stream_reader import StreamReader
from mcap.writer import MCAP0_MAGIC as _MAGIC

from liquidnode.controller.errors import LogFileError
from liquidnode.controller.logs import schema
from liquidnode.controller.logs.validate import MessageChecker, run_metadata_problem
from liquidnode.controller.untrusted import check_regular_file, loads_bounded


def _codec_errors() -> tuple[type[Exception], ...]:
    """Errors of the chunk decompressors a foreign MCAP file may use (zstd, lz4)."""
    errors: list[type[Exception]] = [RuntimeError]  # lz4 reports corrupt frames as this
    try:
        import zstandard

        errors.append(zstandard.ZstdError)
    except ImportError:
        pass
    return tuple(errors)


#: What reading a damaged or cut-short file raises (besides InvalidMagic: not MCAP at all).
_READ_ERRORS: tuple[type[Exception], ...] = (
    McapError,
    struct.error,
    ValueError,
    UnicodeDecodeError,
    MemoryError,
    *_codec_errors(),
)

#: Largest record a log may hold, bytes (chunks are ~256 KiB; policy attachments a few MB).
_MAX_RECORD = 256 * 1024 * 1024


@dataclass
class Episode:
    """One episode of a log, as arrays over its ``n`` ticks (in tick order).

    Attributes:
        index: episode index within the run, from 0.
        tick: tick index of each row, int64 ``(n,)`` (consecutive unless ticks were dropped).
        t: s since the episode's first tick (monotonic clock), float64 ``(n,)``.
        wall_time_ns: wall-clock time of each tick, ns since the Unix epoch, int64 ``(n,)``.
        dt: measured elapsed time since the previous tick, s, float64 ``(n,)``.
        obs: observations fed to the policy, float64 ``(n, obs_dim)``, env units.
        action: raw policy actions, float64 ``(n, act_dim)`` (NaN where non-finite).
        sent: actions sent to the plant after safety, float64 ``(n, act_dim)``.
        reward: reward earned by the previous action, float64 ``(n,)``.
        state: policy hidden state after each step, float32 ``(n, state_dim)``, or None when
            the log was written with ``--no-state``.
        lateness_us: tick start minus deadline, µs, float64 ``(n,)``.
        observe_us, policy_us, act_us: time per section of each tick, µs, float64 ``(n,)``.
        events: this episode's events, dicts with ``kind``, ``episode``, ``tick``,
            ``wall_time_ns``, ``mono_time_ns``, ``detail``.
        metadata: ``{"log": ..., "run": ..., "policy": ...}``: the log's metadata records
            (``policy`` is None when no policy file was attached).
        policy_bytes: the attached policy file, or None.
        attachments: every file attached to the log (name -> bytes): ``policy.safetensors``,
            and ``model.xml`` for an MJCF simulation.
        complete: False when the log was cut short (no footer: killed, or still being written).
        path: the log file.
    """

    index: int
    tick: np.ndarray
    t: np.ndarray
    wall_time_ns: np.ndarray
    dt: np.ndarray
    obs: np.ndarray
    action: np.ndarray
    sent: np.ndarray
    reward: np.ndarray
    state: np.ndarray | None
    lateness_us: np.ndarray
    observe_us: np.ndarray
    policy_us: np.ndarray
    act_us: np.ndarray
    events: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    policy_bytes: bytes | None = None
    complete: bool = True
    path: Path = Path()
    attachments: dict[str, bytes] = field(default_factory=dict)

    @property
    def ticks(self) -> int:
        """Number of ticks in the episode."""
        return int(self.tick.shape[0])

    @property
    def control_time(self) -> np.ndarray:
        """Control time of each tick, s from the first tick: the running sum of measured dt.

        In real time it follows the wall clock (``t``); in fast mode it is the simulated time
        (``t`` is then the much shorter computing time). float64 ``(n,)``.
        """
        if self.ticks == 0:
            return np.zeros(0)
        out = np.cumsum(self.dt)
        return out - out[0]

    @property
    def duration_s(self) -> float:
        """Control time the episode covered, s: the sum of its measured dt."""
        return float(np.nansum(self.dt)) if self.ticks else 0.0

    @property
    def seed(self) -> int | None:
        """Seed the plant was reset with (from the ``episode_start`` event), or None."""
        start = self.first_event("episode_start")
        seed = start["detail"].get("seed") if start else None
        return int(seed) if seed is not None else None

    @property
    def latency_ticks(self) -> float | None:
        """Actuation latency told to a policy with a latency input, control periods (from the
        ``episode_start`` event), or None when the policy was told none."""
        start = self.first_event("episode_start")
        value = start["detail"].get("latency_ticks") if start else None
        return float(value) if value is not None else None

    @property
    def initial_state(self) -> np.ndarray | None:
        """Policy hidden state before the first step, if the loop recorded one."""
        start = self.first_event("episode_start")
        values = start["detail"].get("initial_state") if start else None
        return None if values is None else np.asarray(values, dtype=np.float32)

    @property
    def episode_return(self) -> float:
        """Return of the episode: ``episode_end``'s ``return`` if logged, else sum of rewards."""
        end = self.first_event("episode_end")
        if end is not None and end["detail"].get("return") is not None:
            return float(end["detail"]["return"])
        return float(np.nansum(self.reward))

    @property
    def model_bytes(self) -> bytes | None:
        """The attached MJCF model of a simulation log, or None."""
        return self.attachments.get(schema.MODEL_ATTACHMENT)

    def first_event(self, kind: str) -> dict[str, Any] | None:
        """The first event of ``kind`` in this episode, or None."""
        return next((e for e in self.events if e["kind"] == kind), None)


@dataclass
class LogContents:
    """Everything in a log: metadata, episodes, all events (also those outside episodes)."""

    path: Path
    metadata: dict[str, Any]
    policy_bytes: bytes | None
    episodes: list[Episode]
    events: list[dict[str, Any]]
    complete: bool


def load_episode(path: str | os.PathLike[str], index: int = 0) -> Episode:
    """Load one episode of a log.

    Args:
        path: an MCAP log written by ``liquidnode sim`` / ``deploy`` (or :class:`McapRecorder`).
        index: episode index, from 0; negative counts from the end (-1: the last episode).
    Returns:
        The :class:`Episode`.
    Raises:
        LogFileError: missing, not MCAP, not a liquidnode log, another format version,
            corrupt, or no episode ``index``.
    """
    log = read_log(path)
    episodes = log.episodes
    if not episodes:
        cut = " (it was cut short: no footer, nothing after its start)" if not log.complete else ""
        raise LogFileError(f"log {path} holds no ticks{cut}")
    try:
        return episodes[index]
    except IndexError:
        raise LogFileError(
            f"log {path} has {len(episodes)} episode(s); there is no episode {index}"
        ) from None


def load_episodes(path: str | os.PathLike[str]) -> list[Episode]:
    """Load every episode of a log, in order (empty list if no tick was logged)."""
    return read_log(path).episodes


def read_log(path: str | os.PathLike[str]) -> LogContents:
    """Read a whole log. Raises :class:`LogFileError` as :func:`load_episode` does."""
    path = Path(path)
    if path.exists():  # a FIFO or /dev/zero would never end; a missing file is named below
        check_regular_file(path, "log", LogFileError)
    try:
        size = path.stat().st_size
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise LogFileError(f"cannot open log {path}: {exc.strerror}") from exc
    with handle:
        if size == 0:
            raise LogFileError(f"log {path} is empty (0 bytes)")
        head = handle.read(len(_MAGIC))
        if not _MAGIC.startswith(head):  # a file shorter than the magic is checked too
            raise _not_mcap(path, head)
        handle.seek(0)
        records, complete = _read_records(handle, path, size)
    return _assemble(path, records, complete)


def _not_mcap(path: Path, head: bytes) -> LogFileError:
    return LogFileError(
        f"{path} is not an MCAP log (it starts with {head!r}, an MCAP file starts with {_MAGIC!r})"
    )


def _read_records(handle: Any, path: Path, size: int) -> tuple[list[Any], bool]:
    records: list[Any] = []
    limit = min(size, _MAX_RECORD)
    reader = StreamReader(handle, validate_crcs=True, record_size_limit=limit)
    try:
        for record in reader.records:
            if isinstance(record, (Channel, Message, Metadata, Attachment)):
                records.append(record)
    except InvalidMagic:
        handle.seek(0)
        raise _not_mcap(path, handle.read(len(_MAGIC))) from None
    except _READ_ERRORS as exc:
        # Ran into the end of the file (a record, or a record's claimed length, reaches past
        # it): the log was cut short, e.g. its writer was killed. Anything else is corruption.
        past_end = (
            isinstance(exc, RecordLengthLimitExceeded) and _claimed_length(handle) <= _MAX_RECORD
        )
        if past_end or handle.tell() >= size:
            if not any(isinstance(r, Metadata) for r in records):
                raise LogFileError(f"log {path} is truncated before its metadata") from None
            return records, False
        raise LogFileError(
            f"log {path} is corrupt near byte {handle.tell()} of {size}: {exc}"
        ) from None
    return records, True


def _claimed_length(handle: Any) -> int:
    """Length field of the record header just read (the 8 bytes before the position)."""
    pos = handle.tell()
    handle.seek(pos - 8)
    (length,) = struct.unpack("<Q", handle.read(8))
    return int(length)


def _assemble(path: Path, records: list[Any], complete: bool) -> LogContents:
    meta: dict[str, Any] = {"log": None, "run": {}, "policy": None}
    topics: dict[int, str] = {}
    attachments: dict[str, bytes] = {}
    ticks: list[tuple[dict[str, Any], int]] = []
    states: dict[tuple[int, int], list[Any]] = {}
    events: list[dict[str, Any]] = []
    checker = MessageChecker(path)
    for record in records:
        if isinstance(record, Metadata):
            if record.name == schema.LOG_METADATA:
                meta["log"] = dict(record.metadata)
            elif record.name == schema.RUN_METADATA:
                meta["run"] = schema.decode_metadata(record.metadata)
            elif record.name == schema.POLICY_METADATA:
                meta["policy"] = schema.decode_metadata(record.metadata)
        elif isinstance(record, Attachment):
            attachments[record.name] = bytes(record.data)
        elif isinstance(record, Channel):
            topics[record.id] = record.topic
        elif isinstance(record, Message):
            topic = topics.get(record.channel_id)
            if topic is None:
                continue
            body = _decode(path, record)
            checker.check(topic, body)
            if topic == schema.TICK_TOPIC:
                ticks.append((body, record.log_time))
            elif topic == schema.STATE_TOPIC:
                states[(body["episode"], body["tick"])] = body["state"]
            elif topic == schema.EVENT_TOPIC:
                events.append(
                    {**body, "wall_time_ns": record.log_time, "mono_time_ns": record.publish_time}
                )
    _check_version(path, meta["log"])
    problem = run_metadata_problem(meta["run"])
    if problem:
        raise LogFileError(f"log {path}: run metadata: {problem}")
    policy_bytes = attachments.get(schema.POLICY_ATTACHMENT)
    by_episode: dict[int, list[tuple[dict[str, Any], int]]] = {}
    for body, wall in ticks:
        by_episode.setdefault(int(body["episode"]), []).append((body, wall))
    episodes = [
        _episode(path, index, rows, states, events, meta, attachments, complete)
        for index, rows in sorted(by_episode.items())
    ]
    return LogContents(path, meta, policy_bytes, episodes, events, complete)


def _check_version(path: Path, log_meta: dict[str, str] | None) -> None:
    if log_meta is None:
        raise LogFileError(
            f"{path} is an MCAP file but not a liquidnode log "
            f"(no '{schema.LOG_METADATA}' metadata record)"
        )
    version = log_meta.get("format_version")
    if version != str(schema.LOG_FORMAT_VERSION):
        from liquidnode.controller import __version__

        raise LogFileError(
            f"log {path} has format version {version!r} (written by liquidnode "
            f"{log_meta.get('liquidnode_version', '?')}); this liquidnode {__version__} reads "
            f"format version {schema.LOG_FORMAT_VERSION}"
        )


def _decode(path: Path, message: Message) -> dict[str, Any]:
    try:
        body = loads_bounded(message.data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise LogFileError(
            f"log {path}: a message at {message.log_time} ns is not JSON: {exc}"
        ) from None
    if not isinstance(body, dict):
        raise LogFileError(f"log {path}: a message at {message.log_time} ns is not an object")
    return body


def _vectors(rows: list[dict[str, Any]], key: str) -> np.ndarray:
    values = [[np.nan if v is None else v for v in r[key]] for r in rows]
    width = len(values[0]) if values else 0
    return np.asarray(values, dtype=np.float64).reshape(len(values), width)


def _episode(
    path: Path,
    index: int,
    rows_walls: list[tuple[dict[str, Any], int]],
    states: dict[tuple[int, int], list[Any]],
    events: list[dict[str, Any]],
    meta: dict[str, Any],
    attachments: dict[str, bytes],
    complete: bool,
) -> Episode:
    rows_walls.sort(key=lambda rw: rw[0]["tick"])
    rows = [r for r, _ in rows_walls]

    def col(key: str) -> np.ndarray:
        return np.asarray([np.nan if r.get(key) is None else r[key] for r in rows], np.float64)

    def section(key: str) -> np.ndarray:
        return np.asarray([r.get("sections", {}).get(key, np.nan) for r in rows], np.float64)

    state = None
    if any((index, r["tick"]) in states for r in rows):
        vectors = [states.get((index, r["tick"])) for r in rows]
        width = len(next(v for v in vectors if v is not None))
        nan_row = [None] * width
        state = np.asarray(
            [[np.nan if x is None else x for x in (v or nan_row)] for v in vectors],
            dtype=np.float32,
        )
    return Episode(
        index=index,
        tick=np.asarray([r["tick"] for r in rows], dtype=np.int64),
        t=col("t"),
        wall_time_ns=np.asarray([w for _, w in rows_walls], dtype=np.int64),
        dt=col("dt"),
        obs=_vectors(rows, "obs"),
        action=_vectors(rows, "action"),
        sent=_vectors(rows, "sent"),
        reward=col("reward"),
        state=state,
        lateness_us=col("lateness_us"),
        observe_us=section("observe_us"),
        policy_us=section("policy_us"),
        act_us=section("act_us"),
        events=[e for e in events if e.get("episode") == index],
        metadata=meta,
        policy_bytes=attachments.get(schema.POLICY_ATTACHMENT),
        complete=complete,
        path=path,
        attachments=attachments,
    )
