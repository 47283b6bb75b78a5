"""Acceptance 4: the stream replayed into a fresh store equals the live one; drift shows."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry

from promise.cli import main
from promise.events.backbone import Backbone
from promise.events.config import EventSettings
from promise.events.metrics import EventMetrics
from promise.stock import StockService
from promise.stock.config import StockSettings
from promise.stock.postgres import PostgresStockBackend
from promise.stock.sqlite import SqliteStockBackend
from tests.events.events_cases import (
    event_env,
    generate_stream,
    publish_all,
    wait_drained,
    wide_network,
)
from tests.stock.stock_cases import FakeClock, FixedSnapshots, pg_schema

EVENTS = 2000


@pytest.fixture
def live_store(streams: EventSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A live SQLite authority that consumed a shuffled stream with copies and bad messages."""
    snap = wide_network(4)
    store = tmp_path / "live.sqlite3"
    backend = SqliteStockBackend(store)
    pointer = backend.publish_snapshot(
        snap.model_dump_json().encode(), snap.version, "t", FakeClock()
    )
    stock = StockService(
        backend,
        StockSettings(stock_path=store),
        snapshots=FixedSnapshots(snap, pointer.generation),
        clock=FakeClock(),
    )
    stream = generate_stream(snap, streams, EVENTS, seed=9, invalid=5)
    settings = streams.model_copy(update={"events_consume": True})

    async def consume() -> None:
        await publish_all(settings, stream.messages)
        backbone = Backbone(settings, stock, EventMetrics(CollectorRegistry()))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(backbone.run)
            await wait_drained(settings, 60)
            tasks.cancel_scope.cancel()

    asyncio.run(consume())
    backend.close()
    for name, value in event_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PROMISE_STOCK_PATH", str(store))
    monkeypatch.delenv("PROMISE_DATABASE_URL", raising=False)
    return store


def _replay(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    """Run ``promise events replay``; its exit status and JSON report."""
    capsys.readouterr()
    code = main(["events", "replay", *args])
    return code, json.loads(capsys.readouterr().out)


def test_replay_into_a_fresh_store_equals_live_and_a_corrupted_row_drifts(
    live_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No drift after a clean replay; a row changed behind the journal's back is reported."""
    code, report = _replay(capsys, "--into", str(tmp_path / "replayed.sqlite3"))
    assert code == 0
    assert report["drift"] == []
    assert report["rows_compared"] == 80
    assert report["invalid"] == 3  # malformed or subject-mismatched; the unknown node is rejected
    outcomes = report["outcomes"]
    assert outcomes["applied"] + outcomes["stale"] == EVENTS
    assert outcomes["duplicate"] == EVENTS // 10

    with sqlite3.connect(live_store) as conn:
        conn.execute(
            "UPDATE stock_rows SET delta_sum = delta_sum + 7 WHERE node_id = 'S1' AND sku = 'K03'"
        )
    code, report = _replay(capsys, "--from-seq", "1", "--into", str(tmp_path / "again.sqlite3"))
    assert code == 1
    (row,) = report["drift"]
    assert (row["node_id"], row["sku"], row["on_hand_delta"]) == ("S1", "K03", 7)
    assert row["live_on_hand"] - row["replayed_on_hand"] == 7


def test_replay_refuses_a_store_that_is_not_fresh_and_replays_into_postgres(
    live_store: Path, tmp_path: Path, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Replaying into the live store itself is refused; into a fresh PostgreSQL schema: equal."""
    assert main(["events", "replay", "--into", str(live_store)]) == 2
    with pg_schema(pg_dsn) as dsn:
        code, report = _replay(capsys, "--into", dsn)
        replayed = PostgresStockBackend(dsn)
        # The replay went into the schema (a conninfo is a DSN, not a file name).
        assert replayed.versions().stock > 0
        replayed.close()
    assert code == 0
    assert report["drift"] == []
    assert not list(Path.cwd().glob("*search_path*"))
