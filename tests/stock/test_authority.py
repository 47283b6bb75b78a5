"""The authority of live state: migrations, the live snapshot pointer, judging under it.

Every test runs on embedded SQLite and on PostgreSQL (see conftest ``store_settings``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest

from models import Snapshot
from promise.errors import NotReadyError
from promise.stock import (
    EventBatch,
    EventOutcome,
    EventType,
    ReservationRequest,
    StockService,
    StockSettings,
    open_backend,
)
from promise.stock.backend import HoldPlan, utc_now
from promise.stock.errors import SnapshotMovedError
from promise.stock.holds import StockRules, shortfalls
from promise.stock.snapshots import SnapshotStore
from promise.stock.sql import MIGRATIONS, SqlStockBackend
from scenarios.migrations import Migration, MigrationError, StatementSession, migrate
from tests.stock.conftest import OpenStore
from tests.stock.stock_cases import FakeClock, event, network, pg_schema

SHIPPED = MIGRATIONS[0].statements  # the stock schema as it shipped before the runner


def _plan(generation: int | None, quantity: int = 1) -> HoldPlan:
    """A one-line web hold at DC1 of SKU A, judged under ``generation``."""
    return HoldPlan(
        lines=(("DC1", "A", quantity),),
        channel="web",
        ttl_us=60_000_000,
        snapshot_generation=generation,
    )


def _hold(backend: SqlStockBackend, snap: Snapshot, plan: HoldPlan) -> int:
    """Place ``plan`` with the real hold rule; the HTTP status it would answer."""
    rules = StockRules(snap)
    policy = rules.policies[plan.channel]
    answer = backend.create_hold(
        plan,
        lambda overlays, now: shortfalls(rules, policy, plan.lines, overlays, now),
        lambda record, _short, _now: (201 if record else 409, "{}"),
        utc_now,
    )
    return answer.status_code


def test_a_hold_judged_under_an_older_generation_is_refused_and_writes_nothing(
    backend: SqlStockBackend, snap: Snapshot
) -> None:
    """After a swap, a hold judged under the previous generation fails and leaves no trace."""
    first = backend.publish_snapshot(b'{"v": 1}', "v1", "test", utc_now)
    assert _hold(backend, snap, _plan(first.generation)) == 201
    second = backend.publish_snapshot(b'{"v": 2}', "v2", "test", utc_now)
    assert second.generation == first.generation + 1
    version = backend.versions().stock
    with pytest.raises(SnapshotMovedError) as moved:
        _hold(backend, snap, _plan(first.generation))
    assert (moved.value.judged, moved.value.live) == (first.generation, second.generation)
    assert backend.versions().stock == version  # nothing committed
    assert _hold(backend, snap, _plan(second.generation)) == 201
    held = backend.overlays([("DC1", "A")]).rows[("DC1", "A")].held(0)
    assert held == 2


def test_events_judged_under_an_older_generation_are_refused(
    backend: SqlStockBackend, snap: Snapshot
) -> None:
    """A batch of events, even one whose events are all rejected, is judged on the live network."""
    backend.publish_snapshot(b'{"v": 1}', "v1", "test", utc_now)
    live = backend.publish_snapshot(b'{"v": 2}', "v2", "test", utc_now)
    rules = StockRules(snap)
    count = event("e1", EventType.COUNT, 4, 1)
    with pytest.raises(SnapshotMovedError):
        backend.apply_events([count], rules.unknown, utc_now, live.generation - 1)
    unknown = event("e2", EventType.COUNT, 4, 1, node_id="NOWHERE")
    with pytest.raises(SnapshotMovedError):
        backend.apply_events([unknown], rules.unknown, utc_now, live.generation - 1)
    assert backend.recorded_event("e1") is None
    results, _ = backend.apply_events([count], rules.unknown, utc_now, live.generation)
    assert results[0].outcome is EventOutcome.APPLIED
    recorded = backend.recorded_event("e1")
    assert recorded is not None
    assert recorded.snapshot_generation == live.generation


def test_seeding_happens_once_and_a_swap_is_never_reverted(
    open_store: OpenStore,
) -> None:
    """Only the first of several start-ups seeds; after a swap, seeding changes nothing."""
    first, second = open_store(), open_store()
    seeded = first.publish_snapshot(b"one", "v1", "a", utc_now, only_if_none=True)
    again = second.publish_snapshot(b"two", "v2", "b", utc_now, only_if_none=True)
    assert (seeded.generation, again.generation, again.version) == (1, 1, "v1")
    swapped = second.publish_snapshot(b"three", "v3", "b", utc_now)
    after = first.publish_snapshot(b"one", "v1", "a", utc_now, only_if_none=True)
    assert after == swapped
    loaded = first.load_live_snapshot()
    assert loaded is not None
    assert loaded == (swapped, b"three")


def test_the_stock_service_catches_up_and_judges_again(
    open_store: OpenStore, store_settings: StockSettings, clock: FakeClock
) -> None:
    """A worker behind a swap that lowered stock holds only what the new network allows."""
    low = network(dc_a=3)

    async def scenario() -> tuple[list[int], int, int]:
        stores = []
        for _ in range(2):
            backend = open_store()
            store = SnapshotStore(backend, initial=network, warm=lambda _s: None, clock=clock)
            await store.start()
            stores.append((backend, store))
        (behind_backend, behind), (_, swapper) = stores
        service = StockService(behind_backend, store_settings, snapshots=behind, clock=clock)
        await swapper.replace(low)
        statuses = []
        for i in range(5):
            request = ReservationRequest.model_validate(
                {"lines": [{"node_id": "DC1", "sku": "A", "quantity": 1}], "channel": "web"}
            )
            statuses.append((await service.reserve(request, f"k{i}")).status_code)
        live = behind.current()
        answer = await service.apply_events(
            EventBatch(events=(event("c1", EventType.COUNT, 9, 1),))
        )
        return statuses, live.generation, answer.applied

    statuses, generation, applied = anyio.run(scenario)
    # dc_a=3 on the new network: three one-unit holds, then refusals, all judged under it.
    assert statuses == [201, 201, 201, 409, 409]
    assert generation == 2
    assert applied == 1


@pytest.fixture
def shipped_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[StockSettings, str]]:
    """A store of each kind holding the pre-runner schema with one hold in it."""
    hold_row = (
        "INSERT INTO stock_holds (hold_id, status, channel, created_at, expires_at) "
        "VALUES ('old-hold', 'confirmed', 'web', 1, 2)"
    )
    line_row = (
        "INSERT INTO stock_hold_lines (hold_id, line_no, node_id, sku, quantity, consumed, "
        "status, expires_at) VALUES ('old-hold', 0, 'DC1', 'A', 4, 0, 'confirmed', 2)"
    )
    if request.param == "sqlite":
        path = tmp_path / "stock.sqlite3"
        with sqlite3.connect(path) as conn:
            for statement in (*SHIPPED, hold_row, line_row):
                conn.execute(statement)
        yield StockSettings(data_dir=tmp_path), "sqlite"
        return
    dsn: str = request.getfixturevalue("pg_dsn")
    with pg_schema(dsn) as schema_dsn:
        with psycopg.connect(schema_dsn, autocommit=True) as conn:
            for statement in (*SHIPPED, hold_row, line_row):
                conn.execute(statement)
        yield StockSettings(database_url=schema_dsn), "postgres"


@pytest.mark.parametrize("shipped_store", ["sqlite", "postgres"], indirect=True)
def test_a_store_of_the_shipped_schema_is_upgraded_in_place(
    shipped_store: tuple[StockSettings, str], snap: Snapshot
) -> None:
    """Opening a pre-runner store applies every migration and keeps what it held."""
    settings, _kind = shipped_store
    backend = open_backend(settings)
    assert isinstance(backend, SqlStockBackend)
    try:
        assert backend.schema_version == len(MIGRATIONS)
        old = backend.get_hold("old-hold")
        assert old is not None
        assert old.snapshot_generation is None
        assert backend.overlays([("DC1", "A")]).rows[("DC1", "A")].held(0) == 4
        assert backend.versions().snapshot == 0
        pointer = backend.publish_snapshot(
            snap.model_dump_json().encode(), snap.version, "t", utc_now
        )
        assert _hold(backend, snap, _plan(pointer.generation)) == 201
        reopened = open_backend(settings)
        assert isinstance(reopened, SqlStockBackend)
        assert reopened.schema_version == len(MIGRATIONS)  # nothing applied twice
        reopened.close()
    finally:
        backend.close()


class _ListSession(StatementSession):
    """An in-memory SQLite connection as a migration session."""

    def __init__(self) -> None:
        """Open the connection (autocommit: the runner's statements make the transactions)."""
        self.conn = sqlite3.connect(":memory:", isolation_level=None)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement."""
        return self.conn.execute(sql, tuple(params)).fetchall()


def test_a_failing_migration_leaves_the_earlier_ones_and_nothing_of_itself() -> None:
    """Each migration is one transaction: a failure keeps the version before it."""
    session = _ListSession()
    good = Migration(1, "t", ("CREATE TABLE t (x INTEGER)",))
    bad = Migration(2, "u", ("CREATE TABLE u (x INTEGER)", "INSERT INTO nowhere VALUES (1)"))
    with pytest.raises(sqlite3.OperationalError):
        migrate(session, (good, bad), store="test")
    tables = {row[0] for row in session.conn.execute("SELECT name FROM sqlite_master")}
    assert "t" in tables
    assert "u" not in tables
    assert session.conn.execute("SELECT max(version) FROM schema_version").fetchone() == (1,)
    with pytest.raises(MigrationError, match="newer"):
        migrate(session, (), store="test")
    with pytest.raises(MigrationError, match="numbered"):
        migrate(_ListSession(), (bad,), store="test")


def test_snapshot_json_round_trips_through_the_authority(backend: SqlStockBackend) -> None:
    """What is published is what is loaded, byte for byte, however it compresses."""
    body = json.dumps({"rows": list(range(5000))}).encode()
    pointer = backend.publish_snapshot(body, "big", "t", utc_now)
    loaded = backend.load_live_snapshot()
    assert loaded == (pointer, body)


def test_a_generation_a_worker_cannot_load_is_a_503_not_a_crash(open_store: OpenStore) -> None:
    """A body this build cannot read (say, from a newer build) answers 503 and logs; no 500."""

    async def scenario() -> tuple[str, int]:
        store = SnapshotStore(open_store(), initial=network, warm=lambda _s: None)
        await store.start()
        open_store().publish_snapshot(b'{"not": "a snapshot"}', "future", "other", utc_now)
        with pytest.raises(NotReadyError, match="cannot load snapshot generation 2"):
            await store.sync()
        live = store.current()
        return live.snapshot.version, live.generation

    # The worker still holds what it had; holds judged under it are refused by the authority.
    assert anyio.run(scenario) == (network().version, 1)
