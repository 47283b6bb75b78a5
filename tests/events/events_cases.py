"""Streams of their own per test, a network with many rows, and inventory event streams.

Every test gets its own streams, subjects and durable consumer on the local NATS server
(``PROMISE_TEST_NATS_URL``, default 127.0.0.1:4222), deleted afterwards. Without a server
the tests skip with instructions, unless ``PROMISE_REQUIRE_NATS=1`` makes that a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import random
import socket
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlparse

import nats
import nats.js.errors

from models import CatalogItem, Snapshot
from promise.events.broker import Outgoing, Received
from promise.events.config import EventSettings
from promise.events.jetstream import connect
from promise.events.messages import event_message
from promise.stock.backend import Key
from promise.stock.events import CountState
from promise.stock.holds import StockRules
from promise.stock.schemas import EventType, InventoryEvent
from promise.stock.sql import StockBackend
from promise.stock.sqlite import SqliteStockBackend
from tests.launcher import ServerProcess
from tests.services import unreachable
from tests.solver.network_cases import MONDAY_10AM, dc, snapshot, stock, store

__all__ = [
    "REQUIRE_NATS_ENV",
    "EventStream",
    "consume_command",
    "consumer_lag",
    "event_env",
    "event_state",
    "generate_stream",
    "nats_url",
    "publish_all",
    "read_stream",
    "stream_settings",
    "wait_drained",
    "wide_network",
]

REQUIRE_NATS_ENV = "PROMISE_REQUIRE_NATS"
TEST_NATS_ENV = "PROMISE_TEST_NATS_URL"
DEFAULT_NATS = "nats://127.0.0.1:4222"
ROOT = Path(__file__).resolve().parents[2]
SKUS = tuple(f"K{i:02d}" for i in range(20))


def nats_url() -> str:
    """The test NATS server's URL, or skip (fail when NATS is required) if it is unreachable."""
    url = os.environ.get(TEST_NATS_ENV, DEFAULT_NATS)
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 4222), 2):
            pass
    except OSError as exc:
        message = (
            f"NATS is unreachable at {url} ({exc}). Start `nats-server -a 127.0.0.1 -p 4222 -js "
            f"-sd DIR` or point {TEST_NATS_ENV} at one; {REQUIRE_NATS_ENV}=1 makes this a failure."
        )
        unreachable(message, REQUIRE_NATS_ENV)
    return url


def stream_settings(url: str, **overrides: object) -> EventSettings:
    """Event settings naming streams, subjects and a durable consumer of this test only."""
    return EventSettings.namespaced(url, "t", **overrides)


def event_env(settings: EventSettings) -> dict[str, str]:
    """The environment that gives a child process these event settings."""
    return settings.to_env()


async def _drop(settings: EventSettings) -> None:
    """Delete the streams of ``settings``."""
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    for name in (settings.events_stream, settings.events_dlq_stream, settings.events_out_stream):
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(name)
    await nc.close()


@contextlib.contextmanager
def dropped_after(settings: EventSettings) -> Iterator[EventSettings]:
    """Use ``settings``, then delete its streams."""
    try:
        yield settings
    finally:
        asyncio.run(_drop(settings))


def wide_network(nodes: int = 4) -> Snapshot:
    """Half DCs, half stores, each stocking 20 SKUs (K00..K19): 20 × ``nodes`` rows."""
    base = snapshot([dc("DC0")], [stock("DC0", "A", 1)])
    node_list = [dc(f"DC{i}") if i % 2 == 0 else store(f"S{i}") for i in range(nodes)]
    rows = [
        stock(node.node_id, sku, 20 + 3 * i) for node in node_list for i, sku in enumerate(SKUS)
    ]
    items = tuple(CatalogItem(sku=sku, weight_g=500, list_price=2000) for sku in SKUS)
    return Snapshot.model_validate(
        {**base.model_dump(), "nodes": node_list, "inventory": rows, "items": items}
    )


@dataclasses.dataclass(frozen=True)
class EventStream:
    """A generated stream: what to publish, in order, and what it should leave behind."""

    messages: tuple[Outgoing, ...]  # shuffled, with duplicates and invalid messages
    valid: tuple[InventoryEvent, ...]  # each valid event once, in per-row seq order
    invalid: int  # messages that must end in the dead-letter stream
    duplicates: int


def generate_stream(
    snap: Snapshot,
    settings: EventSettings,
    events: int,
    *,
    seed: int,
    duplicate_rate: float = 0.10,
    invalid: int = 10,
) -> EventStream:
    """``events`` valid events over the snapshot's rows, shuffled, with copies and bad ones.

    Per row: receipts, sales, adjustments and, now and then, a count; seq 1, 2, ... in the
    row's own order. The published order is a global shuffle (so each row's order is shuffled
    too); ``duplicate_rate`` of the events are published a second time somewhere else.
    ``invalid`` messages can never apply: an unknown node, malformed JSON, a zero sale, a
    subject naming another node (in turn).
    """
    rng = random.Random(seed)
    keys: list[Key] = [(row.node_id, row.sku) for row in snap.inventory]
    seqs = dict.fromkeys(keys, 0)
    valid: list[InventoryEvent] = []
    for n in range(events):
        node, sku = rng.choice(keys)
        seqs[(node, sku)] += 1
        roll = rng.random()
        if roll < 0.05:
            kind, quantity = EventType.COUNT, rng.randint(0, 60)
        elif roll < 0.45:
            kind, quantity = EventType.RECEIPT, rng.randint(1, 9)
        elif roll < 0.85:
            kind, quantity = EventType.SALE, rng.randint(1, 5)
        else:
            kind, quantity = EventType.ADJUSTMENT, rng.choice([-3, -1, 1, 2])
        valid.append(
            InventoryEvent(
                event_id=f"e{seed}-{n}",
                node_id=node,
                sku=sku,
                type=kind,
                quantity=quantity,
                seq=seqs[(node, sku)],
                occurred_at=MONDAY_10AM,
            )
        )
    prefix = settings.events_subject
    messages = [event_message(event, prefix) for event in valid]
    duplicates = int(events * duplicate_rate)
    messages += [event_message(event, prefix) for event in rng.sample(valid, duplicates)]
    bad: list[Outgoing] = []
    for i in range(invalid):
        kind_of_bad = i % 4
        if kind_of_bad == 0:
            unknown = valid[0].model_copy(update={"event_id": f"bad{seed}-{i}", "node_id": "NOPE"})
            bad.append(event_message(unknown, prefix))
        elif kind_of_bad == 1:
            bad.append(Outgoing(subject=f"{prefix}.DC0", data=b'{"event_id": "broken'))
        elif kind_of_bad == 2:
            body = {**json.loads(event_message(valid[0], prefix).data), "quantity": 0}
            body["event_id"] = f"bad{seed}-{i}"
            body["type"] = "sale"
            bad.append(
                Outgoing(subject=f"{prefix}.{valid[0].node_id}", data=json.dumps(body).encode())
            )
        else:
            event = valid[0].model_copy(update={"event_id": f"bad{seed}-{i}"})
            bad.append(
                Outgoing(subject=f"{prefix}.ELSEWHERE", data=event_message(event, prefix).data)
            )
    messages += bad
    rng.shuffle(messages)
    ordered = sorted(valid, key=lambda e: (e.node_id, e.sku, e.seq))
    return EventStream(tuple(messages), tuple(ordered), invalid, duplicates)


async def publish_all(
    settings: EventSettings, messages: Sequence[Outgoing], chunk: int = 2000
) -> None:
    """Publish ``messages`` in order to the inventory stream (created if missing)."""
    broker = await connect(settings.nats_url, name="test-producer")
    try:
        await broker.ensure_stream(settings.events_stream, [f"{settings.events_subject}.>"])
        for start in range(0, len(messages), chunk):
            results = await broker.publish_many(messages[start : start + chunk], timeout_s=30)
            failed = [r for r in results if isinstance(r, Exception)]
            assert not failed, failed[:3]
    finally:
        await broker.close()


async def read_stream(settings: EventSettings, stream: str) -> list[Received]:
    """Every message of ``stream`` now."""
    broker = await connect(settings.nats_url, name="test-reader")
    try:
        return [message async for message in broker.read(stream)]
    finally:
        await broker.close()


def event_state(backend: StockBackend) -> dict[Key, tuple[CountState, tuple[tuple[int, int], ...]]]:
    """What events made of every row: its count state and open event lots."""
    return {
        key: (overlay.count, tuple(sorted(overlay.lots)))
        for key, overlay in backend.changes(0).rows.items()
        if overlay.count != CountState() or overlay.lots
    }


def clean_apply(snap: Snapshot, events: Sequence[InventoryEvent], path: Path) -> SqliteStockBackend:
    """A fresh store with ``events`` applied once each, in order, in batches."""
    backend = SqliteStockBackend(path)
    rules = StockRules(snap)
    for start in range(0, len(events), 1000):
        backend.apply_events(events[start : start + 1000], rules.unknown, lambda: MONDAY_10AM)
    return backend


def consume_command(snapshot_file: Path, *options: str) -> list[str]:
    """``promise consume`` of this interpreter on ``snapshot_file``."""
    import sys  # noqa: PLC0415

    return [
        sys.executable,
        "-m",
        "promise.cli",
        "consume",
        "--snapshot",
        str(snapshot_file),
        *options,
    ]


def server(root: Path, snapshot_file: Path, env: dict[str, str], workers: int = 1) -> ServerProcess:
    """``promise serve`` with its own data directory and ``env``."""
    return ServerProcess(
        data_dir=root / f"server-{uuid.uuid4().hex[:8]}",
        workers=workers,
        snapshot=snapshot_file,
        env={"PROMISE_LOG_LEVEL": "WARNING", **env},
    )


async def consumer_lag(settings: EventSettings) -> int | None:
    """Messages the durable consumer has not acknowledged (None before it exists)."""
    nc = await nats.connect(settings.nats_url)
    try:
        info = await nc.jetstream().consumer_info(settings.events_stream, settings.events_durable)
    except nats.js.errors.NotFoundError:
        return None
    finally:
        await nc.close()
    return int(info.num_pending or 0) + int(info.num_ack_pending or 0)


async def wait_drained(settings: EventSettings, timeout_s: float) -> None:
    """Wait until the durable consumer exists and has acknowledged every message."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if await consumer_lag(settings) == 0:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"the consumer still lags by {await consumer_lag(settings)}")
