"""Live progress of a control-loop run for a person watching: episode lines and a status line.

:class:`RunProgress` prints each episode's line (return, ticks, lateness p99, overruns, how it
ended) as the episode ends, through the loop's ``on_episode_end`` callback, and, when asked
(on a terminal), keeps a one-line status updated in place with a carriage return::

    episode 2/3: 512 ticks, 20.48 s, overruns 0

The status line is drawn by a background thread every ``interval_s`` seconds from counters
the loop keeps anyway (the cycle timer's ticks and overruns), so the loop does no extra work
per tick; the thread only wakes to format and write one short line per refresh.
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from liquidnode.controller.run_summary import EpisodeResult
    from liquidnode.controller.timing import CycleTimer

#: Erase from the cursor to the end of the line (ANSI).
_CLEAR = "\r\x1b[K"


class RunProgress:
    """Episode lines and an optional live status line on ``stream``.

    Use as a context manager around ``loop.run`` with ``loop.on_episode_end`` set to
    :meth:`episode_ended`.

    Args:
        timer: the loop's cycle timer (its ``ticks``, ``overruns`` and ``period_s`` are read).
        episodes: episodes the run will have.
        stream: where to write, normally stderr.
        live: draw the status line (give ``stream.isatty()`` for "only on a terminal").
        episode_lines: print a line as each episode ends.
        interval_s: seconds between status refreshes.
    """

    def __init__(
        self,
        timer: CycleTimer,
        episodes: int,
        stream: TextIO | None = None,
        *,
        live: bool = False,
        episode_lines: bool = True,
        interval_s: float = 0.5,
    ) -> None:
        self.timer = timer
        self.episodes = int(episodes)
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(live)
        self.episode_lines = bool(episode_lines)
        self.interval_s = float(interval_s)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = 0  # episodes ended
        self._ticks_before = 0  # timer ticks when the current episode began
        self._drawn = False  # a status line is on screen

    # -- what is shown ----------------------------------------------------------------------
    def status_text(self) -> str:
        """The status line: current episode, its ticks and control time, overruns so far."""
        ticks = max(self.timer.ticks - self._ticks_before, 0)
        episode = min(self._done + 1, self.episodes)
        return (
            f"episode {episode}/{self.episodes}: {ticks} ticks, "
            f"{ticks * self.timer.period_s:.2f} s, overruns {self.timer.overruns}"
        )

    def episode_ended(self, result: EpisodeResult) -> None:
        """The loop's ``on_episode_end``: print the episode's line (over the status line)."""
        with self._lock:
            self._done += 1
            self._ticks_before = self.timer.ticks
            if self.episode_lines:
                self._write(f"{result.format_line()}\n")
            if self.live and not self._stop.is_set():
                self._write(self.status_text())
                self._drawn = True

    # -- drawing ----------------------------------------------------------------------------
    def _write(self, text: str) -> None:
        prefix = _CLEAR if self._drawn else ""
        self._drawn = False
        try:
            self.stream.write(prefix + text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not stop the loop
            pass

    def _refresh(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                if not self._stop.is_set():
                    self._write(self.status_text())
                    self._drawn = True

    def __enter__(self) -> RunProgress:
        if self.live:
            self._thread = threading.Thread(target=self._refresh, name="status", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if self._drawn:
                self._write("")
