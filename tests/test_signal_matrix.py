"""SIGINT and SIGTERM while ``replay``, ``logs``, ``bench``, ``stress`` and ``twin`` run.

Each case starts the real ``liquidnode`` command in its own session, waits until it is
demonstrably at work (a line it prints, the log it reads held open, the processes it spawned
alive), then sends the signal the way it comes in practice: SIGINT to the whole process group
(a terminal's Ctrl-C), SIGTERM to the process alone (``kill``, Docker). Every command must
exit 128+N with one ``liquidnode CMD: interrupted (SIGNAME)`` line and no traceback on stderr,
leave no process of its session behind, and leave no output file half written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from mcap.records import Attachment, Channel, Message, Metadata, Schema
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, Writer

from liquidnode.controller.logs.recorder import McapRecorder
from liquidnode.controller.loop import ControlLoop, LoopConfig
from liquidnode.controller.policy import random_policy
from liquidnode.sim import PENDULUM_XML, make_plant

pytestmark = pytest.mark.slow

#: How long a command may take to reach the point where the signal is sent, s.
REACH_S = 60.0
SIGNALS = [signal.SIGINT, signal.SIGTERM]


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid log of 40 identical 250-tick episodes of the MJCF pendulum, policy attached:
    seconds of reading and replaying. One real episode is recorded, then copied."""
    folder = tmp_path_factory.mktemp("signal_matrix")
    policy = folder / "pendulum.safetensors"
    random_policy(3, 1, seed=0).save(policy)
    one = folder / "one.mcap"
    plant = make_plant(str(PENDULUM_XML), max_ticks=250)
    recorder = McapRecorder(one, command="sim", policy_path=policy, min_free_bytes=0)
    config = LoopConfig(realtime=False, max_ticks=250)
    ControlLoop(plant, random_policy(3, 1, seed=0), config, recorder=recorder).run(1, seed=0)
    big = folder / "big.mcap"
    _copy_episodes(one, big, copies=40)
    return big


def _copy_episodes(src: Path, dst: Path, copies: int) -> None:
    """Write ``src`` to ``dst`` with its episode 0 repeated as episodes 0..copies-1."""
    with src.open("rb") as f:
        records = list(StreamReader(f).records)
    with dst.open("wb") as out:
        writer = Writer(out, compression=CompressionType.NONE)
        writer.start(profile="", library="liquidnode test")
        schemas: dict[int, int] = {}
        channels: dict[int, int] = {}
        messages: list[tuple[Message, dict]] = []
        for r in records:
            if isinstance(r, Schema):
                schemas[r.id] = writer.register_schema(r.name, r.encoding, r.data)
            elif isinstance(r, Channel):
                channels[r.id] = writer.register_channel(
                    r.topic, r.message_encoding, schemas.get(r.schema_id, 0), r.metadata
                )
            elif isinstance(r, Metadata):
                writer.add_metadata(r.name, r.metadata)
            elif isinstance(r, Attachment):
                writer.add_attachment(r.create_time, r.log_time, r.name, r.media_type, r.data)
            elif isinstance(r, Message):
                messages.append((r, json.loads(r.data)))
        run_end = [(m, b) for m, b in messages if b.get("kind") == "run_end"]
        episode = [(m, b) for m, b in messages if b.get("kind") != "run_end"]
        for k in range(copies):
            for m, body in episode:
                data = json.dumps({**body, "episode": k}).encode()
                writer.add_message(channels[m.channel_id], m.log_time, data, m.publish_time)
        for m, _body in run_end:
            writer.add_message(channels[m.channel_id], m.log_time, m.data, m.publish_time)
        writer.finish()


# ---------------------------------------------------------------------------- helpers
def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, parent pid, session id, start time) of process ``pid``, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), int(fields[3]), int(fields[19])


def _processes() -> dict[int, tuple[str, int, int, int]]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            found[int(entry)] = st
    return found


def _family(root: int) -> dict[int, int]:
    """The live processes of ``root``'s session and all its descendants (in whatever session
    they made for themselves): pid -> start time."""
    procs = _processes()
    family = {pid for pid, st in procs.items() if st[2] == root}
    grew = True
    while grew:
        more = {pid for pid, st in procs.items() if st[1] in family | {root}} - family
        family |= more
        grew = bool(more)
    return {pid: procs[pid][3] for pid in family if procs[pid][0] != "Z"}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _holds_open(pid: int, path: Path) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                return True
        except OSError:
            continue
    return False


class Command:
    """``liquidnode ARGS`` in a new session; stdout and stderr collected by threads."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "liquidnode", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            start_new_session=True,
            # a shell running the tests in the background ignores SIGINT and the child would
            # inherit that: give it the default, as a terminal would
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(s, lines), daemon=True)
            for s, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for t in self._readers:
            t.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)

    def wait_for(self, what: str, cond: Callable[[], bool]) -> None:
        deadline = time.monotonic() + REACH_S
        while not cond():
            assert self.proc.poll() is None, f"exited before {what}: {''.join(self.err)}"
            assert time.monotonic() < deadline, f"no {what} in {REACH_S} s: {''.join(self.err)}"
            time.sleep(0.005)

    def printed(self, prefix: str, stream: str = "err") -> Callable[[], bool]:
        lines = self.err if stream == "err" else self.out
        return lambda: any(line.startswith(prefix) for line in lines)

    def interrupt(self, signum: int) -> tuple[int, str, str]:
        if signum == signal.SIGINT:
            os.killpg(self.proc.pid, signum)  # Ctrl-C: the terminal's whole process group
        else:
            self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
        for t in self._readers:
            t.join(timeout=10)
        return code, "".join(self.out), "".join(self.err)

    def leftovers(self, family: dict[int, int]) -> list[str]:
        """Processes of ``family`` (pid -> start time) or of the command's session still alive
        (after a short grace), killed so that a failing case cleans up."""

        def alive() -> list[int]:
            now = _family(self.proc.pid)
            return [p for p in now if p not in family] + [
                p
                for p, start in family.items()
                if (st := _stat(p)) and st[3] == start and st[0] != "Z"
            ]

        deadline = time.monotonic() + 2.0
        while (pids := alive()) and time.monotonic() < deadline:
            time.sleep(0.02)
        names = [_cmdline(pid) for pid in pids]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return names


def _check_stopped(cmd: Command, name: str, signum: int) -> tuple[str, str]:
    family = _family(cmd.proc.pid)  # what it runs when the signal comes
    family.pop(cmd.proc.pid, None)
    code, out, err = cmd.interrupt(signum)
    signame = signal.Signals(signum).name
    assert code == 128 + signum, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "interrupted" in line]
    assert lines == [f"liquidnode {name}: interrupted ({signame})"], err
    assert err.rstrip().splitlines()[-1] == lines[0], err
    assert cmd.leftovers(family) == []
    return out, err


# ---------------------------------------------------------------------------- the matrix
@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_logs(tmp_path: Path, big_log: Path, signum: int) -> None:
    cmd = Command(["logs", str(big_log), "--json"], tmp_path)
    cmd.wait_for("reading the log", lambda: _holds_open(cmd.proc.pid, big_log))
    out, _ = _check_stopped(cmd, "logs", signum)
    assert out == ""  # no summary of a log it did not finish reading


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_replay(tmp_path: Path, big_log: Path, signum: int) -> None:
    png = tmp_path / "replay.png"
    cmd = Command(["replay", str(big_log), "--sim", "--plot", str(png), "--json"], tmp_path)
    cmd.wait_for("reading the log", lambda: _holds_open(cmd.proc.pid, big_log))
    out, _ = _check_stopped(cmd, "replay", signum)
    assert out == ""
    assert list(tmp_path.iterdir()) == []  # no plot, not even part of one


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_stress(tmp_path: Path, signum: int) -> None:
    png = tmp_path / "heatmap.png"
    args = ["stress", "--env", "InvertedPendulum-v5", "--episodes", "20", "--plot", str(png)]
    cmd = Command([*args, "--json"], tmp_path)
    cmd.wait_for("the start line", cmd.printed("stress: "))
    out, _ = _check_stopped(cmd, "stress", signum)
    assert out == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_twin(tmp_path: Path, signum: int) -> None:
    link = tmp_path / "robot"
    cmd = Command(["twin", "--env", str(PENDULUM_XML), "--link", str(link), "--json"], tmp_path)
    cmd.wait_for("the port line", cmd.printed("{", stream="out"))
    assert link.is_symlink()
    out, _ = _check_stopped(cmd, "twin", signum)
    ready, end = (json.loads(line) for line in out.splitlines())
    assert ready["link"] == str(link) and "ticks" in end  # the stop line is still printed
    assert not link.exists() and not link.is_symlink()


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_bench(tmp_path: Path, signum: int) -> None:
    cmd = Command(["bench", "--quick", "--only", "serial_rtt", "--json"], tmp_path)

    def devices_up() -> bool:  # the comparison's device processes run
        return sum("serve-" in _cmdline(pid) for pid in _family(cmd.proc.pid)) == 2

    cmd.wait_for("the device processes", devices_up)
    out, _ = _check_stopped(cmd, "bench", signum)
    assert out == ""
