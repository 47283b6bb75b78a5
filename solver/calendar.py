"""Working days, dispatch dates and delivery dates (the rules of docs/model.md, "Dates")."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo

import holidays

from models import CarrierService, Node, ServiceLevel

__all__ = [
    "DISPATCH_HORIZON_DAYS",
    "LEVEL_DEADLINE_DAYS",
    "delivery_date",
    "dispatch_dates",
    "earliest_dispatch",
    "is_holiday",
    "local_order_date",
]

# Dispatch dates are searched this many days past the earliest one; later ones never win a promise.
DISPATCH_HORIZON_DAYS = 14
# Calendar days after the destination's order date that a service level may promise.
LEVEL_DEADLINE_DAYS: dict[ServiceLevel, int] = {
    ServiceLevel.SAME_DAY: 0,
    ServiceLevel.NEXT_DAY: 4,
    ServiceLevel.TWO_DAY: 6,
    ServiceLevel.GROUND: 14,
}


@functools.lru_cache(maxsize=256)
def _holiday_calendar(country: str, subdivision: str | None) -> holidays.HolidayBase:
    """A lazily-filled public holiday calendar, shared per (country, subdivision)."""
    return holidays.country_holidays(country, subdiv=subdivision)


@functools.lru_cache(maxsize=65536)
def is_holiday(day: dt.date, country: str, subdivision: str | None = None) -> bool:
    """Whether ``day`` is a public holiday in ``country`` (and ``subdivision``)."""
    return day in _holiday_calendar(country, subdivision)


def _works(node: Node, day: dt.date) -> bool:
    """Whether ``node`` picks and packs on ``day``."""
    return day.weekday() in node.operating_weekdays and not is_holiday(
        day, node.holiday_country, node.holiday_subdivision
    )


def local_order_date(node: Node, requested_at: dt.datetime) -> dt.date:
    """The node's local calendar date at the order instant."""
    return requested_at.astimezone(zoneinfo.ZoneInfo(node.time_zone)).date()


def earliest_dispatch(node: Node, requested_at: dt.datetime) -> dt.date:
    """First date ``node`` can hand a package to a carrier for an order at ``requested_at``."""
    local = requested_at.astimezone(zoneinfo.ZoneInfo(node.time_zone))
    day = local.date()
    if local.time() >= node.cutoff:
        day += dt.timedelta(days=1)
    while not _works(node, day):
        day += dt.timedelta(days=1)
    for _ in range(node.lead_time_days):
        day += dt.timedelta(days=1)
        while not _works(node, day):
            day += dt.timedelta(days=1)
    return day


def dispatch_dates(
    node: Node, service: CarrierService, requested_at: dt.datetime, *, earliest: dt.date | None
) -> list[dt.date]:
    """Dates ``node`` may ship with ``service``, earliest first, within the horizon."""
    first = earliest if earliest is not None else earliest_dispatch(node, requested_at)
    if service.service_level is ServiceLevel.SAME_DAY:
        # Same-day couriers collect only on the day the order is placed.
        today = local_order_date(node, requested_at)
        if first != today:
            return []
        candidates = [today]
    else:
        candidates = [first + dt.timedelta(days=i) for i in range(DISPATCH_HORIZON_DAYS + 1)]
    return [
        day
        for day in candidates
        if _works(node, day)
        and day.weekday() in service.pickup_weekdays
        and not is_holiday(day, service.holiday_country)
    ]


def delivery_date(service: CarrierService, ship_date: dt.date, zone: int) -> dt.date:
    """Date a package shipped on ``ship_date`` to ``zone`` arrives with ``service``."""
    day = ship_date
    for _ in range(service.transit_days[zone - 1]):
        day += dt.timedelta(days=1)
        while day.weekday() not in service.delivery_weekdays or is_holiday(
            day, service.holiday_country
        ):
            day += dt.timedelta(days=1)
    return day
