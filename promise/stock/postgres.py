"""The PostgreSQL backend: the reservation authority for several service instances.

Each write transaction first inserts any missing (node, SKU) rows and locks them with
``SELECT ... FOR UPDATE`` in key order, then reads the clock and decides. Two holds on the same
row are therefore serialised by the row lock and the second sees the first's committed lines
(READ COMMITTED takes a fresh snapshot per statement); holds on different rows run in
parallel until their last statement, the state-version bump, which every writer takes last
so versions commit in order. Locks are always taken in the order stock rows → hold row →
version row, so writers cannot deadlock each other; a deadlock or serialisation failure
caused by a client's odd batch is retried.

Remembered promise allocations are written with ``synchronous_commit = off``: they need not
survive a server crash, and checkout should not wait for a WAL flush per promise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
import psycopg.errors

from promise.stock._rows import VERSIONS_SELECT
from promise.stock.backend import Clock, Key, Versions, to_us
from promise.stock.errors import StockUnavailableError
from promise.stock.pg_pool import PgPool, PoolError
from promise.stock.sql import MIGRATIONS, Cursor, SqlStockBackend, chunks, key_filter
from scenarios.migrations import StatementSession, migrate

__all__ = ["PostgresStockBackend"]

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_AFTER_S = 1
ATTEMPTS = 5
# Any constant works; it only has to be the same for every process creating the schema.
SCHEMA_LOCK = 0x53544F434B  # "STOCK"
# A unique violation is retried too: an event_id reused for another row by a concurrent
# batch (see EventLedger._write_journal) reads as a duplicate on the next try.
RETRIED = (
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
    psycopg.errors.UniqueViolation,
)


def _to_pyformat(text: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (the statements hold no literal ``?`` or ``%``)."""
    return text.replace("?", "%s")


class _PgSession(StatementSession):
    """A PostgreSQL connection (autocommit) as the migration runner drives it."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        """Wrap ``conn``."""
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; its rows."""
        cur = self._conn.execute(_to_pyformat(sql), tuple(params))
        return list(cur.fetchall()) if cur.description is not None else []


class PostgresStockBackend(SqlStockBackend):
    """Live stock in PostgreSQL through a small connection pool."""

    for_update = " FOR UPDATE"
    for_share = " FOR SHARE"

    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int = 4,
        connect_timeout_s: int = 2,
        acquire_timeout_s: float = 0.5,
    ) -> None:
        """Connect to ``dsn`` and create the tables when they are missing."""
        self.dsn = dsn
        self._pool = PgPool(
            dsn,
            size=pool_size,
            connect_timeout_s=connect_timeout_s,
            acquire_timeout_s=acquire_timeout_s,
        )
        try:
            self._create_schema()
        except BaseException:
            self._pool.close()
            raise

    def _create_schema(self) -> None:
        """The numbered migrations, under a session advisory lock held across them.

        Servers starting together queue on the lock: one migrates, the rest find it done.
        """
        with self._pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
            try:
                self.schema_version = migrate(_PgSession(conn), MIGRATIONS, store="stock database")
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))

    def _sql(self, text: str) -> str:
        """Placeholders in psycopg's style."""
        return _to_pyformat(text)

    def _key_filter(self, keys: Sequence[Key], extra: str = "") -> tuple[str, list[Any]]:
        """The rows of ``keys`` as two arrays: one statement text whatever their number.

        PostgreSQL plans the array join as well as the ORed equalities, and a text that does
        not grow with the keys is parsed once and stays prepared.
        """
        nodes = [node for node, _ in keys]
        skus = [sku for _, sku in keys]
        predicate = "(node_id, sku) IN (SELECT * FROM unnest(?::text[], ?::text[]))"
        return f"({predicate}{extra})", [nodes, skus]

    def _attempts(self, run: Callable[[], T]) -> T:
        """Run a transaction, retrying deadlocks; an unreachable server is a 503."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return run()
            except RETRIED:
                if attempt == ATTEMPTS:
                    raise
                log.info("stock transaction retried", extra={"attempt": attempt})
            except (psycopg.OperationalError, PoolError) as exc:
                raise StockUnavailableError(
                    f"the stock database is unavailable: {exc}", RETRY_AFTER_S
                ) from exc
        raise AssertionError("unreachable")

    def _write(self, keys: Sequence[Key], clock: Clock, work: Callable[[Cursor, int], T]) -> T:
        """Insert missing rows, lock the rows in key order, then run ``work``."""
        ordered = sorted(set(keys))

        def run() -> T:
            with self._pool.connection() as conn, conn.transaction():
                cur = conn.cursor()
                # Chunks follow the global key order, so lock order stays the same for all.
                for chunk in chunks(ordered):
                    self._lock_rows(cur, chunk)
                return work(cur, to_us(clock()))

        return self._attempts(run)

    @staticmethod
    def _lock_rows(cur: Cursor, keys: Sequence[Key]) -> None:
        """Insert the rows that do not exist yet, then lock them all in key order."""
        values = ", ".join("(%s, %s)" for _ in keys)
        params = [part for key in keys for part in key]
        cur.execute(
            f"INSERT INTO stock_rows (node_id, sku) VALUES {values} "  # noqa: S608 - only %s markers
            "ON CONFLICT (node_id, sku) DO NOTHING",
            params,
        )
        where, params = key_filter(keys)
        cur.execute(
            _to_pyformat(
                f"SELECT 1 FROM stock_rows WHERE {where} "  # noqa: S608 - only ? markers
                # Byte order, as Python sorts the keys: every writer locks in the same order.
                'ORDER BY node_id COLLATE "C", sku COLLATE "C" FOR UPDATE'
            ),
            params,
        )

    def _read(self, work: Callable[[Cursor], T]) -> T:
        """A read-only REPEATABLE READ transaction: one snapshot for every statement."""

        def run() -> T:
            with self._pool.connection() as conn, conn.transaction():
                cur = conn.cursor()
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                return work(cur)

        return self._attempts(run)

    def versions(self) -> Versions:
        """One statement, no transaction block: the per-request check of stock and snapshot."""

        def run() -> Versions:
            with self._pool.connection() as conn:
                return self._versions_of(conn.execute(VERSIONS_SELECT).fetchall())

        return self._attempts(run)

    def _remember(self, work: Callable[[Cursor], None]) -> None:
        """A write that need not survive a server crash: no wait for the WAL flush."""

        def run() -> None:
            with self._pool.connection() as conn, conn.transaction():
                cur = conn.cursor()
                cur.execute("SET LOCAL synchronous_commit = off")
                work(cur)

        self._attempts(run)

    def ping(self) -> None:
        """One round trip on the pool's probe connection; StockUnavailableError if it fails."""
        self._attempts(self._pool.ping)

    def close(self) -> None:
        """Close the pool."""
        self._pool.close()
