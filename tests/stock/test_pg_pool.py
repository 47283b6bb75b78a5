"""The PostgreSQL connection pool and the backends' ping, against the real servers.

The pool must bound its connections, answer at once when they are all busy or the server is
gone, drop connections the server closed, and connect again the moment the server is back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import psycopg.errors
import pytest

from promise.settings import SettingsError
from promise.stock import StockSettings, StockUnavailableError
from promise.stock.pg_pool import PgPool, PoolTimeoutError
from promise.stock.postgres import PostgresStockBackend
from tests.stock.conftest import OpenStore
from tests.stock.stock_cases import pg_schema
from tests.stock.tcp_proxy import TcpProxy

THREADS = 6
ROUNDS = 20


@pytest.fixture
def pool(pg_dsn: str) -> Iterator[PgPool]:
    """A pool of two connections to the test database."""
    opened = PgPool(pg_dsn, size=2, acquire_timeout_s=0.3)
    yield opened
    opened.close()


def backend_pid(pool: PgPool) -> int:
    """The server process id of the connection the pool lends next."""
    with pool.connection() as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        return int(row[0])


def terminate(dsn: str, pid: int) -> None:
    """Have the server end the session ``pid`` (it closes the connection's socket)."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_busy_pool_answers_within_the_acquire_timeout(pool: PgPool) -> None:
    """With every connection lent, the next caller gets PoolTimeoutError after 0.3 s, not 30."""
    with pool.connection(), pool.connection():
        started = time.perf_counter()
        with pytest.raises(PoolTimeoutError), pool.connection():
            pass
        waited = time.perf_counter() - started
    assert 0.25 <= waited <= 1.0
    assert backend_pid(pool) > 0  # the slots came back


def test_many_threads_share_at_most_size_connections(pool: PgPool) -> None:
    """Six threads doing 20 queries each reuse two server sessions at most."""
    pids: set[int] = set()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(ROUNDS):
                with pool.connection() as conn:
                    row = conn.execute("SELECT pg_backend_pid(), pg_sleep(0.001)").fetchone()
                    assert row is not None
                    pids.add(int(row[0]))
        except PoolTimeoutError:
            pass  # a busy pool is allowed to say so; it must never open a third connection
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert 1 <= len(pids) <= 2


def test_an_idle_connection_the_server_closed_is_replaced_without_an_error(
    pool: PgPool, pg_dsn: str
) -> None:
    """A session ended while idle in the pool is noticed before use: the caller never sees it."""
    first = backend_pid(pool)
    terminate(pg_dsn, first)
    time.sleep(0.1)  # the server's goodbye reaches the idle socket
    second = backend_pid(pool)
    assert second != first


def use_after_termination(pool: PgPool, dsn: str, ended: list[int]) -> None:
    """Lend a connection, have the server end its session, then use it (raises)."""
    with pool.connection() as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        ended.append(int(row[0]))
        terminate(dsn, ended[0])
        conn.execute("SELECT 1")


def test_a_connection_that_failed_mid_work_is_not_lent_again(pool: PgPool, pg_dsn: str) -> None:
    """The server ending a session mid-work is an OperationalError; the next caller reconnects."""
    ended: list[int] = []
    with pytest.raises(psycopg.OperationalError):
        use_after_termination(pool, pg_dsn, ended)
    assert backend_pid(pool) != ended[0]


def test_any_other_operational_error_discards_the_connection(pool: PgPool) -> None:
    """Any OperationalError but a retried rollback costs the connection, sound as it may look."""
    first = backend_pid(pool)
    with pytest.raises(psycopg.OperationalError), pool.connection():
        raise psycopg.OperationalError("the link may be in any state now")
    assert backend_pid(pool) != first


def test_a_retried_deadlock_keeps_its_healthy_connection(pool: PgPool) -> None:
    """A transaction rollback the caller retries does not cost a reconnect."""
    first = backend_pid(pool)
    with pytest.raises(psycopg.errors.DeadlockDetected), pool.connection():
        raise psycopg.errors.DeadlockDetected("the caller retries this")
    assert backend_pid(pool) == first


def test_ping_and_queries_fail_at_once_when_cut_and_work_at_once_when_restored(
    pg_dsn: str,
) -> None:
    """Through a proxy: cut → 503-class errors in well under a second; restore → no back-off."""
    with pg_schema(pg_dsn) as schema_dsn, TcpProxy.to_server_of(schema_dsn) as proxy:
        backend = PostgresStockBackend(proxy.dsn(schema_dsn), pool_size=2)
        try:
            backend.ping()
            version = backend.state_version()
            proxy.cut()
            for call in (backend.ping, backend.state_version, backend.ping):
                started = time.perf_counter()
                with pytest.raises(StockUnavailableError) as raised:
                    call()
                assert time.perf_counter() - started < 0.5
                assert raised.value.retry_after_s >= 1
            proxy.restore()
            started = time.perf_counter()
            backend.ping()
            assert backend.state_version() == version
            assert time.perf_counter() - started < 0.5
        finally:
            backend.close()


def test_ping_answers_while_open_and_fails_once_closed(open_store: OpenStore) -> None:
    """Both backends: a ping succeeds on a working store and is a 503-class error once closed."""
    backend = open_store()
    backend.ping()
    backend.close()
    with pytest.raises(StockUnavailableError):
        backend.ping()


def test_connect_and_acquire_timeouts_are_settings() -> None:
    """The timeouts come from PROMISE_* variables; libpq's 2 s minimum is enforced."""
    settings = StockSettings.from_env(
        {"PROMISE_DATABASE_CONNECT_TIMEOUT_S": "5", "PROMISE_DATABASE_ACQUIRE_TIMEOUT_S": "0.2"}
    )
    assert (settings.database_connect_timeout_s, settings.database_acquire_timeout_s) == (5, 0.2)
    assert StockSettings.from_env(settings.to_env()) == settings
    with pytest.raises(SettingsError, match="CONNECT_TIMEOUT_S"):
        StockSettings.from_env({"PROMISE_DATABASE_CONNECT_TIMEOUT_S": "1"})
