"""The outbox publisher: the authority's committed changes onto the output stream, in order.

One publisher at a time drains the outbox, the holder of a lease in the authority that it
renews while it runs (every worker of every host runs one; the others wait to take over).
It reads the oldest rows in commit order, publishes them pipelined on one connection (so the
stream stores them in that order) with each row's ``msg_id`` as ``Nats-Msg-Id``, and deletes
only the rows the stream acknowledged, the prefix up to the first failure. A crash after the
stream stored a row and before its deletion publishes it again on restart: the stream drops it
as a duplicate as long as the restart comes within its de-duplication window
(``events_dedup_window_s``).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence

import anyio
import anyio.to_thread

from promise.events.broker import Broker, BrokerError, Outgoing
from promise.events.config import EventSettings
from promise.events.metrics import EventMetrics
from promise.stock.backend import Clock, to_us, utc_now
from promise.stock.errors import StockUnavailableError
from promise.stock.lease import Lease
from promise.stock.outbox import LEASE_NAME, OutboxEntry, OutboxQueries

__all__ = ["OUTBOX_SEQ", "Publisher"]

log = logging.getLogger(__name__)

OUTBOX_SEQ = "Promise-Outbox-Seq"
STATS_EVERY_S = 1.0
FIRST_BACKOFF_S = 0.25
MAX_BACKOFF_S = 5.0


class Publisher:
    """Drains the authority's outbox to the output stream while it holds the lease."""

    def __init__(
        self,
        broker: Broker,
        outbox: OutboxQueries,
        settings: EventSettings,
        metrics: EventMetrics,
        *,
        clock: Clock = utc_now,
        after_publish: Callable[[Sequence[OutboxEntry]], None] | None = None,
    ) -> None:
        """Publish ``outbox`` with ``broker``.

        ``after_publish`` runs once the stream has acknowledged a batch and before its rows
        are deleted: the crash tests kill the process there.
        """
        self._broker = broker
        self._outbox = outbox
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._after_publish = after_publish
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = anyio.Event()
        self._lease = Lease(outbox.lease, LEASE_NAME, self.holder, settings.outbox_lease_s, clock)
        self.published = 0

    def wake(self) -> None:
        """Look at the outbox now (a change was just committed by this process)."""
        self._wake.set()

    def subject(self, entry: OutboxEntry) -> str:
        """The subject of an outbox row: <events_out_subject>.<kind>.<node_id>."""
        return f"{self._settings.events_out_subject}.{entry.kind}.{entry.node_id}"

    async def run(self) -> None:
        """Publish for as long as the task lives."""
        s = self._settings
        backoff = 0.0
        next_stats = 0.0
        ready = False
        while True:
            try:
                if not ready:
                    await self._broker.ensure_stream(
                        s.events_out_stream,
                        [f"{s.events_out_subject}.>"],
                        dedup_window_s=s.events_dedup_window_s,
                    )
                    ready = True
                if not await self._lease.hold():
                    self._metrics.outbox_depth.set(0)
                    self._metrics.outbox_age.set(0)
                    await anyio.sleep(s.outbox_lease_s / 3)
                    continue
                if time.monotonic() >= next_stats:
                    next_stats = time.monotonic() + STATS_EVERY_S
                    await self._stats()
                count = await self.drain_once()
                backoff = 0.0
                if count == 0:
                    with anyio.move_on_after(s.outbox_poll_ms / 1000):
                        await self._wake.wait()
                    self._wake = anyio.Event()
            except (BrokerError, StockUnavailableError) as exc:
                backoff = min(MAX_BACKOFF_S, max(FIRST_BACKOFF_S, backoff * 2))
                log.warning("outbox publisher failing; retrying", extra={"reason": str(exc)})
                await anyio.sleep(backoff)

    async def _stats(self) -> None:
        """Outbox depth and the age of its oldest row, for the metrics."""
        stats = await anyio.to_thread.run_sync(self._outbox.outbox_stats)
        self._metrics.outbox_depth.set(stats.depth)
        age = 0.0
        if stats.oldest_at is not None:
            age = max(0.0, (to_us(self._clock()) - stats.oldest_at) / 1_000_000)
        self._metrics.outbox_age.set(age)

    async def drain_once(self) -> int:
        """Publish the oldest batch of rows; how many were published and deleted."""
        entries = await anyio.to_thread.run_sync(
            self._outbox.outbox_pending, self._settings.outbox_batch
        )
        if not entries:
            return 0
        messages = [
            Outgoing(
                subject=self.subject(entry),
                data=entry.body,
                msg_id=entry.msg_id,
                headers={OUTBOX_SEQ: str(entry.outbox_id)},
            )
            for entry in entries
        ]
        # Within the lease: a publisher that lost it mid-batch only repeats msg ids.
        results = await self._broker.publish_many(
            messages, timeout_s=self._settings.outbox_lease_s / 2
        )
        done: list[OutboxEntry] = []
        failure: BrokerError | None = None
        for entry, result in zip(entries, results, strict=True):
            if isinstance(result, BrokerError):
                failure = result
                break
            done.append(entry)
        if done:
            if self._after_publish is not None:
                self._after_publish(done)
            await anyio.to_thread.run_sync(
                self._outbox.outbox_done, [entry.outbox_id for entry in done]
            )
            for entry in done:
                self._metrics.published.labels(entry.kind).inc()
            self.published += len(done)
        if failure is not None:
            raise failure
        return len(done)
