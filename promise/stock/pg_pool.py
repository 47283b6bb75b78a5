"""A small PostgreSQL connection pool that fails fast and never backs off.

psycopg_pool reconnects in a background thread with exponential back-off and makes callers
wait up to its timeout (30 s) for a connection: with the database gone every request hung for
that long, and after it came back the first hold still waited for the next reconnect attempt.
This pool instead connects on demand, in the caller's thread, with a short ``connect_timeout``:

* idle connections are kept in a LIFO (the most recently used is the most likely alive), and
  idle plus checked-out connections never exceed ``size``;
* a caller waits at most ``acquire_timeout_s`` for one of the ``size`` slots, then gets
  :class:`PoolTimeoutError`;
* a connection that is broken, closed, left inside a transaction, or whose use raised
  ``psycopg.OperationalError`` is closed rather than returned (except a deadlock or
  serialisation failure, which the caller retries on a connection that is still sound);
* an idle connection whose socket has become readable (the server closed it or sent a
  termination notice) is dropped before it is handed out, costing no round trip;
* there is no back-off: the first caller after the database returns connects at once.

A separate probe connection answers :meth:`PgPool.ping`, so readiness checks neither wait
behind request traffic nor take connections from it.
"""

from __future__ import annotations

import contextlib
import logging
import select
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import psycopg.conninfo
from psycopg.pq import TransactionStatus

from promise.stock.config import StockSettings

__all__ = [
    "PgPool",
    "PoolClosedError",
    "PoolError",
    "PoolTimeoutError",
    "database_problem",
    "describe_target",
    "wait_for_database",
]

log = logging.getLogger(__name__)

# A worker waiting for the database at start retries after 0.25 s, doubling up to 2 s.
START_RETRY_FIRST_S = 0.25
START_RETRY_MAX_S = 2.0

Connection = psycopg.Connection[Any]


class PoolError(Exception):
    """The pool handed out no connection: all are busy, or the pool is closed."""


class PoolTimeoutError(PoolError):
    """Every connection stayed busy for the whole acquire timeout."""


class PoolClosedError(PoolError):
    """The pool was closed."""


def describe_target(dsn: str) -> str:
    """``host:port/dbname`` of a DSN, for messages (never the password)."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        return "an unparsable DSN"
    host = params.get("host") or params.get("hostaddr") or "local socket"
    port = params.get("port") or "5432"
    return f"{host}:{port}/{params.get('dbname') or params.get('user') or ''}"


def _stale(conn: Connection) -> bool:
    """Whether an idle connection is closed, broken or has unread input (a goodbye, an EOF).

    An idle connection in autocommit mode is sent nothing unsolicited by the server except
    when it is about to close it, so readable means dead; the poll does not block.
    """
    if conn.closed or conn.broken:
        return True
    # poll, not select: a busy worker's descriptors can pass select's limit of 1024.
    poller = select.poll()
    try:
        poller.register(conn.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError, psycopg.Error):
        return True


def _reusable(conn: Connection) -> bool:
    """Whether a returned connection can serve the next caller as it is."""
    return (
        not conn.closed
        and not conn.broken
        and conn.info.transaction_status == TransactionStatus.IDLE
    )


def _rolled_back(exc: psycopg.OperationalError) -> bool:
    """A deadlock or serialisation failure (SQLSTATE class 40): the server, not the link, said no.

    The transaction was rolled back and the connection is sound; the caller retries on it.
    """
    return (exc.sqlstate or "").startswith("40")


def _close(conn: Connection) -> None:
    """Close a connection, ignoring the errors of one that is already dead."""
    with contextlib.suppress(Exception):
        conn.close()


class PgPool:
    """At most ``size`` autocommit connections to ``dsn``, connected on demand."""

    def __init__(
        self,
        dsn: str,
        *,
        size: int = 4,
        connect_timeout_s: int = 2,
        acquire_timeout_s: float = 0.5,
    ) -> None:
        """Configure the pool; nothing connects until the first caller asks."""
        if size < 1:
            raise ValueError(f"size must be at least 1, not {size}")
        self.dsn = dsn
        self.size = size
        self.connect_timeout_s = connect_timeout_s
        self.acquire_timeout_s = acquire_timeout_s
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._failing = False
        self._probe: Connection | None = None
        self._probe_lock = threading.Lock()

    def connect(self) -> Connection:
        """A new autocommit connection (psycopg.OperationalError when the server is not there)."""
        try:
            conn = psycopg.connect(
                self.dsn, autocommit=True, connect_timeout=self.connect_timeout_s
            )
        except psycopg.OperationalError as exc:
            self._note(exc)
            raise
        self._note(None)
        return conn

    def _note(self, error: psycopg.OperationalError | None) -> None:
        """Log only the changes between reachable and unreachable, not every failed attempt."""
        with self._lock:
            was_failing, self._failing = self._failing, error is not None
        if error is not None and not was_failing:
            log.warning(
                "stock database unreachable",
                extra={"target": describe_target(self.dsn), "error": " ".join(str(error).split())},
            )
        elif error is None and was_failing:
            log.info("stock database reachable again", extra={"target": describe_target(self.dsn)})

    def _take_idle(self) -> Connection | None:
        """The most recently returned live idle connection, closing stale ones on the way."""
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn = self._idle.pop()
            if not _stale(conn):
                return conn
            _close(conn)

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        """Lend a connection for one unit of work; it goes back to the pool if still healthy."""
        if self._closed:
            raise PoolClosedError("the connection pool is closed")
        if not self._slots.acquire(timeout=self.acquire_timeout_s):
            raise PoolTimeoutError(
                f"all {self.size} stock database connections stayed busy for "
                f"{self.acquire_timeout_s} s"
            )
        try:
            conn = self._take_idle()
            if conn is None:
                conn = self.connect()
            try:
                yield conn
            except psycopg.OperationalError as exc:
                if _rolled_back(exc):
                    self._give_back(conn)
                else:
                    # The link or the server failed mid-work: never lend this connection again.
                    _close(conn)
                raise
            except BaseException:
                self._give_back(conn)
                raise
            self._give_back(conn)
        finally:
            self._slots.release()

    def _give_back(self, conn: Connection) -> None:
        """Keep a healthy connection for the next caller; close anything else."""
        if _reusable(conn):
            with self._lock:
                if not self._closed:
                    self._idle.append(conn)
                    return
        _close(conn)

    def ping(self) -> None:
        """One ``SELECT 1`` on the probe connection; psycopg.OperationalError if unreachable.

        A dead probe connection is replaced at once, so a database that restarted answers on
        the first ping after it is back. A probe stuck on a silent network holds its lock; a
        second ping then fails after the acquire timeout instead of queueing behind it.
        """
        if self._closed:
            raise PoolClosedError("the connection pool is closed")
        if not self._probe_lock.acquire(timeout=self.acquire_timeout_s):
            raise PoolTimeoutError("an earlier stock database ping is still waiting for an answer")
        try:
            probe, self._probe = self._probe, None
            if probe is not None and _stale(probe):
                _close(probe)
                probe = None
            if probe is not None:
                try:
                    probe.execute("SELECT 1")
                except psycopg.OperationalError:
                    # Perhaps only this connection died (a server restart): try a new one.
                    _close(probe)
                else:
                    self._probe = probe
                    return
            probe = self.connect()
            try:
                probe.execute("SELECT 1")
            except psycopg.OperationalError:
                _close(probe)
                raise
            self._probe = probe
        finally:
            self._probe_lock.release()

    def close(self) -> None:
        """Close idle connections now and lent ones when they come back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            _close(conn)
        # A ping stuck on a silent network keeps its connection; it is closed at exit.
        if self._probe_lock.acquire(timeout=self.acquire_timeout_s):
            try:
                if self._probe is not None:
                    _close(self._probe)
                    self._probe = None
            finally:
                self._probe_lock.release()


def database_problem(settings: StockSettings) -> str | None:
    """Why the settings' PostgreSQL stock database cannot serve (None when it can, or is unset).

    One connection with the configured connect timeout and one ``SELECT 1``: an unreachable
    server, a wrong port, host, database name or credentials each fail here within seconds.
    """
    if not settings.database_url:
        return None
    target = describe_target(settings.database_url)
    try:
        with psycopg.connect(
            settings.database_url, connect_timeout=settings.database_connect_timeout_s
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        # libpq's messages span lines; the log line must stay one line.
        return f"stock database unreachable at {target}: {' '.join(str(exc).split())}"
    return None


def wait_for_database(
    settings: StockSettings, *, sleep: Callable[[float], None] = time.sleep
) -> str | None:
    """Wait up to ``database_start_wait_s`` for the database; the last problem, or None.

    A worker (re)started while the database is briefly away waits for it, saying why at ERROR
    each attempt, instead of dying at once and taking the server down with quick crashes.
    """
    deadline = time.monotonic() + settings.database_start_wait_s
    delay = START_RETRY_FIRST_S
    while True:
        problem = database_problem(settings)
        remaining = deadline - time.monotonic()
        if problem is None or remaining <= 0:
            return problem
        log.error(
            "stock database unreachable at start; retrying",
            extra={"problem": problem, "retry_for_s": round(remaining, 1)},
        )
        sleep(min(delay, remaining))
        delay = min(delay * 2, START_RETRY_MAX_S)
