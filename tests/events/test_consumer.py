"""The consumer in process, on a real NATS server, on both stock stores."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry

from promise.events.backbone import Backbone
from promise.events.broker import DEAD_REASON, ORIGINAL_SUBJECT
from promise.events.config import EventSettings
from promise.events.metrics import EventMetrics
from promise.stock import StockService
from promise.stock.config import StockSettings
from promise.stock.connect import open_backend
from promise.stock.sql import SqlStockBackend
from tests.events.events_cases import (
    clean_apply,
    consumer_lag,
    event_state,
    generate_stream,
    publish_all,
    read_stream,
    wait_drained,
    wide_network,
)
from tests.stock.conftest import OpenStore
from tests.stock.stock_cases import FakeClock, FixedSnapshots, pg_schema
from tests.stock.tcp_proxy import TcpProxy


async def _consume_until_drained(
    stock: StockService, settings: EventSettings, timeout_s: float = 60
) -> Backbone:
    """Run a backbone until the durable consumer has acknowledged everything."""
    backbone = Backbone(settings, stock, EventMetrics(CollectorRegistry()))
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(backbone.run)
        await wait_drained(settings, timeout_s)
        tasks.cancel_scope.cancel()
    return backbone


def test_consumer_applies_a_shuffled_stream_with_copies_like_one_clean_apply(
    open_store: OpenStore, store_settings: StockSettings, streams: EventSettings, tmp_path: Path
) -> None:
    """1,500 events, 10 % copies, shuffled: the state of one in-order apply; DLQ = the bad ones."""
    snap = wide_network(4)
    stream = generate_stream(snap, streams, 1500, seed=3, invalid=8)
    asyncio.run(publish_all(streams, stream.messages))
    backend = open_store()
    settings = streams.model_copy(update={"events_consume": True, "events_batch": 200})
    stock = StockService(backend, store_settings, snapshots=FixedSnapshots(snap), clock=FakeClock())
    asyncio.run(_consume_until_drained(stock, settings))

    reference = clean_apply(snap, stream.valid, tmp_path / "reference.sqlite3")
    assert event_state(backend) == event_state(reference)
    dead = asyncio.run(read_stream(settings, settings.events_dlq_stream))
    assert len(dead) == stream.invalid
    assert all(m.headers[DEAD_REASON] for m in dead)
    assert {m.headers[ORIGINAL_SUBJECT].rsplit(".", 1)[-1] for m in dead} >= {"NOPE", "ELSEWHERE"}
    audit = backend.audit_trail(principal=f"consumer:{settings.events_durable}", limit=10_000)
    applied = sum(entry.detail["outcomes"].get("applied", 0) for entry in audit)
    assert applied + sum(e.detail["outcomes"].get("stale", 0) for e in audit) == len(stream.valid)


@pytest.mark.parametrize("store_settings", ["sqlite"], indirect=True)
def test_consumer_publishes_each_applied_event_with_the_rows_new_atp(
    open_store: OpenStore, store_settings: StockSettings, streams: EventSettings
) -> None:
    """With publishing on, every applied event reaches the output stream once, with its ATP."""
    snap = wide_network(2)
    stream = generate_stream(snap, streams, 300, seed=5, invalid=0)
    asyncio.run(publish_all(streams, stream.messages))
    backend: SqlStockBackend = open_store()
    settings = streams.model_copy(update={"events_consume": True, "events_publish": True})
    stock = StockService(
        backend, store_settings, snapshots=FixedSnapshots(snap), clock=FakeClock(), outbox=True
    )

    async def run() -> None:
        backbone = Backbone(settings, stock, EventMetrics(CollectorRegistry()))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(backbone.run)
            await wait_drained(settings, 60)
            while backend.outbox_stats().depth:
                await anyio.sleep(0.05)
            tasks.cancel_scope.cancel()

    asyncio.run(run())
    out = asyncio.run(read_stream(settings, settings.events_out_stream))
    ids = [m.headers["Nats-Msg-Id"] for m in out]
    assert len(ids) == len(set(ids))
    applied = {
        f"event:{e.event_id}"
        for e in stream.valid
        if backend.recorded_event(e.event_id).outcome.value == "applied"  # type: ignore[union-attr]
    }
    assert set(ids) == applied
    # The last message of each row carries the row's ATP as it is now, per channel.
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for message in out:
        body = json.loads(message.data)
        assert message.subject == f"{settings.events_out_subject}.event.{body['node_id']}"
        (row,) = body["rows"]
        last[(row["node_id"], row["sku"])] = row
    for (node, sku), row in last.items():
        for channel in ("web", "store_pickup"):
            position = asyncio.run(stock.position(node, sku, channel))
            assert row["atp"][channel] == position.available
            assert row["on_hand"] == position.on_hand


def test_an_outage_of_the_store_acknowledges_nothing_and_retries_until_it_is_back(
    streams: EventSettings, pg_dsn: str
) -> None:
    """While PostgreSQL is cut off nothing is acknowledged; once back, each event applies once."""
    snap = wide_network(2)
    stream = generate_stream(snap, streams, 400, seed=8, invalid=0)
    settings = streams.model_copy(
        update={"events_consume": True, "events_max_backoff_s": 0.5, "events_ack_wait_s": 5}
    )
    with pg_schema(pg_dsn) as schema_dsn, TcpProxy.to_server_of(schema_dsn) as proxy:
        store_settings = StockSettings(database_url=proxy.dsn(schema_dsn))
        backend = open_backend(store_settings)
        stock = StockService(
            backend, store_settings, snapshots=FixedSnapshots(snap), clock=FakeClock()
        )
        registry = CollectorRegistry()
        metrics = EventMetrics(registry)

        def sample(name: str, **labels: str) -> float:
            return registry.get_sample_value(name, labels) or 0.0

        async def run() -> tuple[str, int | None, float]:
            backbone = Backbone(settings, stock, metrics)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(backbone.run)
                proxy.cut()
                await publish_all(settings, stream.messages)
                await anyio.sleep(3)
                seen = (
                    backbone.health.state,
                    await consumer_lag(settings),
                    metrics.retries._value.get(),
                )
                proxy.restore()
                await wait_drained(settings, 60)
                tasks.cancel_scope.cancel()
            return seen

        state, lag, retries = asyncio.run(run())
        assert state == "failing"
        assert lag == len(stream.messages)  # nothing acknowledged during the outage
        assert retries >= 2  # handed back and tried again, with back-off
        applied = sample("promise_events_consumed_total", outcome="applied")
        stale = sample("promise_events_consumed_total", outcome="stale")
        assert applied + stale == len(stream.valid)
        backend.close()
