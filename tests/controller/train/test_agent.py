"""The actor's recurrent step: state reset at episode starts, BPTT unroll consistency."""

import pytest
import torch

from liquidnode.controller.train.agent import Actor, Critic, build_cell


def _actor(cell: str) -> Actor:
    torch.manual_seed(0)
    return Actor(build_cell(cell, 4, 2, 12, 16, seed=3), 2, "tanh", -0.5)


@pytest.mark.parametrize("cell", ["cfc", "ltc", "ncp", "lstm", "gru"])
def test_start_flag_discards_the_carried_state(cell):
    actor = _actor(cell)
    x = torch.randn(3, 4)
    ts = torch.full((3,), 0.8)
    junk = torch.randn(3, actor.state_size) * 5
    fresh, h_fresh = actor.step(x, torch.zeros(3, actor.state_size), ts, torch.zeros(3))
    masked, h_masked = actor.step(x, junk, ts, torch.ones(3))
    torch.testing.assert_close(masked, fresh)
    torch.testing.assert_close(h_masked, h_fresh)
    carried, _ = actor.step(x, junk, ts, torch.zeros(3))
    assert not torch.allclose(carried, fresh)


@pytest.mark.parametrize("cell", ["cfc", "ltc", "lstm", "gru"])
def test_unroll_resets_at_episode_starts_inside_a_sequence(cell):
    actor = _actor(cell)
    length, k = 10, 6
    x = torch.randn(2, length, 4)
    ts = torch.rand(2, length) + 0.5
    starts = torch.zeros(2, length)
    starts[0, k] = 1.0  # env 0 starts a new episode at step k
    h0 = torch.randn(2, actor.state_size)
    with torch.no_grad():
        full = actor.unroll(x, ts, starts, h0)
        # the tail after the reset equals a fresh unroll of the tail from a zero state
        tail = actor.unroll(
            x[:1, k:], ts[:1, k:], torch.zeros(1, length - k), torch.zeros(1, actor.state_size)
        )
        torch.testing.assert_close(full[0, k:], tail[0])
        # env 1 (no start) differs from a fresh unroll of its tail
        tail1 = actor.unroll(
            x[1:, k:], ts[1:, k:], torch.zeros(1, length - k), torch.zeros(1, actor.state_size)
        )
        assert not torch.allclose(full[1, k:], tail1[0])


def test_unroll_from_a_stored_chunk_state_equals_the_continuous_rollout():
    # Truncated BPTT: re-running the second chunk from the state stored at its start
    # reproduces the step-by-step rollout exactly.
    actor = _actor("cfc")
    length = 8
    x = torch.randn(1, 2 * length, 4)
    ts = torch.rand(1, 2 * length) + 0.5
    starts = torch.zeros(1, 2 * length)
    starts[0, 0] = 1.0
    h = torch.zeros(1, actor.state_size)
    means, hidden = [], []
    with torch.no_grad():
        for t in range(2 * length):
            hidden.append(h)
            m, h = actor.step(x[:, t], h, ts[:, t], starts[:, t])
            means.append(m)
        second = actor.unroll(x[:, length:], ts[:, length:], starts[:, length:], hidden[length])
    torch.testing.assert_close(second[0], torch.cat(means[length:]))


def test_gradients_flow_through_the_unroll_to_the_cell_and_log_std():
    actor = _actor("cfc")
    x = torch.randn(2, 5, 4)
    mean = actor.unroll(x, torch.ones(2, 5), torch.zeros(2, 5), torch.zeros(2, actor.state_size))
    dist = actor.distribution(mean)
    dist.log_prob(torch.zeros_like(mean)).sum().backward()
    assert actor.log_std.grad is not None
    grads = [p.grad for p in actor.cell.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_critic_shape():
    assert Critic(4, 8)(torch.zeros(3, 5, 4)).shape == (3, 5)
