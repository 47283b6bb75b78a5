"""Shared base class and constrained scalar types for the domain models."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sized
from typing import Annotated, Any

from annotated_types import GroupedMetadata
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic_core import InitErrorDetails, PydanticCustomError

__all__ = [
    "EARLIEST_DATE",
    "LATEST_DATE",
    "MAX_DATED_ENTRIES",
    "MAX_NODES",
    "BooleanOnly",
    "Cents",
    "Day",
    "Entries",
    "Frozen",
    "Identifier",
    "Instant",
    "IntegerOnly",
    "Many",
    "NonNegInt",
    "PosInt",
    "Weekday",
    "at_most",
]


# Bounds of a snapshot's collections, far above any real network (2,000 nodes is a large
# one). What a body may cost in memory is bounded before decoding (promise.body_limits); these
# bounds let validation refuse an absurd collection at once and state it in the schema.
MAX_NODES = 20_000
# Dated overrides (labour, carrier capacity) per node: the horizon is 14 days.
MAX_DATED_ENTRIES = 1_000

# An error names at most this many of an object's unknown keys.
_NAMED_UNKNOWN_KEYS = 5


class Frozen(BaseModel):
    """Immutable model that rejects unknown fields (variants via ``model_copy``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _few_unknown_keys(cls, data: Any) -> Any:
        """Refuse an object with more keys than the model has fields as one error.

        pydantic reports each unknown key as an error of its own, and an object of a million
        keys (a few MiB of JSON) would cost a million errors; with no more keys than fields,
        at most that many can be unknown, which pydantic reports as usual.
        """
        # The class attribute, not the model_fields property: this runs once per object.
        fields = cls.__pydantic_fields__
        if isinstance(data, dict) and len(data) > len(fields):
            unknown = len(data) - sum(1 for name in fields if name in data)
            names = []
            for key in data:
                if key not in fields:
                    names.append(repr(str(key)[:64]))
                    if len(names) == _NAMED_UNKNOWN_KEYS:
                        break
            raise PydanticCustomError(
                "extra_forbidden",
                "Extra inputs are not permitted: {count} unknown fields ({names})",
                {"count": unknown, "names": ", ".join(names)},
            )
        return data


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


def _length_error(
    kind: str, template: str, bound: Mapping[str, int], value: Sized
) -> PydanticCustomError:
    """The length error for ``value``: ``template`` filled with ``bound`` and its length."""
    return PydanticCustomError(kind, template, {**bound, "actual_length": len(value)})


def at_most(limit: int) -> Callable[[object], object]:
    """A before-validator that rejects a list or mapping longer than ``limit`` before its items.

    pydantic validates every item (and collects every error) before it applies ``max_length``,
    so a huge list or object of invalid items would cost seconds and gigabytes to reject.
    """

    def check(value: object) -> object:
        """Refuse an over-long list or mapping at once; anything else goes on as usual."""
        if isinstance(value, (list, tuple)) and len(value) > limit:
            raise _length_error(
                "too_long",
                "List should have at most {max_length} items, not {actual_length}",
                {"max_length": limit},
                value,
            )
        if isinstance(value, Mapping) and len(value) > limit:
            raise _length_error(
                "too_long",
                "Object should have at most {max_length} entries, not {actual_length}",
                {"max_length": limit},
                value,
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


def _at_least(minimum: int) -> Callable[[object], object]:
    """A before-validator that rejects a list shorter than ``minimum`` before its items."""

    def check(value: object) -> object:
        """Refuse a short list at once; anything else goes on to normal validation."""
        if isinstance(value, (list, tuple)) and len(value) < minimum:
            raise _length_error(
                "too_short",
                "List should have at least {min_length} item(s), not {actual_length}",
                {"min_length": minimum},
                value,
            )
        return value

    return check


class Many(GroupedMetadata):
    """``Annotated`` metadata: a list of ``at_least`` to ``limit`` items that stops at a bad one.

    An over-long list is refused before any item is checked (``at_most``), and ``fail_fast``
    ends validation at the first invalid item, so a list of a million bad items costs one
    error rather than a million (each costs pydantic and Litestar about 2 KiB). The bounds are
    also the published ``minItems`` and ``maxItems``. (The minimum is checked before the items,
    not by ``min_length``: with ``fail_fast`` that also reports a stopped list as too short.)
    """

    def __init__(self, limit: int, *, at_least: int = 0) -> None:
        """Allow ``at_least`` to ``limit`` items."""
        self.limit = limit
        self.at_least = at_least

    def __iter__(self) -> Iterator[Any]:
        """The pydantic constraints this stands for."""
        schema: JsonDict | None = {"minItems": self.at_least} if self.at_least else None
        yield Field(max_length=self.limit, fail_fast=True, json_schema_extra=schema)
        yield BeforeValidator(at_most(self.limit))
        if self.at_least:
            yield BeforeValidator(_at_least(self.at_least))


def _first_error_only(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    """Validate a mapping, reporting only its first invalid entry when several are invalid.

    pydantic has no ``fail_fast`` for mappings: an object of a million bad entries (or of
    thousands of nested objects of bad entries) would cost a million errors. Here the errors of
    one mapping are dropped as soon as it is checked, and at most one goes on.
    """
    try:
        return handler(value)
    except ValidationError as exc:
        if exc.error_count() <= 1:
            raise
        first = exc.errors(include_url=False)[0]
    detail: InitErrorDetails = {
        "type": PydanticCustomError(first["type"], first["msg"], first.get("ctx")),
        "loc": first["loc"],
        "input": first.get("input"),
    }
    raise ValidationError.from_exception_data("mapping", [detail])


class Entries(GroupedMetadata):
    """``Annotated`` metadata: an object of at most ``limit`` entries, reporting one bad entry.

    An over-long object is refused before its entries are checked (``at_most``); otherwise only
    its first invalid entry is reported, as ``Many`` does for lists.
    """

    def __init__(self, limit: int) -> None:
        """Allow at most ``limit`` entries."""
        self.limit = limit

    def __iter__(self) -> Iterator[Any]:
        """The pydantic constraints this stands for."""
        yield Field(max_length=self.limit)
        yield WrapValidator(_first_error_only)
        yield BeforeValidator(at_most(self.limit))
