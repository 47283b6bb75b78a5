"""Stock stores of both kinds: every backend test runs on embedded SQLite and on PostgreSQL.

PostgreSQL tests use the local server (see ``stock_cases.postgres_dsn``) with a fresh schema
per test; they skip with instructions when it is unreachable, unless
``PROMISE_REQUIRE_POSTGRES=1`` makes that a failure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from models import Snapshot
from promise.stock import StockService, StockSettings, open_backend
from promise.stock.sql import SqlStockBackend
from tests.stock.stock_cases import FakeClock, FixedSnapshots, network, pg_schema, postgres_dsn

OpenStore = Callable[[], SqlStockBackend]


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """The local PostgreSQL server's DSN (skips or fails when unreachable)."""
    return postgres_dsn()


@pytest.fixture
def snap() -> Snapshot:
    """The stock test network."""
    return network()


@pytest.fixture
def clock() -> FakeClock:
    """A clock moved by hand."""
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgres"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StockSettings]:
    """Settings of a fresh, empty store of each kind."""
    if request.param == "sqlite":
        yield StockSettings(data_dir=tmp_path, hold_ttl_s=60)
        return
    dsn: str = request.getfixturevalue("pg_dsn")
    with pg_schema(dsn) as schema_dsn:
        yield StockSettings(database_url=schema_dsn, hold_ttl_s=60)


@pytest.fixture
def open_store(store_settings: StockSettings) -> Iterator[OpenStore]:
    """Opens backends on the one store (each is what another worker process would hold)."""
    opened: list[SqlStockBackend] = []

    def make() -> SqlStockBackend:
        backend = open_backend(store_settings)
        assert isinstance(backend, SqlStockBackend)
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        backend.close()


@pytest.fixture
def backend(open_store: OpenStore) -> SqlStockBackend:
    """A backend on a fresh store."""
    return open_store()


@pytest.fixture
def service(
    backend: SqlStockBackend, store_settings: StockSettings, snap: Snapshot, clock: FakeClock
) -> StockService:
    """A stock service on the test network with the fake clock."""
    return StockService(backend, store_settings, snapshots=FixedSnapshots(snap), clock=clock)
