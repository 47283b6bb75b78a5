"""Shared base class and constrained scalar types for the domain models."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "EARLIEST_DATE",
    "LATEST_DATE",
    "BooleanOnly",
    "Cents",
    "Day",
    "Frozen",
    "Identifier",
    "Instant",
    "IntegerOnly",
    "NonNegInt",
    "PosInt",
    "Weekday",
    "at_most",
]


class Frozen(BaseModel):
    """Immutable model that rejects unknown fields (variants via ``model_copy``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


# Ids travel in URLs, logs and SQL parameters: keep them short and printable.
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")
]
# Money is always integer minor units (cents); negative amounts never come from callers.
Cents = Annotated[int, Field(ge=0, le=10**11)]
NonNegInt = Annotated[int, Field(ge=0, le=10**9)]
PosInt = Annotated[int, Field(gt=0, le=10**9)]
# Monday is 0, as in ``datetime.date.weekday()``.
Weekday = Annotated[int, Field(ge=0, le=6)]

# Dates a caller may give: date arithmetic (calendars, dispatch horizons) near year 1 or 9999
# overflows, and no real cart, stock event or lot lies outside this range.
EARLIEST_DATE = dt.date(1970, 1, 1)
LATEST_DATE = dt.date(2200, 12, 31)
_RANGE_TEXT = f"between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}"


def _day_in_range(value: dt.date) -> dt.date:
    """Reject a date outside the range the engine's date arithmetic can handle."""
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise PydanticCustomError("date_out_of_range", f"date must be {_RANGE_TEXT}")
    return value


def _instant_in_range(value: dt.datetime) -> dt.datetime:
    """Reject an instant whose local date lies outside the supported range."""
    # The local date, not UTC: converting an instant near year 1 or 9999 would overflow itself.
    _day_in_range(value.date())
    return value


Day = Annotated[dt.date, AfterValidator(_day_in_range), Field(description=f"A date {_RANGE_TEXT}.")]
Instant = Annotated[
    AwareDatetime,
    AfterValidator(_instant_in_range),
    Field(description=f"An instant with a UTC offset, {_RANGE_TEXT}."),
]


def at_most(limit: int) -> Callable[[object], object]:
    """A before-validator that rejects a list longer than ``limit`` before its items are checked.

    pydantic validates every item (and collects every error) before it applies ``max_length``,
    so a huge list of invalid items would cost seconds and gigabytes to reject.
    """

    def check(value: object) -> object:
        """Refuse an over-long list at once; anything else goes on to normal validation."""
        if isinstance(value, (list, tuple)) and len(value) > limit:
            raise PydanticCustomError(
                "too_long",
                "List should have at most {max_length} items, not {actual_length}",
                {"max_length": limit, "actual_length": len(value)},
            )
        return value

    return check


def _integer_only(value: object) -> object:
    """Refuse a boolean, a string or a fraction where an integer is due."""
    # A before-validator rather than strict=True: Litestar validates bodies with strict=False,
    # which overrides a field's own strict flag, and JSON true would become the quantity 1.
    # A JSON number with an integral value (5.0) is an integer to JSON Schema, which the
    # published document follows, so it is taken as one.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("int_type", "Input should be an integer")
    return value


def _boolean_only(value: object) -> object:
    """Refuse 0, 1, "true" and anything else that is not a boolean where a boolean is due."""
    if not isinstance(value, bool):
        raise PydanticCustomError("bool_type", "Input should be true or false")
    return value


# Metadata for Annotated request fields: JSON numbers only for integers, true/false for flags.
IntegerOnly = BeforeValidator(_integer_only)
BooleanOnly = BeforeValidator(_boolean_only)
