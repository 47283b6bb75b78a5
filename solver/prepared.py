"""A snapshot prepared for solving: ``prepare(snapshot) -> PreparedNetwork``.

Like PyVRP's ``ProblemData``, a prepared network is built once and then only read: the
snapshot's arrays and lookups (``SnapshotIndex``), its holiday calendar and the memo of its
calendar answers. Stock changes version by version; ``prepared.with_inventory(inventory)``
derives the network for one ``Inventory`` version and shares everything that does not depend
on stock (network arrays, holidays, calendar answers).

Nothing here is module state: whoever keeps a prepared network (the live snapshot of the
service, a replay worker, a benchmark) decides how long its arrays and memo live, and
``solve(request, prepared)`` depends on nothing but its arguments.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import numpy.typing as npt

from models import CarrierService, Snapshot
from solver.calendar import (
    CalendarMemo,
    HolidayCalendar,
    delivery_date,
    dispatch_dates,
    earliest_dispatch,
)
from solver.index import SnapshotIndex, build_index
from solver.inventory import Inventory

__all__ = ["LevelSlots", "PreparedNetwork", "as_prepared", "prepare"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class LevelSlots:
    """One node's dispatch slots with a level's services, before any cart is looked at.

    Slots run service by service, earliest date first. Every request that asks with the same
    local order date, zone and deadline shares them, so the arrays are read-only.
    """

    date: IntArray  # ship date ordinals
    delivery: IntArray  # delivery date ordinals
    days: IntArray  # delivery − the destination's order date
    service: tuple[CarrierService, ...]
    base: IntArray  # cents per package
    per_kg: IntArray  # cents per billable kg
    capacity: IntArray  # packages the service can still take; -1: no limit
    labour: IntArray  # pick seconds left at the node that day; -1: no limit
    # The same limits as Python integers, for the per-slot checks of one request.
    capacity_list: tuple[int, ...]
    labour_list: tuple[int, ...]

    @property
    def size(self) -> int:
        """Number of slots."""
        return len(self.service)


def _frozen(values: list[int]) -> IntArray:
    """A read-only int64 array of ``values``."""
    out = np.array(values, dtype=np.int64)
    out.setflags(write=False)
    return out


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class PreparedNetwork:
    """A snapshot's arrays, lookups and calendar memo, with one version of its stock.

    ``stock_version`` is None for the snapshot's own inventory rows and the ``Inventory``
    version for live stock given to ``with_inventory``.
    """

    index: SnapshotIndex
    calendar: CalendarMemo
    stock_version: int | None = None

    @property
    def snapshot(self) -> Snapshot:
        """The validated snapshot this network was prepared from."""
        return self.index.snapshot

    @property
    def inventory(self) -> Inventory:
        """The stock solves on this network read."""
        return self.index.inventory

    @property
    def version(self) -> str:
        """The snapshot version, with ``+N`` for live stock of inventory version N."""
        if self.stock_version is None:
            return self.snapshot.version
        return f"{self.snapshot.version}+{self.stock_version}"

    # Calendar answers: they depend on the network's nodes and services and on dates only, so
    # they are memoised with the network, keyed by positions and (for an order) by the node's
    # local order date and whether the order missed the node's cutoff (``local``).

    def earliest_dispatch(
        self, node: int, requested_at: dt.datetime, local: tuple[int, int]
    ) -> dt.date:
        """Earliest dispatch date of the ``node``-th node for an order at ``requested_at``."""
        spec, holidays = self.index.nodes[node], self.calendar.holidays
        return self.calendar.answer(
            (0, node, *local), dt.date, lambda: earliest_dispatch(spec, requested_at, holidays)
        )

    def dispatch_ordinals(
        self, node: int, service: int, requested_at: dt.datetime, local: tuple[int, int]
    ) -> tuple[int, ...]:
        """Dispatch dates (ordinals) of the ``node``-th node with the ``service``-th service."""

        def compute() -> tuple[int, ...]:
            dates = dispatch_dates(
                self.index.nodes[node],
                self.snapshot.services[service],
                requested_at,
                self.calendar.holidays,
                earliest=self.earliest_dispatch(node, requested_at, local),
            )
            return tuple(day.toordinal() for day in dates)

        return self.calendar.answer((1, node, service, *local), tuple, compute)

    def delivery_ordinal(self, service: int, ship: int, zone: int) -> int:
        """Delivery date (ordinal) of a package shipped on day ``ship`` to ``zone``."""
        spec, holidays = self.snapshot.services[service], self.calendar.holidays
        return self.calendar.answer(
            (2, service, ship, zone),
            int,
            lambda: delivery_date(spec, dt.date.fromordinal(ship), zone, holidays).toordinal(),
        )

    def level_slots(
        self,
        node: int,
        services: tuple[int, ...],
        requested_at: dt.datetime,
        local: tuple[int, int],
        *,
        zone: int,
        window: tuple[int, int],
        exact: bool,
    ) -> LevelSlots:
        """The slots of the ``node``-th node with the ``services`` (positions) of one level.

        ``window`` is the destination's order date (ordinal) and the level's deadline in days:
        a service's dates end before the first one that delivers after the deadline (later
        ship dates never deliver earlier). Unless ``exact``, dates with no carrier capacity or
        no pick labour are left out too (nothing can ship on them). None of this depends on
        the cart, so it is computed once per local order date, zone and deadline.
        """
        order, deadline = window

        def compute() -> LevelSlots:
            spec = self.index.nodes[node]
            served: list[CarrierService] = []
            # Per slot: ship date, delivery date, base rate, rate per kg, capacity, labour.
            columns: tuple[list[int], ...] = ([], [], [], [], [], [])
            for position in services:
                service = self.snapshot.services[position]
                rate = service.rates[zone - 1]
                for ship in self.dispatch_ordinals(node, position, requested_at, local):
                    delivered = self.delivery_ordinal(position, ship, zone)
                    if delivered - order > deadline:
                        break
                    day = dt.date.fromordinal(ship)
                    capacity = service.capacity_on(spec.node_id, day)
                    labour = spec.labour_on(day)
                    if not exact and (capacity == 0 or (labour == 0 and spec.pick_seconds > 0)):
                        continue
                    served.append(service)
                    row = (
                        ship,
                        delivered,
                        rate.base,
                        rate.per_kg,
                        -1 if capacity is None else capacity,
                        -1 if labour is None else labour * 60,
                    )
                    for values, value in zip(columns, row, strict=True):
                        values.append(value)
            ship_dates, delivered_on, base, per_kg, capacity_left, labour_left = columns
            return LevelSlots(
                date=_frozen(ship_dates),
                delivery=_frozen(delivered_on),
                days=_frozen([day - order for day in delivered_on]),
                service=tuple(served),
                base=_frozen(base),
                per_kg=_frozen(per_kg),
                capacity=_frozen(capacity_left),
                labour=_frozen(labour_left),
                capacity_list=tuple(capacity_left),
                labour_list=tuple(labour_left),
            )

        key = (4, node, *local, zone, order, deadline, int(exact), *services)
        return self.calendar.answer(key, LevelSlots, compute)

    def service_rates(self, service: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Base rate, rate per kg and transit days per zone of the ``service``-th service."""

        def compute() -> tuple[FloatArray, FloatArray, FloatArray]:
            spec = self.snapshot.services[service]
            out = (
                np.array([rate.base for rate in spec.rates], dtype=np.float64),
                np.array([rate.per_kg for rate in spec.rates], dtype=np.float64),
                np.array(spec.transit_days, dtype=np.float64),
            )
            for array in out:
                array.setflags(write=False)
            return out

        return self.calendar.answer((5, service), tuple, compute)

    def with_inventory(self, inventory: Inventory) -> PreparedNetwork:
        """This network with ``inventory`` (a version of its snapshot's stock) instead."""
        return PreparedNetwork(
            index=self.index.with_inventory(inventory),
            calendar=self.calendar,
            stock_version=inventory.version,
        )


def prepare(snapshot: Snapshot, *, holidays: HolidayCalendar | None = None) -> PreparedNetwork:
    """Index ``snapshot`` with its own inventory rows, ready for ``solve`` and ``availability``.

    ``holidays`` shares a holiday calendar the caller already has (a replay worker's, say).
    """
    return PreparedNetwork(
        index=build_index(snapshot, Inventory.of(snapshot)),
        calendar=CalendarMemo(holidays),
    )


def as_prepared(network: PreparedNetwork | Snapshot) -> PreparedNetwork:
    """``network`` itself when prepared; a bare snapshot prepared for one call, then forgotten."""
    return network if isinstance(network, PreparedNetwork) else prepare(network)
