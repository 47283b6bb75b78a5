"""Fulfilment nodes, carrier services and catalog items."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from typing import Annotated

from pydantic import AfterValidator, Field, WithJsonSchema, field_validator, model_validator
from pydantic_core import PydanticCustomError

from models._base import (
    MAX_DATED_ENTRIES,
    MAX_NODES,
    Cents,
    Entries,
    Frozen,
    Identifier,
    Many,
    NonNegInt,
    PosInt,
    Weekday,
)
from models._enums import NodeKind, ServiceLevel

__all__ = [
    "ZONE_COUNT",
    "CarrierService",
    "CatalogItem",
    "Location",
    "Node",
    "ZoneRate",
]

# Parcel carriers publish eight distance zones; index 0 of per-zone tuples is zone 1.
ZONE_COUNT = 8
WEEKDAYS_MON_FRI: tuple[int, ...] = (0, 1, 2, 3, 4)
WEEKDAYS_MON_SAT: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
Weekdays = Annotated[tuple[Weekday, ...], Many(7)]
# Packages left per date at one node.
DatedCapacity = Annotated[dict[dt.date, NonNegInt], Entries(MAX_DATED_ENTRIES)]


def _wall_clock(value: dt.time) -> dt.time:
    """Reject a time with a UTC offset: a node's times are read in its own time zone."""
    if value.tzinfo is not None:
        raise PydanticCustomError(
            "time_has_offset",
            "a node-local time takes no UTC offset (the node's time_zone applies), e.g. 16:00",
        )
    return value


# A wall-clock time of the node's zone. Not JSON Schema's "time" format: RFC 3339 times carry
# an offset, which would make the time an instant, and comparing one with the node's local
# clock fails. Seconds and fractions are optional, as the service reads them.
LocalTime = Annotated[
    dt.time,
    AfterValidator(_wall_clock),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?$",
        }
    ),
]


def _weekday_set(days: tuple[int, ...]) -> tuple[int, ...]:
    """Reject empty or repeated weekday lists and return them sorted."""
    if not days:
        raise ValueError("at least one weekday is required")
    if len(set(days)) != len(days):
        raise ValueError("weekdays must not repeat")
    return tuple(sorted(days))


class Location(Frozen):
    """A point on the earth in decimal degrees (WGS84)."""

    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


@functools.cache
def _time_zones() -> frozenset[str]:
    """Every IANA zone name the tz database (tzdata) knows, read once."""
    return frozenset(zoneinfo.available_timezones())


class Node(Frozen):
    """A fulfilment node: DC, store or dark store, with its calendar and labour."""

    node_id: Identifier
    kind: NodeKind
    name: str = ""
    location: Location
    region: str = Field(default="", max_length=32, description="Region code, e.g. a US state.")
    time_zone: str = Field(description="IANA time zone name, e.g. America/Chicago.")
    cutoff: LocalTime = Field(
        default=dt.time(14, 0), description="Order cutoff: HH:MM[:SS] node local time, no offset."
    )
    lead_time_days: Annotated[int, Field(ge=0, le=30)] = 0
    operating_weekdays: Weekdays = WEEKDAYS_MON_SAT
    holiday_country: str = Field(default="US", min_length=2, max_length=2)
    holiday_subdivision: str | None = None
    handling_cost: Cents = Field(default=0, description="Cents per package.")
    pick_cost: Cents = Field(default=0, description="Cents of labour per unit picked.")
    pick_seconds: NonNegInt = Field(default=0, description="Pick labour per unit, in seconds.")
    daily_labour_minutes: NonNegInt | None = Field(
        default=None, description="Labour minutes per operating day; None means not limiting."
    )
    labour_minutes: Annotated[dict[dt.date, NonNegInt], Entries(MAX_DATED_ENTRIES)] = Field(
        default_factory=dict, description="Remaining labour minutes on given dates (overrides)."
    )
    priority: Annotated[int, Field(ge=0, le=10**6)] = 100
    protection_units: NonNegInt = Field(
        default=0, description="Units kept for walk-in shoppers; taking below costs extra."
    )

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        """Only IANA zones the tz database knows are accepted."""
        # A set lookup, not ZoneInfo(value): that opens a file named by the caller, and an
        # over-long or odd name failed with OSError (a 500) instead of a 422.
        if value not in _time_zones():
            raise ValueError(f"unknown time zone {value[:64]!r}")
        return value

    @field_validator("operating_weekdays")
    @classmethod
    def _weekdays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        """Operating weekdays are a non-empty set."""
        return _weekday_set(value)

    def labour_on(self, day: dt.date) -> int | None:
        """Remaining labour minutes on ``day`` (None when labour does not limit)."""
        if day in self.labour_minutes:
            return self.labour_minutes[day]
        return self.daily_labour_minutes


class ZoneRate(Frozen):
    """Rate for one zone: a base per package plus a price per billable (rounded-up) kg."""

    base: Cents
    per_kg: Cents


class CarrierService(Frozen):
    """A carrier service a set of nodes can ship with."""

    service_id: Identifier
    carrier: str = ""
    service_level: ServiceLevel
    node_ids: Annotated[tuple[Identifier, ...], Many(MAX_NODES)] = Field(
        default=(), description="Nodes served; empty means every node."
    )
    pickup_weekdays: Weekdays = WEEKDAYS_MON_FRI
    delivery_weekdays: Weekdays = WEEKDAYS_MON_FRI
    holiday_country: str = Field(default="US", min_length=2, max_length=2)
    transit_days: Annotated[tuple[Annotated[int, Field(ge=0, le=30)], ...], Many(ZONE_COUNT)] = (
        Field(description="Transit business days for zones 1..8.")
    )
    max_distance_km: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    rates: Annotated[tuple[ZoneRate, ...], Many(ZONE_COUNT)] = Field(
        description="Rates for zones 1..8."
    )
    daily_capacity: NonNegInt | None = Field(
        default=None, description="Packages per node per day; None means unlimited."
    )
    daily_capacity_by_node: Annotated[dict[Identifier, NonNegInt], Entries(MAX_NODES)] = Field(
        default_factory=dict, description="Packages per day at given nodes (overrides the default)."
    )
    remaining_capacity: Annotated[dict[Identifier, DatedCapacity], Entries(MAX_NODES)] = Field(
        default_factory=dict, description="Packages left per node and date (overrides)."
    )

    @field_validator("pickup_weekdays", "delivery_weekdays")
    @classmethod
    def _weekdays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        """Pickup and delivery weekdays are non-empty sets."""
        return _weekday_set(value)

    @model_validator(mode="after")
    def _per_zone(self) -> CarrierService:
        """Transit days and rates give one entry per zone."""
        if len(self.transit_days) != ZONE_COUNT:
            raise ValueError(f"transit_days needs {ZONE_COUNT} entries (zones 1..8)")
        if len(self.rates) != ZONE_COUNT:
            raise ValueError(f"rates needs {ZONE_COUNT} entries (zones 1..8)")
        return self

    def serves(self, node_id: str) -> bool:
        """Whether this service picks up at ``node_id``."""
        return not self.node_ids or node_id in self.node_ids

    def capacity_on(self, node_id: str, day: dt.date) -> int | None:
        """Packages this service can still take at ``node_id`` on ``day`` (None: unlimited)."""
        by_day = self.remaining_capacity.get(node_id)
        if by_day is not None and day in by_day:
            return by_day[day]
        return self.daily_capacity_by_node.get(node_id, self.daily_capacity)


class CatalogItem(Frozen):
    """A sellable SKU with its shipping weight."""

    sku: Identifier
    weight_g: PosInt
    list_price: Cents = 0
    name: str = ""
