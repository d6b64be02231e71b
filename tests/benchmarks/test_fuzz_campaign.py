"""Property tests over everything liquidnode reads, and a bounded sample of the fuzz campaign
(``scripts/fuzz_campaign.py`` runs the long one): every input is read or refused with a
LiquidNodeError; nothing raises anything else, hangs, loses data or leaves a device unsafe."""

from __future__ import annotations

import functools
import json
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liquidnode.benchmarks import fuzz_campaign as fc
from liquidnode.benchmarks import fuzz_inputs as fi
from liquidnode.controller.errors import LiquidNodeError
from liquidnode.controller.logs.episode import read_log
from liquidnode.controller.logs.summary import summarize
from liquidnode.controller.policy import Policy
from liquidnode.firmware_bridge.fake_device import ACTIONS, Script, Step

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from([1e308, -1e308, 2**64, "nan", ""]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
mutation = st.tuples(st.integers(0, 10**6), st.integers(0, 2), json_values)


@functools.cache
def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="liquidnode-fuzz-"))


@functools.cache
def _bases() -> tuple[bytes, ...]:
    return tuple(fi.valid_policy_files(_scratch()))


def _with_metadata(data: bytes, meta_text: str) -> bytes:
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header["__metadata__"]["liquidnode"] = meta_text
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data[8 + n :]


def _loads_or_refuses(path: Path) -> None:
    try:
        policy = Policy.load(path)
    except LiquidNodeError:
        return
    for _ in range(3):
        out = policy.step(np.zeros(policy.obs_dim), 0.02)
        assert out.shape == (policy.act_dim,)


@SETTINGS
@given(base=st.integers(0, 2), mutations=st.lists(mutation, min_size=1, max_size=3))
def test_policy_metadata_with_any_value_anywhere_loads_or_is_refused(base, mutations):
    data = _bases()[base]
    (n,) = struct.unpack("<Q", data[:8])
    meta = json.loads(json.loads(data[8 : 8 + n])["__metadata__"]["liquidnode"])
    for index, op, value in mutations:
        meta = fi.mutate_json_at(meta, index, op, value)
    path = _scratch() / "hypothesis.safetensors"
    path.write_bytes(_with_metadata(data, json.dumps(meta)))
    _loads_or_refuses(path)


@SETTINGS
@given(base=st.integers(0, 2), cut=st.integers(0, 10**6), flips=st.lists(st.integers(0, 10**6)))
def test_truncated_or_bit_flipped_policy_files_load_or_are_refused(base, cut, flips):
    data = bytearray(_bases()[base])
    for f in flips:
        data[f % len(data)] ^= 1 << (f % 8)
    path = _scratch() / "hypothesis.safetensors"
    path.write_bytes(bytes(data[: max(cut % (len(data) + 1), 0)]))
    _loads_or_refuses(path)


@SETTINGS
@given(
    message=st.integers(0, 10**6),
    mutations=st.lists(mutation, min_size=1, max_size=2),
    run_mutation=st.none() | mutation,
    compress=st.booleans(),
)
def test_logs_with_any_value_anywhere_read_or_are_refused(
    message, mutations, run_mutation, compress
):
    msgs, run = fi.valid_log_messages(np.random.default_rng(0))
    i = message % len(msgs)
    body = msgs[i][1]
    for index, op, value in mutations:
        body = fi.mutate_json_at(body, index, op, value)
    msgs[i] = (msgs[i][0], body)
    if run_mutation is not None:
        run = fi.mutate_json_at(run, *run_mutation)
    path = _scratch() / "hypothesis.mcap"
    fi.write_log(path, msgs, run, compress=compress)
    try:
        contents = read_log(path)
    except LiquidNodeError:
        return
    summarize(contents)
    for ep in contents.episodes:
        assert ep.obs.shape[0] == ep.ticks
        _ = (ep.duration_s, ep.episode_return, ep.seed, ep.initial_state)


numbers = st.floats() | st.sampled_from([0, -1, 2.5, 1e12, 1e-9, 100000, 100001])


@settings(max_examples=30, deadline=None)
@given(timestep=st.none() | numbers, skip=st.none() | numbers, ticks=st.none() | numbers,
       noise=st.none() | numbers, rate=st.none() | numbers)  # fmt: skip
def test_mjcf_numerics_and_rates_build_or_are_refused(timestep, skip, ticks, noise, rate):
    from liquidnode.sim import PENDULUM_XML
    from liquidnode.sim.mjcf_plant import MjcfPlant

    text = PENDULUM_XML.read_text()
    if timestep is not None:
        text = text.replace('timestep="0.002"', f'timestep="{timestep!r}"')
    for name, value in (("frame_skip", skip), ("max_ticks", ticks), ("reset_noise", noise)):
        if value is not None:
            old = next(line for line in text.splitlines() if f'"liquidnode_{name}"' in line)
            text = text.replace(old, f'<numeric name="liquidnode_{name}" data="{value!r}"/>')
    path = _scratch() / "hypothesis.xml"
    path.write_text(text.replace("inf", "1e999"))
    try:
        plant = MjcfPlant(path, rate_hz=rate)
        plant.connect()
        plant.reset(0)
        plant.act(np.zeros(plant.spec.act_dim))
        plant.observe()
    except LiquidNodeError:
        return


steps = st.builds(
    Step,
    at=st.integers(0, 20),
    action=st.sampled_from(ACTIONS),
    n=st.integers(1, 300),
    seconds=st.floats(0, 0.3),
    value=st.sampled_from([0, 2, 255]),
    values=st.lists(st.sampled_from([np.nan, np.inf, 3.4e38, 0.0]), min_size=4, max_size=4).map(
        tuple
    ),
)
scripts = st.builds(
    Script,
    n_obs=st.sampled_from([4, 4, 4, 3]),
    period_us=st.sampled_from([5000, 5000, 0, 0xFFFFFFFF]),
    watchdog_ms=st.sampled_from([200, 200, 0]),
    protocol_version=st.sampled_from([1, 1, 1, 2]),
    low=st.sampled_from([-3.0, 1.0, np.nan]),
    steps=st.lists(steps, max_size=3),
)


@pytest.mark.slow
@settings(max_examples=8, deadline=None)
@given(script=scripts, seed=st.integers(0, 2**31))
def test_any_fake_device_session_ends_cleanly_and_safely(script, seed):
    outcome = fc.device_case(np.random.default_rng(seed), _scratch(), 0.2, script)
    assert outcome.result in ("ok", "refused", "link_lost"), outcome


def test_a_bounded_campaign_sample_finds_no_defect():
    tally = fc.run_campaign({"policy": 60, "log": 60, "mjcf": 10, "device": 2}, seed=12345)
    assert tally.total() == 132
    assert tally.defect_count() == 0, tally.defects
