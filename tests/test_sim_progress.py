"""``liquidnode sim`` in real time is not silent: a line per episode as it ends, and a live
status line (carriage-return updated) when stderr is a terminal."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
import threading

from liquidnode.cli import main
from liquidnode.cli.progress import RunProgress
from liquidnode.controller.run_summary import EpisodeResult


class _Timer:
    """The counters RunProgress reads from the loop's CycleTimer."""

    period_s = 0.04

    def __init__(self) -> None:
        self.ticks = 0
        self.overruns = 0


def test_episode_lines_and_status_line_on_a_stream():
    timer, stream = _Timer(), io.StringIO()
    drawn = threading.Event()

    class Stream(io.StringIO):
        def write(self, text: str) -> int:
            if "episode 1/2: 25 ticks, 1.00 s, overruns 1" in text:
                drawn.set()
            return stream.write(text)

    with RunProgress(timer, 2, Stream(), live=True, interval_s=0.001) as progress:
        timer.ticks, timer.overruns = 25, 1
        assert drawn.wait(timeout=60)  # the thread redraws from the live counters
        timer.ticks = 30
        progress.episode_ended(EpisodeResult(0, 3, 30.0, 30, False, True, 12.5, 1, 0))
        assert progress.status_text() == "episode 2/2: 0 ticks, 0.00 s, overruns 1"
    out = stream.getvalue()
    # The episode line replaces the status line on screen, then the status comes back.
    assert "\r\x1b[Kepisode 0 (seed 3): return 30.00, 30 ticks, late p99 12.5 µs" in out
    assert out.endswith("\r\x1b[K")  # the status line is erased on the way out


def test_not_a_terminal_gets_episode_lines_only(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = main(["sim", "--max-ticks", "3", "--episodes", "2", "--no-log"])
    err = capsys.readouterr().err
    assert rc == 0, err
    lines = [ln for ln in err.splitlines() if ln.startswith("episode ")]
    assert len(lines) == 2 and lines[1].startswith("episode 1 (seed ")
    assert "3 ticks, late p99" in lines[0] and "\r" not in err


def test_fast_mode_prints_no_episode_lines(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["sim", "--fast", "--max-ticks", "3", "--episodes", "2", "--no-log"]) == 0
    assert not re.search(r"^episode \d", capsys.readouterr().err, re.M)


def test_status_line_on_a_terminal(tmp_path):
    """stderr on a pseudo-terminal: the status line is drawn and updated in place."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "liquidnode", "sim", "--max-ticks", "30", "--no-log"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, "TERM": "xterm"},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    err = b"".join(chunks).decode()
    # 30 ticks at 25 Hz = 1.2 s: the 0.5 s refresh draws the status at least once.
    assert re.search(r"\r\x1b\[Kepisode 1/1: \d+ ticks, [\d.]+ s, overruns \d+", err), err
    assert re.search(r"episode 0 \(seed \d+\): return", err), err


def test_first_line_says_where_the_log_goes(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["sim", "--fast", "--max-ticks", "3"]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert re.fullmatch(r"log: runs/\d{8}T\d{6}Z(-\d+)?/sim\.mcap", first), first
    assert (tmp_path / first.removeprefix("log: ")).is_file()
