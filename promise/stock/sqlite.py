"""The embedded backend: one SQLite file in WAL mode, shared by every worker process.

WAL lets readers (the per-request version check, live-view refreshes, GETs) run beside the
one writer. Writes start with ``BEGIN IMMEDIATE``, which takes the database's write lock at
once, so the read-check-write of a hold is serialised across threads and processes alike.
``synchronous=FULL`` (the default) syncs the WAL at every commit: an acknowledged event or
hold survives a power loss, not only a crashed or killed process, at about a tenth of a
millisecond per commit on a local SSD; ``NORMAL`` survives process crashes only. Remembered
promise allocations are written with ``NORMAL``: losing the last few on a power cut only means
a client must promise again.

Writers queue on an advisory lock file beside the database (a thread lock within a process,
``flock`` across processes) before ``BEGIN IMMEDIATE``: SQLite's own busy handler polls with
sleeps of up to 100 ms, while a blocked ``flock`` is woken the moment the writer before it
commits. The busy timeout still guards against writers that do not take the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from promise.stock.backend import Clock, Key, to_us
from promise.stock.errors import StockUnavailableError
from promise.stock.sql import MIGRATIONS, Cursor, SqlStockBackend
from scenarios.migrations import StatementSession, migrate

__all__ = ["SqliteStockBackend"]

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_AFTER_S = 1


class _SqliteSession(StatementSession):
    """A SQLite connection as the migration runner drives it (writer lock held)."""

    # Take the write lock at once.
    begin_statement = "BEGIN IMMEDIATE"

    def __init__(self, conn: sqlite3.Connection) -> None:
        """Wrap ``conn`` (autocommit mode: transactions are explicit)."""
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; its rows."""
        return self._conn.execute(sql, tuple(params)).fetchall()

    def rollback(self) -> None:
        """Roll back (nothing to do when the failure ended the transaction already)."""
        if self._conn.in_transaction:
            super().rollback()


class SqliteStockBackend(SqlStockBackend):
    """Live stock in a SQLite file; one connection per thread."""

    def __init__(
        self, path: Path, *, synchronous: str = "FULL", busy_timeout_s: float = 30.0
    ) -> None:
        """Open (creating if needed) the database at ``path``."""
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        self.path = path
        self._synchronous = synchronous
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        self._lock_fd = os.open(f"{path}.write-lock", os.O_RDWR | os.O_CREAT, 0o644)
        self._create_schema()

    def _connect(self) -> sqlite3.Connection:
        """A new connection in autocommit mode (transactions are explicit)."""
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_s,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        return conn

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StockUnavailableError("the stock database is closed", RETRY_AFTER_S)
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def _writer(self) -> Iterator[None]:
        """Be the one writer: first among this process's threads, then among processes."""
        with self._write_lock:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _create_schema(self) -> None:
        """WAL mode and the numbered migrations, under the writer lock.

        Processes opening one fresh file at once queue on the lock: the first switches the
        journal mode and migrates, the rest find both done. The journal mode switch must be
        inside the lock too: SQLite does not wait on the busy timeout for it, so two processes
        racing on it fail "database is locked".
        """
        conn = self._conn()
        with self._writer():
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise RuntimeError(f"could not put {self.path} in WAL mode (got {mode!r})")
            self.schema_version = migrate(_SqliteSession(conn), MIGRATIONS, store=str(self.path))

    def _sql(self, text: str) -> str:
        """SQLite takes ``?`` placeholders as written."""
        return text

    def _begin(self, conn: sqlite3.Connection, statement: str) -> None:
        """Start a transaction; a lock held beyond the busy timeout is a 503."""
        try:
            conn.execute(statement)
        except sqlite3.OperationalError as exc:
            log.warning("stock database busy", extra={"error": str(exc)})
            raise StockUnavailableError(
                f"the stock database stayed locked: {exc}", RETRY_AFTER_S
            ) from exc

    def _finish(self, conn: sqlite3.Connection, work: Callable[[], T]) -> T:
        """Run ``work`` in the open transaction; commit, or roll back and re-raise."""
        try:
            result = work()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    def _write(self, keys: Sequence[Key], clock: Clock, work: Callable[[Cursor, int], T]) -> T:
        """``BEGIN IMMEDIATE`` locks the whole database for writing, so no row locks."""
        conn = self._conn()

        def body() -> T:
            cur = conn.cursor()
            if keys:
                cur.executemany(
                    "INSERT INTO stock_rows (node_id, sku) VALUES (?, ?) "
                    "ON CONFLICT (node_id, sku) DO NOTHING",
                    keys,
                )
            return work(cur, to_us(clock()))

        with self._writer():
            self._begin(conn, "BEGIN IMMEDIATE")
            return self._finish(conn, body)

    def _read(self, work: Callable[[Cursor], T]) -> T:
        """A deferred transaction: its first read fixes the WAL snapshot it sees."""
        conn = self._conn()
        self._begin(conn, "BEGIN")
        return self._finish(conn, lambda: work(conn.cursor()))

    def _remember(self, work: Callable[[Cursor], None]) -> None:
        """A write that may be lost on power loss (never on a crash): no WAL sync."""
        conn = self._conn()
        if self._synchronous != "NORMAL":
            conn.execute("PRAGMA synchronous = NORMAL")
        try:
            with self._writer():
                self._begin(conn, "BEGIN IMMEDIATE")
                self._finish(conn, lambda: work(conn.cursor()))
        finally:
            if self._synchronous != "NORMAL":
                conn.execute(f"PRAGMA synchronous = {self._synchronous}")

    def ping(self) -> None:
        """Read the file's schema page: fails only when the file cannot be opened or read."""
        try:
            self._conn().execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            raise StockUnavailableError(
                f"the stock database cannot be read: {exc}", RETRY_AFTER_S
            ) from exc

    def close(self) -> None:
        """Close every connection this backend opened."""
        with self._lock:
            self._closed = True
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)
