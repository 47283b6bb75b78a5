"""This worker's copy of the authority's price table, fenced on the table's version.

The authority hands out price table versions (``promise.stock._price_queries``) and reports
the current one in the same statement as the stock version and the snapshot generation
(``Versions.prices``). A promise that reads live stock gets those versions for free: when the
price version is newer than this worker's copy, the copy is reloaded (the whole table, in one
read transaction) before the solve, so a promise that starts after a table was written uses
it on every worker of every host. A poll (``StockSettings.prices_poll_ms``) loads new versions
ahead of traffic, so a request rarely pays for the load. A live view served within
``live_max_staleness_ms`` checks no versions, and then prices are at most that stale too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from models import NO_PRICES, StockPrices
from promise.stock._price_queries import PriceRow, PriceTable
from promise.stock.backend import from_us

__all__ = ["LivePrices", "PriceSource"]


class PriceSource(Protocol):
    """What the live copy needs of the authority."""

    def load_prices(self) -> tuple[PriceTable | None, list[PriceRow]]:
        """The current price table and all its rows, read together."""
        ...


def stock_prices(table: PriceTable | None, rows: list[PriceRow]) -> StockPrices:
    """The solver's form of a stored table (no table: no prices)."""
    if table is None:
        return NO_PRICES
    return StockPrices.of(
        rows,
        version=table.version,
        computed_at=None if table.computed_at is None else from_us(table.computed_at),
        note=table.note,
    )


class LivePrices:
    """The price table this worker charges, reloaded when the authority has a newer one."""

    def __init__(
        self, source: PriceSource, *, on_load: Callable[[StockPrices], None] | None = None
    ) -> None:
        """Read from ``source``; ``on_load`` hears of every version loaded."""
        self._source = source
        self.on_load = on_load
        self._prices = NO_PRICES
        self._lock = threading.Lock()
        self.loads = 0

    @property
    def prices(self) -> StockPrices:
        """The copy as it is now (no check with the authority)."""
        return self._prices

    def current(self, at_least: int | None) -> StockPrices:
        """The table at version ``at_least`` or newer (blocking: call it off the event loop).

        ``at_least`` is a version the caller saw in the authority; None serves the copy as is.
        """
        prices = self._prices
        if at_least is None or prices.version >= at_least:
            return prices
        with self._lock:
            # Another request of this worker may have loaded it while this one waited.
            if self._prices.version < at_least:
                loaded = stock_prices(*self._source.load_prices())
                # The authority's versions only grow, so the load is at least ``at_least``.
                if loaded.version > self._prices.version:
                    self._prices = loaded
                    self.loads += 1
                    if self.on_load is not None:
                        self.on_load(loaded)
            return self._prices
