"""``promise events dlq list | retry`` on a real dead-letter stream."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import anyio
import pytest
from prometheus_client import CollectorRegistry

from promise.cli import main
from promise.events.backbone import Backbone
from promise.events.broker import Outgoing
from promise.events.config import EventSettings
from promise.events.messages import event_message
from promise.events.metrics import EventMetrics
from promise.stock import StockService
from promise.stock.config import StockSettings
from promise.stock.schemas import EventType
from promise.stock.sqlite import SqliteStockBackend
from tests.events.events_cases import event_env, publish_all, read_stream, wait_drained
from tests.stock.stock_cases import FakeClock, FixedSnapshots, event, network


def test_dead_letters_are_listed_with_their_reason_and_retried_to_their_subject(
    streams: EventSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An unknown node and a malformed body end in the DLQ; retry puts one back, once."""
    settings = streams.model_copy(update={"events_consume": True})
    prefix = settings.events_subject
    unknown = event("u1", EventType.RECEIPT, 2, 1, node_id="NOPE")
    good = event("g1", EventType.RECEIPT, 2, 1)
    messages = [
        event_message(unknown, prefix),
        Outgoing(subject=f"{prefix}.DC1", data=b"{not json"),
        event_message(good, prefix),
    ]
    store = tmp_path / "stock.sqlite3"
    backend = SqliteStockBackend(store)
    stock = StockService(
        backend,
        StockSettings(stock_path=store),
        snapshots=FixedSnapshots(network()),
        clock=FakeClock(),
    )

    async def consume() -> None:
        await publish_all(settings, messages)
        backbone = Backbone(settings, stock, EventMetrics(CollectorRegistry()))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(backbone.run)
            await wait_drained(settings, 30)
            tasks.cancel_scope.cancel()

    asyncio.run(consume())
    backend.close()
    for name, value in event_env(settings).items():
        monkeypatch.setenv(name, value)

    capsys.readouterr()
    assert main(["events", "dlq", "list"]) == 0
    letters = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    reasons = {letter["original_subject"]: letter["reason"] for letter in letters}
    assert set(reasons) == {f"{prefix}.NOPE", f"{prefix}.DC1"}
    assert "unknown node 'NOPE'" in reasons[f"{prefix}.NOPE"]
    assert reasons[f"{prefix}.DC1"].startswith("invalid event")

    retried = next(x for x in letters if x["original_subject"] == f"{prefix}.NOPE")
    for _ in range(2):  # a second retry of the same letter finds it gone
        code = main(["events", "dlq", "retry", "--seq", str(retried["seq"])])
    assert code == 1
    inventory = asyncio.run(read_stream(settings, settings.events_stream))
    again = [m for m in inventory if m.subject == f"{prefix}.NOPE"]
    assert len(again) == 2  # the original and the one retry
    assert json.loads(again[-1].data)["event_id"] == "u1"
    left = asyncio.run(read_stream(settings, settings.events_dlq_stream))
    assert [m.headers["Promise-Original-Subject"] for m in left] == [f"{prefix}.DC1"]
