"""One way out: signals turned into an exception, a hard time bound, and the exit codes.

Every way a run can end (normal end, exception, Ctrl-C, SIGTERM, SIGHUP, link loss,
``--duration``, the hard time bound) goes through the same ``finally`` of
:meth:`controller.loop.ControlLoop.run`: safe action and stop sent to the plant, a
``run_end`` event with the reason, the log finalised, the summary built. For that to hold
under ``kill``/systemd/Docker, :func:`stop_signals` makes SIGTERM and SIGHUP do what Ctrl-C
does: raise an exception (:class:`Interrupted`, a :class:`KeyboardInterrupt`) in the main
thread. While the run is shutting down a second signal is ignored (it would cut the
shutdown short); a third ends the process at once (``os._exit``), for a shutdown that hangs.

:func:`hard_time_bound` arms a wall-clock alarm (SIGALRM) that raises
:class:`TimeBoundExceeded` in the main thread, for waits nothing else bounds.

:func:`deferred_signals` holds both back for a few steps that must happen together (create a
log file and hand it to the shutdown path that will finish it): the first that arrives inside
is raised when the block ends.

Exit codes, the same for every command:

| code | meaning |
|---|---|
| 0 | the run ended as asked (end of episodes, ``--duration``, the device ended the episode) |
| 1 | a check failed (``replay`` found a mismatch) |
| 2 | user error: bad argument, unreadable or malformed file, policy and plant do not match |
| 3 | run fault: link lost and not restored, the hard time bound was hit |
| 4 | log incomplete: the run went on but its log could not be written in full |
| 128+N | stopped by signal N: 130 SIGINT (Ctrl-C), 143 SIGTERM, 129 SIGHUP |
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_RUN_FAULT = 3
EXIT_LOG_INCOMPLETE = 4
#: Signals :func:`stop_signals` turns into :class:`Interrupted` (those that exist here).
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop by signal ``signum`` (SIGINT, SIGTERM, SIGHUP).

    A :class:`KeyboardInterrupt`, so every ``except KeyboardInterrupt`` that handles Ctrl-C
    handles SIGTERM and SIGHUP the same way.
    """

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        """The signal's name, e.g. ``"SIGTERM"``."""
        return signal_name(self.signum)

    @property
    def exit_code(self) -> int:
        """128 + the signal number."""
        return 128 + self.signum


class TimeBoundExceeded(KeyboardInterrupt):
    """The hard wall-clock bound of :func:`hard_time_bound` was reached."""

    reason = "time_bound"
    exit_code = EXIT_RUN_FAULT

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"hard time bound of {seconds:g} s reached")


def signal_name(signum: int) -> str:
    """``"SIGTERM"`` for 15, ``"signal N"`` for an unknown number."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def stop_reason(exc: BaseException) -> str:
    """What ended a run, for the ``run_end`` event: ``"SIGINT"``, ``"SIGTERM"``,
    ``"time_bound"``, or the exception's class name."""
    if isinstance(exc, (Interrupted, TimeBoundExceeded)):
        return exc.reason
    if isinstance(exc, KeyboardInterrupt):
        return "SIGINT"
    return type(exc).__name__


def interrupt_exit_code(exc: KeyboardInterrupt) -> int:
    """Exit code for a run stopped by ``exc``: 128+N for signal N, 3 for the time bound."""
    code = getattr(exc, "exit_code", None)
    return int(code) if code is not None else 128 + int(signal.SIGINT)


def run_exit_code(stopped_by: KeyboardInterrupt | None, log_errors: list[str] | None = None) -> int:
    """Exit code of a run that returned a summary: the interrupt's code if one stopped it,
    else 4 if the log is incomplete, else 0."""
    if stopped_by is not None:
        return interrupt_exit_code(stopped_by)
    return EXIT_LOG_INCOMPLETE if log_errors else EXIT_OK


#: Open :func:`deferred_signals` blocks, and what arrived meanwhile (main thread only).
_deferring = 0
_deferred: list[KeyboardInterrupt] = []


def _raise_or_defer(exc: KeyboardInterrupt) -> None:
    """Raise ``exc`` from a signal handler, or keep it for the end of :func:`deferred_signals`."""
    if _deferring:
        _deferred.append(exc)
        return
    raise exc


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Within the block, the stop signals of :func:`stop_signals` and the alarm of
    :func:`hard_time_bound` do not raise; the first that arrived is raised when the block ends
    (in place of an exception the block raised: the signal came first). For steps that must not
    be separated, e.g. creating a log file and handing it to the code that finishes it. Blocks
    nest (the outermost raises); outside the main thread, where those handlers never run, it
    does nothing."""
    global _deferring
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if not _deferring and _deferred:
            exc = _deferred[0]
            _deferred.clear()
            raise exc


class _Handler:
    """Raises :class:`Interrupted` on the first signal, ignores the second, exits on the third."""

    def __init__(self) -> None:
        self.count = 0
        self.first: int | None = None  # the signal that stopped the run

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.count == 1:
            self.first = signum
            _raise_or_defer(Interrupted(signum))
            return
        if self.count == 2:
            print(
                f"liquidnode: {signal_name(signum)} while stopping: finishing the shutdown "
                "(once more to exit at once)",
                file=sys.stderr,
                flush=True,
            )
            return
        os._exit(128 + signum)


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted` in the main
    thread (once; see the module docstring). A bare :class:`KeyboardInterrupt`, or any other
    exception, that leaves the block after such a signal leaves it as that signal's
    :class:`Interrupted` (exit code 128+N), chained to it: the signal came first, and what
    failed after it (an import cut short, a library that turned the interrupt into its own
    error) is its consequence. A signal that is ignored (``nohup``) stays ignored. Outside the
    main thread it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = _Handler()
    previous = {}
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is signal.SIG_IGN:
            continue  # nohup, or a shell's background job: ignored on purpose, keep it so
        with contextlib.suppress(OSError, ValueError):
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    except KeyboardInterrupt as exc:
        # Code that catches the handler's exception and raises a bare KeyboardInterrupt
        # (Ray's blocking calls do) loses which signal it was: give it back.
        if type(exc) is KeyboardInterrupt and handler.first is not None:
            raise Interrupted(handler.first) from exc
        raise
    except Exception as exc:
        if handler.first is not None:
            raise Interrupted(handler.first) from exc
        raise
    finally:
        for signum, old in previous.items():
            with contextlib.suppress(OSError, ValueError, TypeError):
                signal.signal(signum, old)


@contextlib.contextmanager
def hard_time_bound(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TimeBoundExceeded` in the main thread after ``seconds`` of wall-clock
    time (None: no bound). Uses SIGALRM; the alarm is cancelled when the block ends, and an
    enclosing one (armed before) is left to fire first or re-armed with what is left of it."""
    if (
        seconds is None
        or not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    fired = False

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if not fired:
            fired = True
            _raise_or_defer(TimeBoundExceeded(seconds))

    outer_delay, _ = signal.getitimer(signal.ITIMER_REAL)
    if 0 < outer_delay <= seconds:  # an enclosing alarm (a test runner's) fires first anyway
        yield
        return
    start = time.monotonic()
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay > 0:  # give an enclosing alarm back what is left of it
            left = outer_delay - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))
