"""Exact decimal arithmetic for shares, percentages, weights and margin floors.

A fraction such as an in-transit share of 0.29 is meant as the decimal the caller wrote, not
as the binary float nearest to it: ``floor(0.29 × 100)`` must be 29, where float arithmetic
gives 28. Every such number is therefore read as the shortest decimal that round-trips its
float (``repr``), limited to ``MAX_DECIMALS`` places so that it is an exact fraction with a
small denominator, and every product is computed in integers with one stated rounding:

- in-transit units a channel may promise: ``floor(share × units)``
- a percentage buffer: ``ceil(on_hand × percent / 100)``
- a weighted coefficient: ``weight × cents`` rounded half up (both are never negative)
- a margin floor: ``margin × 100 ≥ floor_pct × revenue``, compared exactly

ATP, availability, holds, the solver, the checker and the service all call these functions;
none of them rounds on its own.
"""

from __future__ import annotations

import decimal
import fractions
import math

import numpy as np
import numpy.typing as npt
from pydantic import AfterValidator

__all__ = [
    "MAX_DECIMALS",
    "DecimalPlaces",
    "ceil_percent",
    "ceil_percent_array",
    "floor_share",
    "floor_share_array",
    "fraction",
    "margin_floor_scale",
    "meets_margin_floor",
    "scale_cents",
    "scale_cents_array",
]

IntArray = npt.NDArray[np.int64]

# Six decimal places: a millionth of a unit share, of a percent, of a weight multiplier.
MAX_DECIMALS = 6
_MILLION = 1_000_000
# Below this magnitude a float's spacing is far under a millionth, so no two numbers of whole
# millionths read as the same float.
_FAST_BELOW = 2.0**20


def fraction(value: float) -> tuple[int, int]:
    """``value`` as the decimal it was written as: (numerator, denominator), denominator > 0.

    Solves read the same few shares, percentages and weights thousands of times, so the common
    case is read with integer arithmetic: when a whole number of millionths rounds to
    ``value``, that number is the decimal ``repr`` would write (no other number of at most six
    places reads as the same float). Anything else takes the decimal route.
    """
    number = float(value)
    if -_FAST_BELOW < number < _FAST_BELOW:
        millionths = round(number * _MILLION)
        if millionths / _MILLION == number:
            common = math.gcd(millionths, _MILLION)
            return millionths // common, _MILLION // common
    numerator, denominator = decimal.Decimal(repr(number)).as_integer_ratio()
    return numerator, denominator


def _limit_decimals(value: float) -> float:
    """Accept numbers with at most ``MAX_DECIMALS`` decimal places (as written)."""
    exponent = decimal.Decimal(repr(float(value))).as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMALS:
        raise ValueError(f"at most {MAX_DECIMALS} decimal places are supported")
    return value


# Annotate a float field with this so that its exact fraction has a denominator ≤ 10**6.
DecimalPlaces = AfterValidator(_limit_decimals)


def floor_share(share: float, units: int) -> int:
    """``floor(share × units)`` exactly."""
    numerator, denominator = fraction(share)
    return units * numerator // denominator


def floor_share_array(share: float, units: IntArray) -> IntArray:
    """``floor(share × units)`` exactly, element-wise."""
    numerator, denominator = fraction(share)
    out: IntArray = units.astype(np.int64) * numerator // denominator
    return out


def ceil_percent(percent: float, units: int) -> int:
    """``ceil(units × percent / 100)`` exactly."""
    numerator, denominator = fraction(percent)
    return -(-units * numerator // (100 * denominator))


def ceil_percent_array(percent: IntArray | npt.NDArray[np.float64], units: IntArray) -> IntArray:
    """``ceil(units × percent / 100)`` exactly, element-wise (``percent`` aligned with units)."""
    # A network has a handful of distinct percentages and up to millions of rows.
    values, which = np.unique(np.asarray(percent, dtype=np.float64), return_inverse=True)
    pairs = [fraction(float(p)) for p in values.tolist()]
    numerator = np.array([p[0] for p in pairs], dtype=np.int64)[which]
    denominator = np.array([p[1] for p in pairs], dtype=np.int64)[which]
    out: IntArray = -(-units.astype(np.int64) * numerator // (100 * denominator))
    return out


def scale_cents(weight: float, cents: int) -> int:
    """``weight × cents`` rounded half up, exactly (both non-negative)."""
    numerator, denominator = fraction(weight)
    return (2 * cents * numerator + denominator) // (2 * denominator)


def scale_cents_array(weight: float, cents: IntArray) -> IntArray:
    """``weight × cents`` rounded half up, exactly, element-wise (cents non-negative)."""
    numerator, denominator = fraction(weight)
    out: IntArray = (2 * cents.astype(np.int64) * numerator + denominator) // (2 * denominator)
    return out


def margin_floor_scale(floor_pct: float) -> tuple[int, int]:
    """(a, b) with ``margin ≥ floor_pct/100 × revenue`` ⇔ ``a × margin ≥ b × revenue``.

    The fraction ``floor_pct / 100`` is reduced, so ``a`` is as small as it can be.
    """
    numerator, denominator = fraction(floor_pct)
    share = fractions.Fraction(numerator, 100 * denominator)
    return share.denominator, share.numerator


def meets_margin_floor(margin: int, revenue: int, floor_pct: float | None) -> bool:
    """Whether ``margin ≥ floor_pct / 100 × revenue``, compared exactly (None: no floor)."""
    if floor_pct is None:
        return True
    a, b = margin_floor_scale(floor_pct)
    return a * margin >= b * revenue
