"""A publisher process that kills itself after the stream stored a batch, before forgetting it.

``python -m tests.events.crash_publisher STORE KILL_AT`` drains the outbox of the SQLite store
STORE to the output stream of the ``PROMISE_*`` event settings; once the stream has
acknowledged batch number KILL_AT it SIGKILLs its own process, so those rows are published
but still in the outbox: the window between publish and commit of the deletion, hit every time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry

from promise.events.config import EventSettings
from promise.events.jetstream import connect
from promise.events.metrics import EventMetrics
from promise.events.publisher import Publisher
from promise.stock.outbox import OutboxEntry
from promise.stock.sqlite import SqliteStockBackend


async def main(store: Path, kill_at: int) -> None:
    """Publish until batch ``kill_at`` is stored, then die without deleting it."""
    settings = EventSettings.from_env()
    backend = SqliteStockBackend(store)
    broker = await connect(settings.nats_url, name="crash-publisher")
    batches = 0

    def die_after(_entries: Sequence[OutboxEntry]) -> None:
        nonlocal batches
        batches += 1
        if batches == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    publisher = Publisher(
        broker, backend, settings, EventMetrics(CollectorRegistry()), after_publish=die_after
    )
    await broker.ensure_stream(
        settings.events_out_stream,
        [f"{settings.events_out_subject}.>"],
        dedup_window_s=settings.events_dedup_window_s,
    )
    while await publisher.drain_once():
        pass


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
