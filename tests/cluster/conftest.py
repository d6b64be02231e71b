"""A real Ray cluster on this machine for the tests of ``liquidnode.cluster``.

``ray_cluster`` (session scope) starts a head node and a second worker node as separate
processes (``ray start --head --block`` / ``ray start --address ... --block``, one CPU and
1 GB of memory each), connects this process to it, and stops both nodes at the end by
signalling the process groups it started (never a machine-wide ``ray stop``). Without Ray
installed the tests that use it are skipped with the install line as the reason.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    import ray
except ImportError:  # the tests that need the cluster skip; the others still run
    ray = None

RAY = str(Path(sys.executable).with_name("ray"))
#: Resources of each node: small, so the cluster fits beside the rest of the machine.
NODE = ["--num-cpus=1", "--memory=1000000000", "--object-store-memory=100000000",
        "--node-ip-address=127.0.0.1", "--disable-usage-stats"]  # fmt: skip
#: How long a node may take to come up on a busy machine, s.
START_TIMEOUT_S = 240.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: The test cluster listens on 127.0.0.1 only, so it runs without Ray's token authentication.
ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def _start(args: list[str]) -> subprocess.Popen[bytes]:
    env = dict(os.environ, **ENV)
    return subprocess.Popen(
        [RAY, "start", "--block", *args, *NODE],
        start_new_session=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the node's process group (``ray start --block`` stops its processes), then
    SIGKILL whatever is left of it."""
    for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _alive_nodes() -> int:
    return sum(1 for n in ray.nodes() if n["Alive"])


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """The address of a two-node Ray cluster, with this process connected to it."""
    if ray is None:
        pytest.skip("needs Ray: pip install -c constraints.txt -e '.[cluster]'")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    head = _start(["--head", f"--port={port}", "--include-dashboard=false"])
    worker = None
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                ray.init(address=address, logging_level="WARNING")
                break
            except (ConnectionError, RuntimeError):
                if head.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the Ray head node did not start (exit {head.poll()})")
                time.sleep(1.0)
        worker = _start([f"--address={address}"])
        while _alive_nodes() < 2:
            if worker.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the second Ray node did not join (exit {worker.poll()})")
            time.sleep(0.5)
        yield address
    finally:
        ray.shutdown()
        for proc in (worker, head):
            if proc is not None:
                _stop(proc)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
