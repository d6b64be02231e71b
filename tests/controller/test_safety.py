"""SafetyLayer: clamp, rate limit, NaN/Inf guard, and it reports the action actually sent."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liquidnode.controller.errors import SpaceMismatchError
from liquidnode.controller.safety import SafetyLayer

#: Up to 20 two-channel actions, any float (NaN and +-inf included).
ACTION_SEQUENCES = st.lists(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=2, max_size=2),
    min_size=1,
    max_size=20,
)


def layer(**kw) -> SafetyLayer:
    return SafetyLayer(np.array([-1.0, -2.0]), np.array([1.0, 2.0]), np.zeros(2), **kw)


def test_clamps_to_limits_and_reports_clamped_channels_once_per_change():
    s = layer()
    sent, events = s.filter(np.array([5.0, 0.5]), 0.01)
    assert sent.tolist() == [1.0, 0.5]
    assert [(e.kind, e.detail["channels"]) for e in events] == [("clamp", [0])]
    # Still saturated on the same channel: no new event (the tick record holds the truth).
    sent, events = s.filter(np.array([7.0, 0.5]), 0.01)
    assert sent.tolist() == [1.0, 0.5] and events == []
    # A different set of clamped channels is reported again.
    sent, events = s.filter(np.array([7.0, -9.0]), 0.01)
    assert sent.tolist() == [1.0, -2.0]
    assert [e.detail["channels"] for e in events] == [[0, 1]]


def test_in_range_action_passes_unchanged_without_events():
    s = layer()
    a = np.array([0.25, -1.5])
    sent, events = s.filter(a, 0.01)
    assert np.array_equal(sent, a) and events == []
    assert sent is not a  # a new array: later changes to the wish cannot alter the log


def test_nan_before_any_action_sends_the_safe_action():
    s = SafetyLayer(np.array([-1.0]), np.array([1.0]), np.array([0.3]))
    sent, events = s.filter(np.array([np.nan]), 0.01)
    assert sent.tolist() == [0.3]
    assert events[0].kind == "nan_guard"
    assert events[0].detail == {"channels": [0], "source": "action"}


def test_nan_or_inf_holds_the_previous_sent_action():
    s = layer()
    s.filter(np.array([0.5, 3.0]), 0.01)  # sent [0.5, 2.0]
    sent, events = s.filter(np.array([np.inf, 1.0]), 0.01)
    assert sent.tolist() == [0.5, 2.0]
    assert events[0].kind == "nan_guard" and events[0].detail["channels"] == [0]
    sent, _ = s.filter(np.array([np.nan, -np.inf]), 0.01)
    assert sent.tolist() == [0.5, 2.0]
    s.reset()  # new episode: the hold falls back to the safe action
    sent, _ = s.filter(np.array([np.nan, 0.0]), 0.01)
    assert sent.tolist() == [0.0, 0.0]


def test_rate_limit_moves_at_most_max_rate_times_dt():
    s = layer(max_rate=10.0)  # units per second
    s.filter(np.array([0.0, 0.0]), 0.01)
    sent, _ = s.filter(np.array([1.0, -2.0]), 0.01)
    assert sent.tolist() == pytest.approx([0.1, -0.1])
    sent, _ = s.filter(np.array([1.0, -2.0]), 0.05)
    assert sent.tolist() == pytest.approx([0.6, -0.6])


def test_safe_action_is_clipped_into_limits_and_shapes_are_checked():
    s = SafetyLayer(np.array([0.0]), np.array([1.0]), np.array([-5.0]))
    assert s.safe_action.tolist() == [0.0]
    with pytest.raises(SpaceMismatchError, match=r"action shape \(3,\) does not match .* 2"):
        layer().filter(np.zeros(3), 0.01)
    with pytest.raises(SpaceMismatchError, match="disagree in shape"):
        SafetyLayer(np.zeros(2), np.ones(3), np.zeros(2))
    with pytest.raises(ValueError, match="low > high"):
        SafetyLayer(np.ones(1), np.zeros(1), np.zeros(1))
    with pytest.raises(ValueError, match="max_rate"):
        layer(max_rate=0.0)


@settings(max_examples=200, deadline=None)
@given(ACTION_SEQUENCES)
def test_whatever_the_policy_says_the_sent_action_is_finite_and_within_limits(actions):
    s = layer(max_rate=50.0)
    for a in actions:
        sent, _ = s.filter(np.array(a), 0.02)
        assert np.isfinite(sent).all()
        assert (sent >= s.low).all() and (sent <= s.high).all()


@settings(max_examples=200, deadline=None)
@given(ACTION_SEQUENCES)
def test_unlimited_channels_still_never_send_a_non_finite_action(actions):
    """An actuator without limits (MJCF ctrllimited="false": limits +-inf) still gets only
    finite actions: the NaN/Inf guard does not depend on the clamp."""
    s = SafetyLayer(np.array([-np.inf, -1.0]), np.array([np.inf, 1.0]), np.zeros(2))
    for a in actions:
        sent, events = s.filter(np.array(a), 0.02)
        assert np.isfinite(sent).all()
        finite = np.isfinite(a)
        assert ("nan_guard" in [e.kind for e in events]) == (not finite.all())
        if finite[0]:
            assert sent[0] == a[0] or not finite.all()  # an unlimited channel is never clamped


def test_infinite_action_on_an_unlimited_channel_is_guarded():
    s = SafetyLayer(np.array([-np.inf]), np.array([np.inf]), np.array([0.0]))
    for bad in (np.inf, -np.inf, np.nan):
        sent, events = s.filter(np.array([bad]), 0.01)
        assert sent.tolist() == [0.0] and events[0].kind == "nan_guard"
    sent, events = s.filter(np.array([1e300]), 0.01)
    assert sent.tolist() == [1e300] and events == []
