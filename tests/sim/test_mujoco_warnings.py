"""MuJoCo's warnings under liquidnode: known notices dropped, others once on stderr, no
MUJOCO_LOG.TXT in the working directory, nothing on stdout."""

from __future__ import annotations

import subprocess
import sys
import textwrap

_TRIGGER = textwrap.dedent(
    """
    import gymnasium as gym
    import mujoco
    import numpy as np

    gym.make("HalfCheetah-v5")  # its bundled XML uses the deprecated settotalmass
    model = mujoco.MjModel.from_xml_string(
        '<mujoco><worldbody><body><freejoint/><geom size=".1"/></body></worldbody></mujoco>'
    )
    for _ in range(2):  # the same warning in two simulations
        data = mujoco.MjData(model)
        data.qvel[0] = np.nan
        mujoco.mj_step(model, data)
        assert data.warning[mujoco.mjtWarning.mjWARN_BADQVEL].number == 1  # the guard's counter
    """
)

_LIQUIDNODE = textwrap.dedent(
    """
    from liquidnode.sim import make_env, make_plant

    make_plant("HalfCheetah-v5")
    make_env("HalfCheetah-v5")
    """
)


def _run(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_plain_mujoco_writes_mujoco_log_in_the_cwd(tmp_path):
    """The behaviour the handler replaces (so the next test can fail)."""
    proc = _run(_TRIGGER, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "MUJOCO_LOG.TXT").is_file()
    assert "settotalmass" in proc.stdout + proc.stderr


def test_liquidnode_drops_known_notices_shows_others_once_and_writes_no_log(tmp_path):
    proc = _run(_LIQUIDNODE + _TRIGGER, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.iterdir()) == []  # no MUJOCO_LOG.TXT
    assert proc.stdout == ""  # nothing mixed into a --json output
    assert "settotalmass" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("MuJoCo warning:")]
    assert len(lines) == 1 and "QVEL" in lines[0], proc.stderr
