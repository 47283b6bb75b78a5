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

from models import Snapshot
from solver.calendar import (
    CalendarMemo,
    HolidayCalendar,
    delivery_date,
    dispatch_dates,
    earliest_dispatch,
)
from solver.index import SnapshotIndex, build_index
from solver.inventory import Inventory

__all__ = ["PreparedNetwork", "as_prepared", "prepare"]


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
