"""The price table in the authority: versions handed out in order, whole atomic writes, audit.

Every test runs on embedded SQLite and on PostgreSQL (see conftest ``store_settings``); two
backends on one store stand for two hosts.
"""

from __future__ import annotations

import threading

import anyio
import pytest

from models import Snapshot
from promise.stock import StockService, StockSettings
from promise.stock.backend import Versions, utc_now
from promise.stock.errors import PricesMovedError
from promise.stock.sql import SqlStockBackend
from tests.stock.conftest import OpenStore
from tests.stock.stock_cases import FakeClock, FixedSnapshots
from tests.stock.test_authority import _hold, _plan

# Writers per thread × threads of the concurrency test: enough for interleaved transactions.
WRITES = 5
WRITERS = 4


def test_a_write_is_the_next_version_and_reads_back_whole(
    backend: SqlStockBackend, clock: FakeClock
) -> None:
    """Version 1 holds exactly the priced pairs (zeros dropped); the counter says 1."""
    assert backend.price_table() is None
    assert backend.versions().prices == 0
    table = backend.write_prices(
        [("DC1", "A", 300), ("S1", "A", 0), ("DC1", "B", 45)],
        clock,
        origin="upload",
        note="first",
        computed_at=7,
        actor="key:admin",
        snapshot_generation=2,
    )
    assert (table.version, table.priced, table.origin, table.principal) == (
        1,
        2,
        "upload",
        "key:admin",
    )
    assert (table.computed_at, table.snapshot_generation, table.note) == (7, 2, "first")
    assert backend.versions() == Versions(stock=0, snapshot=0, prices=1)
    stored, rows = backend.load_prices()
    assert stored == table
    assert sorted(rows) == [("DC1", "A", 300), ("DC1", "B", 45)]


def test_a_new_version_replaces_every_row_and_keeps_old_metadata(
    backend: SqlStockBackend, clock: FakeClock
) -> None:
    """Only the current version's rows stay; the audit trail keeps every version written."""
    backend.write_prices([("DC1", "A", 300), ("DC1", "B", 45)], clock, origin="cli", actor="cli:x")
    clock.advance(1)
    backend.write_prices([("S1", "A", 10)], clock, origin="job", actor="job:pricing")
    table, rows = backend.load_prices()
    assert table is not None
    assert (table.version, rows) == (2, [("S1", "A", 10)])
    entries = backend.audit_trail(action="prices.")
    assert [(e.subject, e.principal, e.detail["replaced"]) for e in entries] == [
        ("1", "cli:x", 0),
        ("2", "job:pricing", 1),
    ]


def test_a_write_expecting_an_old_version_writes_nothing(
    backend: SqlStockBackend, clock: FakeClock
) -> None:
    """Two writers from version 1: the second is told version 2 is current."""
    backend.write_prices([("DC1", "A", 1)], clock, origin="cli")
    backend.write_prices([("DC1", "A", 2)], clock, origin="job", expect=1)
    with pytest.raises(PricesMovedError) as moved:
        backend.write_prices([("DC1", "A", 3)], clock, origin="job", expect=1)
    assert (moved.value.expected, moved.value.current) == (1, 2)
    assert backend.load_prices()[1] == [("DC1", "A", 2)]


def test_a_failed_write_leaves_the_table_as_it_was(
    backend: SqlStockBackend, clock: FakeClock
) -> None:
    """A pair given twice breaks the rows' key mid-write: the whole version rolls back."""
    backend.write_prices([("DC1", "A", 300)], clock, origin="cli")
    with pytest.raises(Exception, match=r"(?i)unique"):
        backend.write_prices([("S1", "A", 1), ("S1", "A", 2)], clock, origin="cli")
    table, rows = backend.load_prices()
    assert table is not None
    assert (table.version, rows) == (1, [("DC1", "A", 300)])
    assert backend.versions().prices == 1


def test_versions_grow_by_one_across_hosts_writing_at_once(
    open_store: OpenStore, clock: FakeClock
) -> None:
    """Four writers on two hosts: every version handed out once, 1..20, and the last is live."""
    hosts = [open_store(), open_store()]
    written: list[int] = []
    lock = threading.Lock()

    def writer(k: int) -> None:
        for n in range(WRITES):
            table = hosts[k % 2].write_prices([("DC1", "A", 100 * k + n + 1)], clock, origin="cli")
            with lock:
                written.append(table.version)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(written) == list(range(1, WRITES * WRITERS + 1))
    table, rows = hosts[0].load_prices()
    assert table is not None
    assert table.version == WRITES * WRITERS
    assert len(rows) == 1


def test_pages_follow_sku_then_node_and_filter(backend: SqlStockBackend, clock: FakeClock) -> None:
    """A page after a row continues after it; filters narrow to a SKU or a node."""
    backend.write_prices([("S1", "A", 1), ("DC1", "A", 2), ("DC1", "B", 3)], clock, origin="upload")
    _, first = backend.price_page(limit=2)
    assert first == [("DC1", "A", 2), ("S1", "A", 1)]
    _, rest = backend.price_page(after=("A", "S1"), limit=2)
    assert rest == [("DC1", "B", 3)]
    assert backend.price_page(sku="A", node_id="S1")[1] == [("S1", "A", 1)]
    assert backend.price_page(node_id="DC1")[1] == [("DC1", "A", 2), ("DC1", "B", 3)]
    table, none = backend.price_page(limit=0)
    assert table is not None
    assert none == []


def test_holds_since_counts_the_orders_after_an_instant(
    backend: SqlStockBackend, snap: Snapshot
) -> None:
    """Holds placed at or after the instant count, whatever became of them."""
    # The holds are stamped by the wall clock, so the table is too.
    _hold(backend, snap, _plan(None))
    table = backend.write_prices([], utc_now, origin="cli")
    assert backend.holds_since(table.written_at) == 0
    _hold(backend, snap, _plan(None))
    _hold(backend, snap, _plan(None))
    assert backend.holds_since(table.written_at) == 2


def test_a_lease_has_one_holder_until_it_lapses(open_store: OpenStore, clock: FakeClock) -> None:
    """Host B waits while A renews; once A stops, B takes over after the lease."""
    a, b = open_store(), open_store()
    assert a.lease("pricing", "a", 30_000_000, clock)
    assert not b.lease("pricing", "b", 30_000_000, clock)
    clock.advance(20)
    assert a.lease("pricing", "a", 30_000_000, clock)
    clock.advance(29)
    assert not b.lease("pricing", "b", 30_000_000, clock)
    clock.advance(2)
    assert b.lease("pricing", "b", 30_000_000, clock)
    # Another name is another lease.
    assert a.lease("publisher", "a", 30_000_000, clock)


def test_a_published_write_puts_one_prices_message_in_the_outbox(
    backend: SqlStockBackend, clock: FakeClock
) -> None:
    """With the outbox on, the new version is announced in the same transaction."""
    backend.outbox_rows = lambda _key, _overlay, _now: None
    backend.write_prices([("DC1", "A", 300)], clock, origin="cli")
    (entry,) = backend.outbox_pending(10)
    assert (entry.kind, entry.msg_id, entry.node_id) == ("prices", "prices:1", "all")


def test_every_promise_after_a_write_on_another_host_gets_the_new_table(
    open_store: OpenStore, store_settings: StockSettings, snap: Snapshot, clock: FakeClock
) -> None:
    """The version check a live read makes anyway fences the price copy: no poll is needed."""
    here = StockService(open_store(), store_settings, snapshots=FixedSnapshots(snap), clock=clock)
    elsewhere = open_store()
    live = here.snapshots.current()
    seen = []

    async def read() -> None:
        call = here.with_stock(live, lambda _inventory, prices: prices)
        seen.append(await anyio.to_thread.run_sync(call))

    anyio.run(read)
    elsewhere.write_prices([("DC1", "A", 300)], clock, origin="cli")
    anyio.run(read)
    anyio.run(read)
    assert [p.version for p in seen] == [0, 1, 1]
    assert seen[1].price("DC1", "A") == 300
    # Loaded once for the new version; the third read reused the copy.
    assert here.prices.loads == 1


def test_a_view_within_its_staleness_keeps_the_copy(
    open_store: OpenStore, store_settings: StockSettings, snap: Snapshot, clock: FakeClock
) -> None:
    """Within live_max_staleness_ms no version is read, so the copy stands; the poll catches up."""
    settings = store_settings.model_copy(update={"live_max_staleness_ms": 60_000})
    here = StockService(open_store(), settings, snapshots=FixedSnapshots(snap), clock=clock)
    live = here.snapshots.current()
    first = here.with_stock(live, lambda _inventory, prices: prices.version)
    assert first() == 0
    open_store().write_prices([("DC1", "A", 300)], clock, origin="cli")
    assert first() == 0
    assert anyio.run(here.sync_prices).version == 1
    assert first() == 1
