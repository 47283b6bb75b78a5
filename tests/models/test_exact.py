"""Exact decimal readings of floats: the integer fast path agrees with the decimal definition."""

from __future__ import annotations

import decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models._exact import fraction


def by_definition(value: float) -> tuple[int, int]:
    """The reading of ``fraction``'s docstring, through ``Decimal`` alone."""
    numerator, denominator = decimal.Decimal(repr(value)).as_integer_ratio()
    return numerator, denominator


# Decimals of at most six places, as shares, percentages and weights are written.
written = st.builds(
    lambda units, places: units / 10**places,
    st.integers(-(10**12), 10**12),
    st.integers(0, 6),
)


@given(written)
def test_written_decimals_read_as_written(value: float) -> None:
    """A decimal of at most six places reads exactly as the decimal definition reads it."""
    assert fraction(value) == by_definition(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_float_reads_as_its_shortest_decimal(value: float) -> None:
    """Every finite float, fast path or not, reads as its shortest round-tripping decimal."""
    assert fraction(value) == by_definition(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.29, (29, 100)),  # floor(0.29 × 100) must be 29: the float alone gives 28
        (0.95, (19, 20)),  # reduced to lowest terms
        (12.345, (2469, 200)),  # a margin floor percentage
        (1e-7, (1, 10_000_000)),  # seven places: the decimal route
        (3e20, (300_000_000_000_000_000_000, 1)),  # beyond the fast path's range
        (-0.0, (0, 1)),  # a signed zero is zero
    ],
)
def test_hand_checked_readings(value: float, expected: tuple[int, int]) -> None:
    """Readings worked out by hand, on both paths."""
    assert fraction(value) == expected
