"""Acceptance 2 and the outbox's contents: every committed change published exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry

from promise.events.config import EventSettings
from promise.events.jetstream import connect
from promise.events.metrics import EventMetrics
from promise.events.publisher import OUTBOX_SEQ, Publisher
from promise.stock import StockService
from promise.stock.config import StockSettings
from promise.stock.schemas import EventBatch, EventType, ReservationRequest
from promise.stock.sqlite import SqliteStockBackend
from tests.events.events_cases import (
    event_env,
    generate_stream,
    read_stream,
    wide_network,
)
from tests.stock.stock_cases import FakeClock, FixedSnapshots, event

ROOT = Path(__file__).resolve().parents[2]


def _make_changes(store: Path, settings: EventSettings) -> tuple[SqliteStockBackend, StockService]:
    """Events, holds confirmed, released and expired, and a snapshot swap, all committed."""
    snap = wide_network(2)
    clock = FakeClock()
    backend = SqliteStockBackend(store)
    stock = StockService(
        backend,
        StockSettings(stock_path=store),
        snapshots=FixedSnapshots(snap),
        clock=clock,
        outbox=True,
    )
    stream = generate_stream(snap, settings, 400, seed=2, duplicate_rate=0, invalid=0)

    async def run() -> None:
        for start in range(0, len(stream.valid), 100):
            await stock.apply_events(EventBatch(events=stream.valid[start : start + 100]))
        holds = []
        for i in range(12):
            request = ReservationRequest(
                lines=(
                    {"node_id": "DC0", "sku": "K01", "quantity": 1},
                    {"node_id": "S1", "sku": f"K{i:02d}", "quantity": 1},
                ),
                channel="web",
                ttl_s=60,
            )
            answer = await stock.reserve(request, f"key-{i}")
            assert answer.status_code == 201, answer.body
            holds.append(json.loads(answer.body)["reservation_id"])
        for hold in holds[:4]:
            await stock.confirm(hold)
        for hold in holds[2:6]:
            await stock.release(hold)
        clock.advance(120)  # holds 6.. lapse; the sweeper marks them expired
        assert await stock.sweep() == 6
        # A sale consuming a confirmed hold is an applied event like any other.
        sale = event(
            "sale-1", EventType.SALE, 1, 10_000, node_id="DC0", sku="K01", reservation_id=holds[0]
        )
        await stock.apply_events(EventBatch(events=(sale,)))

    asyncio.run(run())
    body = wide_network(3).model_dump_json().encode()
    backend.publish_snapshot(body, "case-3", "test", clock)
    return backend, stock


def test_outbox_holds_one_message_per_change_with_stable_ids(
    streams: EventSettings, tmp_path: Path
) -> None:
    """Each applied event, hold per node, confirm, release, expiry and the swap: one row each."""
    backend, _ = _make_changes(tmp_path / "stock.sqlite3", streams)
    entries = backend.outbox_pending(100_000)
    kinds: dict[str, int] = {}
    for entry in entries:
        kinds[entry.kind] = kinds.get(entry.kind, 0) + 1
    applied = 401  # every generated event applies (no copies), and the sale
    assert kinds == {
        "event": applied,
        "hold": 24,  # 12 holds on two nodes each
        "confirm": 8,
        "release": 8,  # holds 2..5 (2 and 3 were confirmed)
        "expiry": 12,  # holds 6..11
        "snapshot": 1,
    }
    assert [e.outbox_id for e in entries] == sorted(e.outbox_id for e in entries)
    assert len({e.msg_id for e in entries}) == len(entries)
    release = next(json.loads(e.body) for e in entries if e.kind == "release")
    assert release["rows"][0]["atp"]["web"] >= 0
    assert release["reservation"]["status"] == "released"
    backend.close()


def test_publisher_killed_between_publish_and_commit_publishes_each_change_once(
    streams: EventSettings, tmp_path: Path
) -> None:
    """Two SIGKILLs after the stream stored a batch: every change on the stream exactly once."""
    store = tmp_path / "stock.sqlite3"
    backend, _ = _make_changes(store, streams)
    committed = [entry.msg_id for entry in backend.outbox_pending(100_000)]
    settings = streams.model_copy(update={"outbox_batch": 60})
    env = {**os.environ, **event_env(settings), "PYTHONPATH": str(ROOT)}
    for kill_at in (1, 3):
        done = subprocess.run(
            [sys.executable, "-m", "tests.events.crash_publisher", str(store), str(kill_at)],
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    # Everything the killed publishers had stored is still waiting in the outbox.
    stored_before = asyncio.run(read_stream(settings, settings.events_out_stream))
    assert len(stored_before) == 3 * 60
    assert backend.outbox_stats().depth == len(committed) - 2 * 60

    async def drain() -> None:
        broker = await connect(settings.nats_url, name="test-publisher")
        publisher = Publisher(broker, backend, settings, EventMetrics(CollectorRegistry()))
        try:
            while await publisher.drain_once():
                pass
        finally:
            await broker.close()

    asyncio.run(drain())
    assert backend.outbox_stats().depth == 0
    out = asyncio.run(read_stream(settings, settings.events_out_stream))
    ids = [m.headers["Nats-Msg-Id"] for m in out]
    assert sorted(ids) == sorted(committed)  # each committed change once, none lost
    seqs = [int(m.headers[OUTBOX_SEQ]) for m in out]
    assert seqs == sorted(seqs)  # in commit order
    backend.close()
