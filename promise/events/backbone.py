"""One process's share of the backbone: a broker connection, the consumer, the publisher.

``promise serve`` runs one per worker (when ``PROMISE_EVENTS_CONSUME`` or
``PROMISE_EVENTS_PUBLISH`` is on) and ``promise consume`` runs one on its own. Connecting is
retried with back-off for as long as the process lives: a broker that is away at start-up only
delays the backbone, it never stops the service.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Sequence

import anyio

from promise.events.broker import Broker, BrokerError
from promise.events.config import EventSettings
from promise.events.consumer import Consumer, ConsumerHealth
from promise.events.jetstream import connect
from promise.events.metrics import EventMetrics
from promise.events.publisher import Publisher
from promise.stock import StockService
from promise.stock.outbox import OutboxEntry, OutboxQueries

__all__ = ["Backbone"]

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 0.25
MAX_BACKOFF_S = 5.0


class Backbone:
    """Consumes and publishes for one process, as the settings say."""

    def __init__(
        self,
        settings: EventSettings,
        stock: StockService,
        metrics: EventMetrics,
        *,
        connect_broker: Callable[[], Awaitable[Broker]] | None = None,
        after_publish: Callable[[Sequence[OutboxEntry]], None] | None = None,
    ) -> None:
        """Run what ``settings`` turn on against ``stock``."""
        self.settings = settings
        self._stock = stock
        self._metrics = metrics
        self._connect = connect_broker or (
            lambda: connect(settings.nats_url, name=f"promise-{os.getpid()}")
        )
        self._after_publish = after_publish
        self.consumer: Consumer | None = None
        self.publisher: Publisher | None = None
        self.health = ConsumerHealth(state="connecting")

    async def _broker(self) -> Broker:
        """A connected broker, trying until one is."""
        backoff = 0.0
        while True:
            try:
                return await self._connect()
            except BrokerError as exc:
                backoff = min(MAX_BACKOFF_S, max(FIRST_BACKOFF_S, backoff * 2))
                self.health.detail = str(exc)
                log.error("event broker unreachable; retrying", extra={"reason": str(exc)})
                await anyio.sleep(backoff)

    async def run(self) -> None:
        """Connect, then consume and publish until cancelled."""
        broker = await self._broker()
        try:
            async with anyio.create_task_group() as tasks:
                if self.settings.events_publish:
                    outbox = self._stock.backend
                    if not isinstance(outbox, OutboxQueries):
                        raise TypeError(f"{type(outbox).__name__} keeps no outbox")
                    self.publisher = Publisher(
                        broker,
                        outbox,
                        self.settings,
                        self._metrics,
                        clock=self._stock.clock,
                        after_publish=self._after_publish,
                    )
                    tasks.start_soon(self.publisher.run)
                if self.settings.events_consume:
                    self.consumer = Consumer(broker, self._stock, self.settings, self._metrics)
                    if self.publisher is not None:
                        self.consumer.on_applied = self.publisher.wake
                    self.health = self.consumer.health
                    tasks.start_soon(self.consumer.run)
        finally:
            with anyio.CancelScope(shield=True):
                await broker.close()
