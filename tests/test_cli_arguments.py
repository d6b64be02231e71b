"""The argparse number types of liquidnode/cli/arguments.py: values kept, errors worded."""

from __future__ import annotations

import argparse

import pytest

from liquidnode.cli.arguments import non_negative_int, number_type, positive_float, positive_int


@pytest.mark.parametrize(
    ("check", "text", "value"),
    [
        (positive_int, "1", 1),
        (positive_int, " 12 ", 12),
        (non_negative_int, "0", 0),
        (positive_float, "2.5", 2.5),
        (positive_float, "1e-320", 1e-320),
    ],
)
def test_a_number_in_range_is_returned_as_its_type(check, text, value) -> None:
    got = check(text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("check", "text", "message"),
    [
        (positive_int, "x", "expected a whole number >= 1, got 'x'"),
        (positive_int, "1.5", "expected a whole number >= 1, got '1.5'"),
        (positive_int, "+0", "expected a whole number >= 1, got 0"),
        (non_negative_int, "-1", "expected a whole number >= 0, got -1"),
        (positive_float, "x", "expected a number > 0, got 'x'"),
        (positive_float, "0", "expected a finite number > 0, got 0"),
        (positive_float, "inf", "expected a finite number > 0, got inf"),
        (positive_float, "nan", "expected a finite number > 0, got nan"),
        (positive_float, "1e400", "expected a finite number > 0, got 1e400"),
    ],
)
def test_a_bad_number_gets_one_line_naming_the_bound_and_the_input(check, text, message) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        check(text)
    assert str(info.value) == message


def test_a_huge_whole_number_is_accepted_and_an_inclusive_bound_is_inclusive() -> None:
    assert positive_int("1" + "0" * 400) == 10**400
    at_least_3 = number_type(int, 3, inclusive=True)
    above_3 = number_type(float, 3, inclusive=False)
    assert at_least_3("3") == 3
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected a finite number > 3, got 3"):
        above_3("3")
