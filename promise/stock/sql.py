"""The SQL both backends share: schema, queries and every transaction's body.

A backend subclass supplies connections, how a write transaction starts and locks its rows
(SQLite: ``BEGIN IMMEDIATE``, one writer at a time; PostgreSQL: ``SELECT ... FOR UPDATE`` of
the (node, SKU) rows in key order), the placeholder style and which errors are retried.

Every write transaction takes its locks first and reads the clock after them, so a decision
about expiry is made under the same locks as any competing hold, confirm or release of those
rows. Writers that change what a promise could see end by bumping the state version (a counter
row, always locked last, so versions are committed in order) and stamping the rows they
touched with it; a reader that saw version V fetches the rows stamped after V.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

from promise.stock._ledger import EventLedger
from promise.stock._price_queries import PriceQueries
from promise.stock._resourcing_queries import ResourcingQueries
from promise.stock._rows import Cursor, chunks, key_filter
from promise.stock._schema import MIGRATIONS
from promise.stock._snapshot_queries import SnapshotQueries

__all__ = ["MIGRATIONS", "Cursor", "SqlStockBackend", "StockBackend", "chunks", "key_filter"]


class SqlStockBackend(EventLedger, SnapshotQueries, ResourcingQueries, PriceQueries):
    """Live stock in a SQL database; subclasses bring connections and locking.

    Durable: every public method is one transaction, committed before it returns.

    The queries are grouped by idea: rows and versions (``_rows``), holds
    (``_hold_queries``), the event ledger (``_ledger``), the live snapshot
    (``_snapshot_queries``), the price table (``_price_queries``), keys and audit
    (``access``), the outbox (``outbox``), the orders behind holds and moving holds
    (``_resourcing_queries``).
    """

    # --- what a subclass provides ---------------------------------------------------------

    @abc.abstractmethod
    def _remember(self, work: Callable[[Cursor], None]) -> None:
        """Run ``work`` in a write transaction that need not survive a power loss."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise StockUnavailableError unless the store answers a trivial query now (cheap)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""


# The storage contract of live stock. Every backend is a SQL one, so the contract is this
# class's own methods: one home for each signature and its docstring, not a parallel Protocol.
StockBackend = SqlStockBackend
