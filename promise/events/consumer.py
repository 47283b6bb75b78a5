"""The inventory-event consumer: the stream's events through the same path as the HTTP batch.

Each round takes up to ``events_batch`` messages from the durable consumer and applies the
valid ones as one batch through :meth:`StockService.apply_events` — the idempotent path of
``POST /v1/inventory/events`` (event_id journal, per-(node, SKU) seq), audited under
``consumer:<durable>`` — and acknowledges every message only after that transaction has
committed. So:

- a crash before the commit leaves the messages unacknowledged: they are delivered again and
  applied then; a crash after it, before the acknowledgements, delivers them again and the
  journal answers ``duplicate``: nothing applies twice;
- a message that can never apply (not a valid event, a subject naming another node, or an
  event the authority rejects: unknown node or SKU, unknown reservation, a lot of another row)
  is published to the dead-letter stream with the reason in its headers, then acknowledged;
- a transient failure (the stock store or the broker down, the snapshot moving under every
  try) acknowledges nothing: the batch is handed back with a delay that doubles up to
  ``events_max_backoff_s`` while failures go on;
- any other failure is handed back the same way, and a message that keeps failing for
  ``events_poison_deliveries`` deliveries is dead-lettered with the error as its reason.

Several consumers (workers, hosts) share one durable consumer: the broker hands each message
to one of them, and the journal makes a redelivery to another harmless.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable

import anyio

from promise.errors import NotReadyError
from promise.events.broker import Broker, BrokerError, Delivery, Subscription
from promise.events.config import EventSettings
from promise.events.messages import dead_letter, parse_event
from promise.events.metrics import EventMetrics
from promise.stock import StockService, StockUnavailableError
from promise.stock.errors import SnapshotMovedError
from promise.stock.schemas import EventBatch, EventOutcome, InventoryEvent

__all__ = ["TRANSIENT", "Consumer", "ConsumerHealth"]

log = logging.getLogger(__name__)

# Failures that say nothing about the events: try the same events again later.
TRANSIENT = (StockUnavailableError, SnapshotMovedError, BrokerError, NotReadyError)
LAG_EVERY_S = 1.0
FIRST_BACKOFF_S = 0.25


@dataclasses.dataclass
class ConsumerHealth:
    """What ``/readyz`` says of the consumer."""

    state: str = "starting"  # starting, running, failing
    detail: str = ""
    lag: int | None = None
    last_batch_at: dt.datetime | None = None
    batches: int = 0


class Consumer:
    """Applies the inventory stream's events to the stock authority."""

    def __init__(
        self,
        broker: Broker,
        stock: StockService,
        settings: EventSettings,
        metrics: EventMetrics,
    ) -> None:
        """Consume with ``broker`` into ``stock``."""
        self._broker = broker
        self._stock = stock
        self._settings = settings
        self._metrics = metrics
        self._batch = min(settings.events_batch, stock.settings.max_event_batch)
        self.actor = f"consumer:{settings.events_durable}"
        self.health = ConsumerHealth()
        self._backoff = 0.0
        # Called after each committed batch (the publisher of this process looks at once).
        self.on_applied: Callable[[], None] | None = None

    async def _subscribe(self) -> Subscription:
        """Make sure the streams exist and join the durable consumer (retrying until it can)."""
        s = self._settings
        while True:
            try:
                await self._broker.ensure_stream(
                    s.events_stream, [f"{s.events_subject}.>"], memory=s.events_stream_memory
                )
                await self._broker.ensure_stream(
                    s.events_dlq_stream,
                    [f"{s.events_dlq_subject}.>"],
                    dedup_window_s=s.events_dedup_window_s,
                )
                return await self._broker.subscribe(
                    s.events_stream,
                    s.events_durable,
                    f"{s.events_subject}.>",
                    ack_wait_s=s.events_ack_wait_s,
                )
            except BrokerError as exc:
                await self._failed(exc)

    async def run(self) -> None:
        """Consume for as long as the task lives."""
        sub = await self._subscribe()
        log.info(
            "consuming inventory events",
            extra={
                "stream": self._settings.events_stream,
                "durable": self._settings.events_durable,
            },
        )
        self._set_state("running", "")
        next_lag = 0.0
        wait = self._settings.events_fetch_wait_ms / 1000
        while True:
            if time.monotonic() >= next_lag:
                next_lag = time.monotonic() + LAG_EVERY_S
                await self._refresh_lag(sub)
            try:
                deliveries = await sub.fetch(self._batch, wait)
            except BrokerError as exc:
                await self._failed(exc)
                continue
            if deliveries:
                await self.handle(deliveries)

    async def _refresh_lag(self, sub: Subscription) -> None:
        """Read the consumer's lag for the metric and the health report."""
        try:
            lag = await sub.lag()
        except BrokerError:
            return  # the fetch says so too; the lag keeps its last value
        self.health.lag = lag
        self._metrics.lag.set(lag)

    async def handle(self, deliveries: list[Delivery]) -> None:
        """Apply one fetched batch, dead-letter what can never apply, acknowledge after commit."""
        try:
            await self._apply(deliveries)
        except TRANSIENT as exc:
            await self._hand_back(deliveries, exc)
            return
        except Exception as exc:
            log.exception("applying a batch of inventory events failed")
            await self._hand_back(deliveries, exc, poison=True)
            return
        self._backoff = 0.0
        log.debug("inventory events applied", extra={"events": len(deliveries)})
        if self.on_applied is not None:
            self.on_applied()
        self.health.batches += 1
        self.health.last_batch_at = dt.datetime.now(dt.UTC)
        self._set_state("running", "")

    async def _apply(self, deliveries: list[Delivery]) -> None:
        """The batch's events in one transaction; dead letters published; then every ack."""
        s = self._settings
        valid: list[tuple[Delivery, InventoryEvent]] = []
        dead: list[tuple[Delivery, str]] = []
        for delivery in deliveries:
            parsed = parse_event(delivery.message, s.events_subject)
            if isinstance(parsed, str):
                dead.append((delivery, parsed))
            else:
                valid.append((delivery, parsed))
        done: list[Delivery] = []
        if valid:
            answer = await self._stock.apply_events(
                EventBatch(events=tuple(event for _, event in valid)), actor=self.actor
            )
            for (delivery, _), result in zip(valid, answer.results, strict=True):
                self._metrics.consumed.labels(result.outcome.value).inc()
                if result.outcome is EventOutcome.REJECTED:
                    dead.append((delivery, f"rejected: {result.reason}"))
                else:
                    done.append(delivery)
        if dead:
            await self._dead_letter(dead)
            done.extend(delivery for delivery, _ in dead)
        for delivery in done:
            await delivery.ack()

    async def _dead_letter(self, dead: list[tuple[Delivery, str]]) -> None:
        """Publish the dead letters and wait until the dead-letter stream has every one."""
        s = self._settings
        letters = [
            dead_letter(
                delivery.message,
                reason,
                stream=s.events_stream,
                dlq_prefix=s.events_dlq_subject,
                prefix=s.events_subject,
            )
            for delivery, reason in dead
        ]
        results = await self._broker.publish_many(letters)
        for result in results:
            if isinstance(result, BrokerError):
                raise result
        self._metrics.consumed.labels("dead_lettered").inc(len(dead))
        for delivery, reason in dead:
            log.warning(
                "inventory event dead-lettered",
                extra={
                    "subject": delivery.message.subject,
                    "stream_seq": delivery.message.stream_seq,
                    "reason": reason,
                },
            )

    async def _hand_back(
        self, deliveries: list[Delivery], exc: BaseException, *, poison: bool = False
    ) -> None:
        """Give a failed batch back to the stream after a back-off; dead-letter poison."""
        keep = deliveries
        if poison:
            limit = self._settings.events_poison_deliveries
            spent = [d for d in deliveries if d.message.deliveries >= limit]
            if spent:
                reason = f"failed {limit} times: {type(exc).__name__}: {exc}"
                try:
                    await self._dead_letter([(d, reason) for d in spent])
                    for delivery in spent:
                        await delivery.ack()
                    keep = [d for d in deliveries if d not in spent]
                except BrokerError:
                    pass  # handed back with the rest
        self._metrics.retries.inc()
        delay = self._next_backoff()
        for delivery in keep:
            try:
                await delivery.nak(delay)
            except BrokerError:
                break  # not handed back: the ack wait brings them back instead
        await self._failed(exc, delay)

    def _next_backoff(self) -> float:
        """The next wait: doubling from FIRST_BACKOFF_S up to the configured maximum."""
        self._backoff = min(
            self._settings.events_max_backoff_s, max(FIRST_BACKOFF_S, self._backoff * 2)
        )
        return self._backoff

    async def _failed(self, exc: BaseException, delay: float | None = None) -> None:
        """Record a failure, log it, and wait before the next try."""
        wait = self._next_backoff() if delay is None else delay
        detail = f"{type(exc).__name__}: {exc}"
        if self.health.state != "failing":
            log.error("inventory consumer failing; retrying", extra={"reason": detail})
        self._set_state("failing", detail)
        await anyio.sleep(wait)

    def _set_state(self, state: str, detail: str) -> None:
        """Keep the health report and the up gauge in step."""
        self.health.state = state
        self.health.detail = detail
        self._metrics.consumer_up.set(1 if state == "running" else 0)
