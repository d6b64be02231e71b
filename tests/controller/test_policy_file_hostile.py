"""Hostile policy paths and files: one PolicyFileError line, never a hang or a traceback."""

from __future__ import annotations

import json
import os
import struct

import pytest

from liquidnode.controller.errors import PolicyFileError
from liquidnode.controller.policy import random_policy
from liquidnode.controller.policy_file import METADATA_KEY, read_policy_file


def _rewrite(path, change) -> None:
    """Rewrite the policy file at ``path`` with ``change(metadata_dict)`` applied."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = json.loads(header["__metadata__"][METADATA_KEY])
    text = change(meta)
    header["__metadata__"][METADATA_KEY] = text if isinstance(text, str) else json.dumps(meta)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])


@pytest.fixture
def policy(tmp_path):
    path = tmp_path / "p.safetensors"
    random_policy(3, 1, seed=0).save(path)
    return path


def test_dev_zero_is_refused_before_reading():
    with pytest.raises(PolicyFileError, match=r"/dev/zero is not a regular file \(a device\)"):
        read_policy_file("/dev/zero")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "p.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(PolicyFileError, match=r"is not a regular file \(a FIFO\)"):
        read_policy_file(fifo)


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(PolicyFileError, match=r"is not a regular file \(a directory\)"):
        read_policy_file(tmp_path)


def test_deeply_nested_metadata_is_refused(policy):
    _rewrite(policy, lambda m: m["provenance"].update(x=json.loads("[" * 200 + "]" * 200)))
    with pytest.raises(PolicyFileError, match="nested deeper than 64 levels"):
        read_policy_file(policy)
    _rewrite(policy, lambda m: '{"provenance": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(PolicyFileError, match="nested deeper than 64 levels"):
        read_policy_file(policy)


def test_reversed_action_limits_are_refused(policy):
    def reverse(meta):
        meta["action_space"]["low"], meta["action_space"]["high"] = [1.0], [-1.0]

    _rewrite(policy, reverse)
    with pytest.raises(PolicyFileError, match=r"action_space has low > high at index \[0\]"):
        read_policy_file(policy)


def test_metadata_that_is_not_a_string_is_refused(policy):
    data = policy.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header["__metadata__"][METADATA_KEY] = {"cell": 1}
    raw = json.dumps(header).encode()
    policy.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])
    with pytest.raises(PolicyFileError, match="must be a JSON string"):
        read_policy_file(policy)
