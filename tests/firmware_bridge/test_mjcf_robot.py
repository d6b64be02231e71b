"""A robot modelled in MJCF, end to end: ``train --env robot.xml`` (a short run), the policy
checked against a board file's schema (units, action range, naming the channel), and
``deploy`` against the twin serving the same model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from liquidnode.cli import main
from liquidnode.controller.errors import SpaceMismatchError
from liquidnode.controller.policy import Policy
from liquidnode.firmware_bridge.board_file import BOARDS_DIR, load_board
from liquidnode.firmware_bridge.channel_check import check_policy_fits_device
from liquidnode.sim import PENDULUM_XML
from tests.firmware_bridge.test_cli import Twin, deploy

BOARD = BOARDS_DIR / "pendulum.toml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``liquidnode train --env sim/models/pendulum.xml``, 512 steps (a smoke run)."""
    out = tmp_path_factory.mktemp("mjcf") / "pendulum.safetensors"
    argv = ["train", "--env", str(PENDULUM_XML), "--cell", "cfc", "--units", "4",
            "--backbone-units", "8", "--steps", "512", "--rollout-steps", "256",
            "--minibatches", "2", "--epochs", "1", "--eval-interval", "0",
            "--final-eval-episodes", "1", "--no-progress", "--no-tensorboard",
            "--run-dir", str(out.parent / "run"), "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    return out


def test_the_trained_policy_records_the_models_channels(trained: Path) -> None:
    meta = Policy.load(trained).metadata
    assert meta.env_id == str(PENDULUM_XML) and (meta.obs_dim, meta.act_dim) == (3, 1)
    assert meta.observation_space["units"] == ["rad", "rad/s", "N·m"]
    assert meta.action_space["units"] == ["N·m"]
    assert (meta.action_space["low"], meta.action_space["high"]) == ([-2.0], [2.0])
    assert meta.provenance["trained"] is True


def test_the_pendulum_board_fits_the_policy_and_a_wrong_unit_is_named(trained: Path) -> None:
    meta = Policy.load(trained).metadata
    board = load_board(BOARD)
    check_policy_fits_device(meta, board.plant_spec(), "board 'pendulum'")
    # the same board with the gyro in deg/s: refused, naming channel 1 on both sides
    spec = board.plant_spec()
    units = list(spec.obs_units)
    units[1] = "deg/s"
    wrong = dataclasses.replace(spec, obs_units=tuple(units))
    with pytest.raises(
        SpaceMismatchError,
        match=r"observation channel 1: .*'rad/s' \('hinge vel'\) .*'hinge_vel' in 'deg/s'",
    ):
        check_policy_fits_device(meta, wrong, "board 'pendulum'")
    # a motor channel with another range: refused too
    narrow = dataclasses.replace(
        spec, action_low=spec.action_low / 2, action_high=spec.action_high / 2
    )
    with pytest.raises(
        SpaceMismatchError, match=r"action channel 0: .*\[-2, 2\].*takes \[-1, 1\] N\*m"
    ):
        check_policy_fits_device(meta, narrow, "board 'pendulum'")


@pytest.mark.slow
def test_deploy_against_the_twin_of_the_same_model(trained: Path) -> None:
    twin = Twin("--env", str(PENDULUM_XML))
    try:
        r = deploy("--port", twin.port, "--policy", str(trained), "--duration", "1", "--json")
    finally:
        twin.stop()
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["error"] is None and out["link"]["crc_errors"] == 0
    assert sum(ep["ticks"] for ep in out["episodes"]) >= 20  # 50 Hz for 1 s, loaded machine


@pytest.mark.slow
def test_deploy_refuses_a_policy_whose_units_differ_and_names_the_channel(
    trained: Path, tmp_path: Path
) -> None:
    p = Policy.load(trained)
    space = dict(p.metadata.observation_space, units=["rad", "deg/s", "N·m"])
    meta = dataclasses.replace(p.metadata, observation_space=space)
    wrong = tmp_path / "deg.safetensors"
    Policy(meta, p.cell, p.obs_mean, p.obs_std, p.action_scale, p.action_offset).save(wrong)
    twin = Twin("--env", str(PENDULUM_XML))
    try:
        r = deploy("--port", twin.port, "--policy", str(wrong), "--duration", "1")
    finally:
        twin.stop()
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "observation channel 1" in lines[0], r.stderr
    assert "'deg/s'" in lines[0] and "'hinge vel' in 'rad/s'" in lines[0]
