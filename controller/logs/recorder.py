"""McapRecorder: writes the loop's ticks and events to an MCAP log from a background thread.

The loop thread only enqueues: :meth:`McapRecorder.tick` copies the record's arrays into a
tuple and appends it to a deque (no serialisation, no I/O, no thread wake-up). A writer
thread wakes every ``poll_s`` (2 ms by default), turns queued items into JSON messages, adds
them to the current MCAP chunk and finishes the chunk every ``flush_interval_s`` (20 ms by
default), handing it to the OS. After a ``kill -9`` the file therefore holds every finished
chunk: all ticks but those of the last ``flush_interval_s + poll_s`` or so, plus however long
the writer thread was kept from running.

The writer shares the GIL with the loop, so it works only in the loop's idle time, right
after a tick is handed over and well before the next deadline (:mod:`.pacing`): logging
does not make ticks late.

Errors: the file is created and its header written in the constructor, so an unwritable
path or a full disk raises :class:`~controller.errors.LogFileError` before the run starts.
A write error during the run (disk full, I/O error) stops the writing, warns once on stderr,
and is kept in :attr:`McapRecorder.errors`; queued items are then discarded so the loop never
stalls and memory stays bounded. The file stays readable up to its last complete chunk.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import os
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from mcap.writer import CompressionType, Writer

from liquidnode.controller.errors import LogFileError
from liquidnode.controller.logs import schema
from liquidnode.controller.logs.pacing import FLUSH, ITEM, WriterPacer
from liquidnode.controller.records import Event, TickRecord

#: Minimum free space on the log's file system for a run to start, bytes.
MIN_FREE_BYTES = 16 * 1024 * 1024

_TICK, _EVENT, _START = 0, 1, 2
_KINDS = ("tick", "event", "start")


class McapRecorder:
    """A :class:`controller.records.Recorder` writing an MCAP log (format in :mod:`.schema`).

    Args:
        path: log file to create (parent directories are created; an existing file is replaced).
        command: the command that produced the log (``"sim"``, ``"deploy"``...), for metadata.
        metadata: run metadata known before the loop starts (merged with what ``start`` gets).
        policy_path: policy file to hash and attach (makes the log self-contained), or None.
        store_state: write the policy hidden state per tick (channel ``/liquidnode/state``).
        flush_interval_s: how often the writer finishes a chunk and hands it to the OS, s (> 0).
        poll_s: how often the writer thread looks for queued ticks, s (> 0).
        max_queue: ticks allowed to wait for the writer; beyond it ticks are dropped and counted.
        min_free_bytes: free disk space required at creation, bytes.

    Raises:
        LogFileError: the path cannot be created or written, or the disk is (nearly) full.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        command: str = "",
        metadata: dict[str, Any] | None = None,
        policy_path: str | os.PathLike[str] | None = None,
        store_state: bool = True,
        flush_interval_s: float = 0.02,
        poll_s: float = 0.002,
        max_queue: int = 200_000,
        min_free_bytes: int = MIN_FREE_BYTES,
    ) -> None:
        if not (flush_interval_s > 0 and poll_s > 0):
            raise ValueError(
                f"flush_interval_s and poll_s must be > 0, got {flush_interval_s}, {poll_s}"
            )
        self.path = Path(path)
        self.store_state = store_state
        self.flush_interval_s = flush_interval_s
        self.poll_s = poll_s
        self.max_queue = max_queue
        #: write errors met during the run, as messages (empty when all went well).
        self.errors: list[str] = []
        #: ticks dropped because the writer fell more than ``max_queue`` ticks behind.
        self.dropped_ticks = 0
        #: records that could not be encoded (malformed values) and were skipped.
        self.skipped_items = 0
        #: ticks and events written to the file.
        self.ticks_written = 0
        self.events_written = 0
        self._metadata = dict(metadata or {})
        self._items: deque[tuple[Any, ...]] = deque()
        self._stop = threading.Event()
        self._pacer = WriterPacer(poll_s=poll_s)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._failed = False
        self._episode_t0: dict[int, int] = {}
        policy_bytes = _read_policy(policy_path) if policy_path is not None else None
        self._open(command, policy_path, policy_bytes, min_free_bytes)

    # ----------------------------------------------------------------- creation
    def _open(
        self,
        command: str,
        policy_path: str | os.PathLike[str] | None,
        policy_bytes: bytes | None,
        min_free_bytes: int,
    ) -> None:
        from liquidnode.controller import __version__

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            free = _free_bytes(self.path.parent)
            if free is not None and free < min_free_bytes:
                raise LogFileError(
                    f"cannot log to {self.path}: only {free / 1e6:.1f} MB free on its disk "
                    f"(need {min_free_bytes / 1e6:.0f} MB); free space, pass --log elsewhere "
                    "or --no-log"
                )
            self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
            self._writer = Writer(
                self._file, chunk_size=256 * 1024, compression=CompressionType.NONE
            )
            self._writer.start(profile="", library=f"liquidnode {__version__}")
            self._channels: dict[str, int] = {}
            for topic, body in schema.CHANNELS:
                schema_id = self._writer.register_schema(
                    name=body["title"], encoding="jsonschema", data=schema.to_json_bytes(body)
                )
                self._channels[topic] = self._writer.register_channel(
                    topic=topic, message_encoding="json", schema_id=schema_id
                )
            now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")
            self._writer.add_metadata(
                schema.LOG_METADATA,
                {
                    "format_version": str(schema.LOG_FORMAT_VERSION),
                    "liquidnode_version": __version__,
                    "created_at": now,
                    "command": command,
                    "store_state": "true" if self.store_state else "false",
                },
            )
            if policy_path is not None and policy_bytes is not None:
                self._write_policy(Path(policy_path), policy_bytes)
            self._file.flush()
        except OSError as exc:
            file = getattr(self, "_file", None)
            if file is not None:
                with contextlib.suppress(OSError):
                    file.close()
            raise LogFileError(f"cannot write log {self.path}: {exc.strerror or exc}") from exc
        except BaseException:  # stopped (a signal) while the header was being written
            file = getattr(self, "_file", None)
            if file is not None:  # leave no half-made log behind: it holds no run yet
                with contextlib.suppress(OSError):
                    file.close()
                with contextlib.suppress(OSError):
                    self.path.unlink()
            raise

    def _write_policy(self, path: Path, data: bytes) -> None:
        now = time.time_ns()
        info = {
            "path": str(path),
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": str(len(data)),
            "metadata": _policy_file_metadata(data),
        }
        self._writer.add_metadata(schema.POLICY_METADATA, info)
        self._writer.add_attachment(
            create_time=now,
            log_time=now,
            name=schema.POLICY_ATTACHMENT,
            media_type="application/octet-stream",
            data=data,
        )

    def _attach_model(self, metadata: dict[str, Any]) -> None:
        """Attach the MJCF file of a simulation built from one (small; makes --sim portable)."""
        plant = metadata.get("plant")
        info = plant.get("info") if isinstance(plant, dict) else None
        if not isinstance(info, dict) or info.get("source") != "mjcf":
            return
        model = info.get("model_file")
        if not model:
            return
        try:
            data = Path(model).read_bytes()
        except OSError:
            return
        if len(data) <= 4 * 1024 * 1024:
            now = time.time_ns()
            self._writer.add_attachment(now, now, schema.MODEL_ATTACHMENT, "application/xml", data)

    # ----------------------------------------------------------- loop thread API
    def start(self, metadata: dict[str, Any]) -> None:
        """Record the run metadata and start the writer thread (called before the first tick)."""
        if self._closed:
            raise RuntimeError(f"recorder for {self.path} is closed")
        merged = {**self._metadata, **(metadata or {})}
        self._pacer.configure(merged)
        self._items.append((_START, merged))
        self._ensure_thread()

    def tick(self, record: TickRecord) -> None:
        """Enqueue one tick (copies its arrays; no serialisation, no I/O)."""
        if self._failed or self._closed:
            return
        if len(self._items) > self.max_queue:
            self.dropped_ticks += 1
            return
        state = record.state
        self._pacer.last_tick = (record.mono_time_ns, time.monotonic_ns())
        self._items.append(
            (
                _TICK,
                record.episode,
                record.tick,
                record.wall_time_ns,
                record.mono_time_ns,
                record.dt_s,
                record.obs.copy(),
                record.action.copy(),
                record.sent.copy(),
                record.reward,
                state.copy() if (state is not None and self.store_state) else None,
                record.lateness_us,
                record.observe_us,
                record.policy_us,
                record.act_us,
            )
        )
        if self._thread is None:
            self._ensure_thread()

    def event(self, event: Event) -> None:
        """Enqueue one event (its ``detail`` is copied shallowly)."""
        if self._failed or self._closed:
            return
        wall = event.wall_time_ns or time.time_ns()
        mono = event.mono_time_ns or time.monotonic_ns()
        self._items.append(
            (_EVENT, event.kind, event.episode, event.tick, wall, mono, dict(event.detail))
        )
        if self._thread is None:
            self._ensure_thread()

    def close(self) -> None:
        """Write what is queued, the summary and footer, and close the file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        self._drain_all()
        if self.dropped_ticks:
            self._note_error(f"{self.dropped_ticks} ticks dropped: the log writer fell behind")
        try:
            if not self._failed:
                if self.errors:
                    self._write_event(
                        "log_error",
                        -1,
                        -1,
                        time.time_ns(),
                        time.monotonic_ns(),
                        {"errors": self.errors, "dropped_ticks": self.dropped_ticks},
                    )
                self._writer.finish()
        except (OSError, ValueError) as exc:
            self._note_error(f"cannot finish log {self.path}: {exc}")
        finally:
            try:
                self._file.close()
            except OSError as exc:
                if not self._failed:  # after a write error, the buffered rest fails again
                    self._note_error(f"cannot close log {self.path}: {exc}")

    def __enter__(self) -> McapRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------- writer thread
    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"liquidnode-log-{self.path.name}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        """Writer thread: write queued items and finish a chunk every ``flush_interval_s``, in
        the loop's idle time (see :mod:`controller.logs.pacing`); on stop, write the rest."""
        items, pacer = self._items, self._pacer
        interval_ns = round(self.flush_interval_s * 1e9)
        last_flush = cleared = time.monotonic_ns()
        clock = time.thread_time_ns
        while not self._stop.wait(pacer.next_wake_s()):
            while items and pacer.may_run(ITEM, cleared):
                t0 = clock()
                self._handle(items.popleft())
                pacer.measured(ITEM, clock() - t0)
            now = time.monotonic_ns()
            if not items:
                cleared = now
            if now - last_flush >= interval_ns and pacer.may_run(FLUSH, last_flush + interval_ns):
                t0 = clock()
                self._flush()
                pacer.measured(FLUSH, clock() - t0)
                last_flush = now
        self._drain_all()
        self._flush()

    def _drain_all(self) -> None:
        items = self._items
        while items:
            self._handle(items.popleft())

    def _handle(self, item: tuple[Any, ...]) -> None:
        if self._failed:
            return
        try:
            kind = item[0]
            if kind == _TICK:
                self._write_tick(item)
            elif kind == _EVENT:
                self._write_event(*item[1:])
            elif kind == _START:
                self._writer.add_metadata(schema.RUN_METADATA, schema.encode_metadata(item[1]))
                self._attach_model(item[1])
        except OSError as exc:
            self._fail(exc)
        except (TypeError, ValueError, KeyError, IndexError) as exc:  # a malformed record
            self.skipped_items += 1
            if self.skipped_items <= 3:
                self._note_error(f"could not log a {_KINDS[item[0]]} record ({exc}); skipped it")

    def _write_tick(self, item: tuple[Any, ...]) -> None:
        (_, episode, tick, wall, mono, dt, obs, action, sent, reward, state,
         lateness, observe_us, policy_us, act_us) = item  # fmt: skip
        t0 = self._episode_t0.setdefault(episode, mono)
        message = {
            "episode": episode,
            "tick": tick,
            "t": (mono - t0) * 1e-9,
            "dt": dt,
            "obs": schema.finite_list(obs),
            "action": schema.finite_list(action),
            "sent": schema.finite_list(sent),
            "reward": schema.finite_number(reward),
            "lateness_us": float(lateness),
            "sections": {
                "observe_us": float(observe_us),
                "policy_us": float(policy_us),
                "act_us": float(act_us),
            },
        }
        self._writer.add_message(
            self._channels[schema.TICK_TOPIC], wall, schema.to_json_bytes(message), mono, tick
        )
        if state is not None:
            body = {"episode": episode, "tick": tick, "state": schema.finite_list(state)}
            self._writer.add_message(
                self._channels[schema.STATE_TOPIC], wall, schema.to_json_bytes(body), mono, tick
            )
        self.ticks_written += 1

    def _write_event(
        self, kind: str, episode: int, tick: int, wall: int, mono: int, detail: dict[str, Any]
    ) -> None:
        body = {"kind": kind, "episode": episode, "tick": tick, "detail": schema.sanitize(detail)}
        self._writer.add_message(
            self._channels[schema.EVENT_TOPIC], wall, schema.to_json_bytes(body), mono, 0
        )
        self.events_written += 1

    def _flush(self) -> None:
        if self._failed:
            return
        try:
            self._writer.flush()
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self._failed = True
        self._note_error(
            f"writing log {self.path} failed ({exc.strerror or exc}); "
            "logging stopped, the control loop continues"
        )
        # tick()/event() stop enqueuing from now on; _handle discards what is already queued.

    def _note_error(self, message: str) -> None:
        self.errors.append(message)
        print(f"liquidnode: warning: {message}", file=sys.stderr, flush=True)


def _free_bytes(directory: Path) -> int | None:
    try:
        st = os.statvfs(directory)
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


def _read_policy(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise LogFileError(f"cannot read policy file {path} to log it: {exc.strerror}") from exc


def _policy_file_metadata(data: bytes) -> str:
    """The ``liquidnode`` JSON of a safetensors file's ``__metadata__`` (``"{}"`` if none)."""
    import json
    import struct

    try:
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + n])
        return str(header.get("__metadata__", {}).get("liquidnode", "{}"))
    except (struct.error, ValueError, AttributeError):
        return "{}"
