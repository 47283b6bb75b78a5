"""Inventory events from NATS JetStream to the authority: throughput and latency, per store.

For each store (embedded SQLite, PostgreSQL) a fresh stream and a fresh store get the demo
network, and one ``promise consume`` process (publishing its outbox, as a deployment would)
consumes:

- ``max_events_per_s``: with the consumer running, N events are published as fast as the
  producer can; the rate is N over the time from the first publish until the durable consumer
  has acknowledged everything (the consumer's sustained rate against a faster producer);
- ``p50_ms_at_1000`` / ``p99_ms_at_1000``: events published at 1,000 per second for a few
  seconds; each event's latency is from just before its publish to its ``recorded_at`` in the
  journal (read by the applying transaction after its row locks, just before the commit);
- ``lost``: published valid events missing from the journal; ``applied_twice``: the
  consumer's audited applied-or-stale outcomes beyond one per distinct event (a redelivery
  applied again would show here).

``python -m bench.events --json out/events.json [--quick]``; ``--quick`` runs in well under
two minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import pathlib
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import nats
import nats.js.errors

from bench._common import machine, percentiles, write_outputs
from models import Snapshot
from promise.events.broker import Outgoing
from promise.events.config import EventSettings
from promise.events.jetstream import connect
from promise.events.messages import event_message
from promise.stock.backend import utc_now
from promise.stock.config import StockSettings
from promise.stock.connect import open_backend
from promise.stock.schemas import EventType, InventoryEvent
from promise.stock.sql import StockBackend
from tests.pg_schema import temporary_schema

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
ROWS = 2000
RATE = 1000
TICK_S = 0.01


def _settings(url: str, *, memory: bool) -> EventSettings:
    """Streams and a consumer of this run only."""
    return EventSettings.namespaced(
        url, "bench", events_stream_memory=memory, events_consume=True, events_publish=True
    )


class Events:
    """Events over the network's rows, seq per row in order (the consumer's common case)."""

    def __init__(self, snapshot: Snapshot, seed: int) -> None:
        """Pick the rows."""
        rng = random.Random(seed)
        rows = [(r.node_id, r.sku) for r in snapshot.inventory]
        self._rows = rng.sample(rows, min(ROWS, len(rows)))
        self._seq = dict.fromkeys(self._rows, 0)
        self._rng = rng
        self._n = 0

    def next(self) -> InventoryEvent:
        """One more receipt, sale or adjustment."""
        node, sku = self._rng.choice(self._rows)
        self._seq[(node, sku)] += 1
        self._n += 1
        kind = self._rng.choice([EventType.RECEIPT, EventType.SALE, EventType.ADJUSTMENT])
        quantity = 1 if kind is not EventType.RECEIPT else self._rng.randint(1, 5)
        return InventoryEvent(
            event_id=f"b{self._n}",
            node_id=node,
            sku=sku,
            type=kind,
            quantity=quantity,
            seq=self._seq[(node, sku)],
            occurred_at=utc_now(),
        )


async def _publish(settings: EventSettings, messages: list[Outgoing]) -> None:
    """Publish ``messages`` to the inventory stream (created if missing)."""
    broker = await connect(settings.nats_url, name="bench-producer")
    try:
        await broker.ensure_stream(
            settings.events_stream,
            [f"{settings.events_subject}.>"],
            memory=settings.events_stream_memory,
        )
        for start in range(0, len(messages), 2000):
            results = await broker.publish_many(messages[start : start + 2000], timeout_s=60)
            bad = [r for r in results if isinstance(r, Exception)]
            if bad:
                raise RuntimeError(f"publish failed: {bad[0]}")
    finally:
        await broker.close()


async def _wait_drained(settings: EventSettings, timeout_s: float) -> float:
    """Wait until everything is acknowledged; the wall-clock time it was first seen so."""
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                info = await js.consumer_info(settings.events_stream, settings.events_durable)
                if not info.num_pending and not info.num_ack_pending:
                    return time.time()
            await asyncio.sleep(0.02)
    finally:
        await nc.close()
    raise TimeoutError("the consumer did not catch up")


async def _drop(settings: EventSettings) -> None:
    """Delete the run's streams."""
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    for name in (settings.events_stream, settings.events_dlq_stream, settings.events_out_stream):
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(name)
    await nc.close()


def _journal(backend: StockBackend) -> dict[str, int]:
    """event_id → recorded_at (µs) of every recorded event."""

    def work(cur: Any) -> dict[str, int]:
        cur.execute("SELECT event_id, recorded_at FROM stock_events")
        return {str(e): int(at) for e, at in cur.fetchall()}

    return backend._read(work)


def _recorded_by_consumer(backend: StockBackend, durable: str) -> int:
    """Applied and stale outcomes the consumer audited (one per event if nothing repeats)."""
    entries = backend.audit_trail(principal=f"consumer:{durable}", limit=10_000_000)
    return sum(
        int(entry.detail["outcomes"].get("applied", 0))
        + int(entry.detail["outcomes"].get("stale", 0))
        for entry in entries
    )


@contextlib.contextmanager
def _store(kind: str, dsn: str, tmp: pathlib.Path) -> Iterator[dict[str, str]]:
    """The environment naming a fresh store of ``kind``."""
    if kind == "embedded":
        yield {"PROMISE_STOCK_PATH": str(tmp / f"stock-{uuid.uuid4().hex[:6]}.sqlite3")}
        return
    with temporary_schema(dsn, prefix="bench_events") as schema_dsn:
        yield {"PROMISE_DATABASE_URL": schema_dsn}


def run_store(
    kind: str, *, url: str, dsn: str, quick: bool, snapshot: Snapshot, memory: bool = False
) -> dict[str, Any]:
    """Throughput and latency of one store."""
    burst = 10_000 if quick else 30_000
    seconds = 5 if quick else 15
    settings = _settings(url, memory=memory)
    events = Events(snapshot, seed=1)
    with tempfile.TemporaryDirectory() as tmp_dir, _store(kind, dsn, pathlib.Path(tmp_dir)) as env:
        tmp = pathlib.Path(tmp_dir)
        store_env = {**os.environ, **settings.to_env(), **env, "PROMISE_LOG_LEVEL": "WARNING"}
        stock = StockSettings.from_env(store_env, data_dir=tmp)
        backend = open_backend(stock)
        body = snapshot.model_dump_json().encode()
        backend.publish_snapshot(body, snapshot.version, "bench", utc_now)
        first = [events.next() for _ in range(burst)]
        burst_messages = [event_message(e, settings.events_subject) for e in first]
        # A warm-up event makes the streams and the durable consumer before the clock starts.
        warm = events.next()
        asyncio.run(_publish(settings, [event_message(warm, settings.events_subject)]))
        log = (tmp / "consume.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "promise.cli", "consume", "--data-dir", str(tmp)],
            env=store_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            asyncio.run(_wait_drained(settings, 600))
            # The producer publishes the burst as fast as it can while the consumer runs: the
            # rate is what the consumer sustains against a producer faster than it.
            start_at = time.time()
            asyncio.run(_publish(settings, burst_messages))
            done_at = asyncio.run(_wait_drained(settings, 600))
            max_rate = burst / max(1e-6, done_at - start_at)

            published: dict[str, float] = {}

            async def paced() -> None:
                broker = await connect(settings.nats_url, name="bench-paced")
                try:
                    begin = time.monotonic()
                    sent = 0
                    total = RATE * seconds
                    while sent < total:
                        due = min(total, int((time.monotonic() - begin) * RATE) + 1)
                        batch = [events.next() for _ in range(due - sent)]
                        for event in batch:
                            published[event.event_id] = time.time()
                            await broker.publish(event_message(event, settings.events_subject))
                        sent = due
                        await asyncio.sleep(TICK_S)
                finally:
                    await broker.close()
                await _wait_drained(settings, 120)

            asyncio.run(paced())
            journal = _journal(backend)
            latencies = [
                max(0.0, journal[eid] / 1e3 - at * 1e3)
                for eid, at in published.items()
                if eid in journal
            ]
            valid = {e.event_id for e in first} | set(published) | {warm.event_id}
            lost = len(valid - journal.keys())
            applied_twice = _recorded_by_consumer(backend, settings.events_durable) - len(
                valid & journal.keys()
            )
            outbox_depth = backend.outbox_stats().depth if hasattr(backend, "outbox_stats") else -1
        finally:
            process.terminate()
            process.wait(30)
            log.close()
            backend.close()
            asyncio.run(_drop(settings))
    stats = percentiles(latencies)
    return {
        "events_burst": burst,
        "max_events_per_s": round(max_rate, 1),
        "paced_events": len(published),
        "paced_rate_per_s": RATE,
        "p50_ms_at_1000": stats["p50_ms"],
        "p99_ms_at_1000": stats["p99_ms"],
        "max_ms_at_1000": round(max(latencies), 2),
        "lost": lost,
        "applied_twice": applied_twice,
        "outbox_depth_after": outbox_depth,
        "publish": True,
        "inventory_stream": "memory" if memory else "file",
    }


def _markdown(payload: dict[str, Any]) -> str:
    """The report as a Markdown table."""
    lines = [
        "# Inventory events: stream → authority",
        "",
        "| store | max events/s | p50 ms @1000/s | p99 ms @1000/s | lost | applied twice |",
        "|---|---|---|---|---|---|",
    ]
    for kind in ("embedded", "postgres", "embedded_memory", "postgres_memory"):
        r = payload.get(kind)
        if isinstance(r, dict):
            lines.append(
                f"| {kind} | {r['max_events_per_s']} | {r['p50_ms_at_1000']} | "
                f"{r['p99_ms_at_1000']} | {r['lost']} | {r['applied_twice']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    """Run both stores and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=pathlib.Path, required=True)
    parser.add_argument("--quick", action="store_true", help="10,000 events and 5 s paced")
    parser.add_argument(
        "--nats", default=os.environ.get("PROMISE_NATS_URL", "nats://127.0.0.1:4222")
    )
    parser.add_argument("--dsn", default=os.environ.get("PROMISE_TEST_DATABASE_URL", DEFAULT_DSN))
    parser.add_argument("--only", choices=["embedded", "postgres"], help="one store only")
    parser.add_argument(
        "--memory-stream",
        action="store_true",
        help="also measure with the inventory stream in the broker's memory (as *_memory)",
    )
    args = parser.parse_args()
    import scenarios  # noqa: PLC0415 - the demo network, built once

    snapshot = scenarios.demo_snapshot()
    payload: dict[str, Any] = {
        "benchmark": "events",
        "quick": args.quick,
        "at": dt.datetime.now(dt.UTC).isoformat(),
        "machine": machine(),
        "targets": {
            "embedded_max_events_per_s": 5000,
            "postgres_max_events_per_s": 2000,
            "p99_ms_at_1000": 50,
        },
    }
    for kind in ("embedded", "postgres"):
        if args.only and args.only != kind:
            continue
        payload[kind] = run_store(
            kind, url=args.nats, dsn=args.dsn, quick=args.quick, snapshot=snapshot
        )
        sys.stderr.write(f"{kind}: {payload[kind]}\n")
        if args.memory_stream:
            payload[f"{kind}_memory"] = run_store(
                kind, url=args.nats, dsn=args.dsn, quick=args.quick, snapshot=snapshot, memory=True
            )
            sys.stderr.write(f"{kind}_memory: {payload[f'{kind}_memory']}\n")
    write_outputs(args.json, payload, _markdown(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
