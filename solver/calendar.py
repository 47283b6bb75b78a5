"""Working days, dispatch dates and delivery dates (the rules of docs/model.md, "Dates").

Holidays come from a ``HolidayCalendar`` the caller owns (a prepared network, a checker
reference): it computes each (country, subdivision, year) once and keeps it as long as its
owner lives, so no answer here depends on what an earlier call in the process computed.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from typing import TypeVar

import holidays as holiday_library

from models import CarrierService, Node, ServiceLevel

__all__ = [
    "DISPATCH_HORIZON_DAYS",
    "LEVEL_DEADLINE_DAYS",
    "CalendarMemo",
    "HolidayCalendar",
    "delivery_date",
    "dispatch_dates",
    "earliest_dispatch",
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


T = TypeVar("T")
# Holiday years kept by one calendar before it starts over (each is a set of about 20 dates).
MAX_HOLIDAY_YEARS = 4_096
# Calendar answers kept by one memo before it starts over.
MAX_CALENDAR_ANSWERS = 200_000


class HolidayCalendar:
    """Public holidays per (country, subdivision, year), computed on first use and kept.

    A year's holidays include the observed days the holiday library files under that year
    (New Year's Day observed on December 31 belongs to the year it is observed in), so the
    answer for a day never depends on which other years were asked about first.
    """

    def __init__(self) -> None:
        """An empty calendar."""
        # Solves in several threads may fill a year twice: the same set, so no lock.
        self._years: dict[tuple[str, str | None, int], frozenset[dt.date]] = {}

    def is_holiday(self, day: dt.date, country: str, subdivision: str | None = None) -> bool:
        """Whether ``day`` is a public holiday in ``country`` (and ``subdivision``)."""
        key = (country, subdivision, day.year)
        found = self._years.get(key)
        if found is None:
            found = frozenset(
                holiday_library.country_holidays(country, subdiv=subdivision, years=day.year)
            )
            if len(self._years) >= MAX_HOLIDAY_YEARS:
                self._years.clear()
            self._years[key] = found
        return day in found


class CalendarMemo:
    """Calendar answers of one network (dispatch and delivery dates) and its holidays.

    The answers depend only on the network's nodes and services and on dates, never on stock,
    so every inventory version of a prepared network shares one memo. Keys are the caller's
    (positions and date ordinals); the memo starts over once it holds
    ``MAX_CALENDAR_ANSWERS``.
    """

    def __init__(self, holidays: HolidayCalendar | None = None) -> None:
        """An empty memo over ``holidays`` (a new calendar when None)."""
        self.holidays = holidays if holidays is not None else HolidayCalendar()
        self._answers: dict[tuple[int, ...], object] = {}

    def answer(self, key: tuple[int, ...], kind: type[T], compute: Callable[[], T]) -> T:
        """The ``kind`` answer under ``key``, computed and kept the first time it is asked."""
        found = self._answers.get(key)
        if isinstance(found, kind):
            return found
        value = compute()
        if len(self._answers) >= MAX_CALENDAR_ANSWERS:
            self._answers.clear()
        self._answers[key] = value
        return value


def _works(node: Node, day: dt.date, holidays: HolidayCalendar) -> bool:
    """Whether ``node`` picks and packs on ``day``."""
    return day.weekday() in node.operating_weekdays and not holidays.is_holiday(
        day, node.holiday_country, node.holiday_subdivision
    )


def local_order_date(node: Node, requested_at: dt.datetime) -> dt.date:
    """The node's local calendar date at the order instant."""
    return requested_at.astimezone(zoneinfo.ZoneInfo(node.time_zone)).date()


def earliest_dispatch(node: Node, requested_at: dt.datetime, holidays: HolidayCalendar) -> dt.date:
    """First date ``node`` can hand a package to a carrier for an order at ``requested_at``."""
    local = requested_at.astimezone(zoneinfo.ZoneInfo(node.time_zone))
    day = local.date()
    if local.time() >= node.cutoff:
        day += dt.timedelta(days=1)
    while not _works(node, day, holidays):
        day += dt.timedelta(days=1)
    for _ in range(node.lead_time_days):
        day += dt.timedelta(days=1)
        while not _works(node, day, holidays):
            day += dt.timedelta(days=1)
    return day


def dispatch_dates(
    node: Node,
    service: CarrierService,
    requested_at: dt.datetime,
    holidays: HolidayCalendar,
    *,
    earliest: dt.date | None,
) -> list[dt.date]:
    """Dates ``node`` may ship with ``service``, earliest first, within the horizon."""
    first = earliest if earliest is not None else earliest_dispatch(node, requested_at, holidays)
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
        if _works(node, day, holidays)
        and day.weekday() in service.pickup_weekdays
        and not holidays.is_holiday(day, service.holiday_country)
    ]


def delivery_date(
    service: CarrierService, ship_date: dt.date, zone: int, holidays: HolidayCalendar
) -> dt.date:
    """Date a package shipped on ``ship_date`` to ``zone`` arrives with ``service``."""
    day = ship_date
    for _ in range(service.transit_days[zone - 1]):
        day += dt.timedelta(days=1)
        while day.weekday() not in service.delivery_weekdays or holidays.is_holiday(
            day, service.holiday_country
        ):
            day += dt.timedelta(days=1)
    return day
