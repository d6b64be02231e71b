"""BPTT chunking of rollouts and the chunk-start hidden states."""

import numpy as np
import pytest

from liquidnode.controller.train.rollout.buffer import (
    RolloutBuffer,
    chunk,
    chunk_start_states,
    sequences,
)


def test_chunk_cuts_each_env_into_consecutive_sequences():
    steps, envs, seq_len = 6, 2, 3
    # value = 10 * t + n identifies (step, env)
    arr = (10 * np.arange(steps)[:, None] + np.arange(envs)[None, :]).astype(np.float32)
    out = chunk(arr, seq_len)
    assert out.shape == (4, 3)
    # sequence c * envs + n = env n, steps c*L .. c*L + L - 1
    np.testing.assert_array_equal(out[0], [0, 10, 20])
    np.testing.assert_array_equal(out[1], [1, 11, 21])
    np.testing.assert_array_equal(out[2], [30, 40, 50])
    np.testing.assert_array_equal(out[3], [31, 41, 51])


def test_chunk_keeps_trailing_feature_axes():
    arr = np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2)
    out = chunk(arr, 2)
    assert out.shape == (6, 2, 2)
    np.testing.assert_array_equal(out[4], arr[2:4, 1])


def test_chunk_start_states_are_the_hidden_state_at_each_sequence_start():
    steps, envs, seq_len, state = 8, 3, 4, 5
    hidden = np.random.default_rng(0).normal(size=(steps, envs, state)).astype(np.float32)
    h0 = chunk_start_states(hidden, seq_len)
    seqs = chunk(hidden, seq_len)
    assert h0.shape == (6, state)
    np.testing.assert_array_equal(h0, seqs[:, 0])
    np.testing.assert_array_equal(h0[envs + 1], hidden[seq_len, 1])


def test_chunk_rejects_a_rollout_that_is_not_a_multiple():
    with pytest.raises(ValueError, match="not a multiple"):
        chunk(np.zeros((5, 2)), 2)


def test_sequences_chunks_every_field_and_extras():
    buf = RolloutBuffer.empty(steps=4, envs=2, obs_dim=3, act_dim=1, state_dim=6)
    buf.hidden[2, 1] = 7.0
    adv = np.arange(8, dtype=np.float32).reshape(4, 2)
    out = sequences(buf, 2, advantages=adv)
    assert "hidden" not in out
    assert out["obs"].shape == (4, 2, 3)
    assert out["actions"].shape == (4, 2, 1)
    assert out["h0"].shape == (4, 6)
    np.testing.assert_array_equal(out["h0"][3], np.full(6, 7.0))
    np.testing.assert_array_equal(out["advantages"][3], [5, 7])
