"""Metrics of the event backbone: what the consumer did, how far behind it is, the outbox.

Registered in the app's registry; with several workers prometheus_client writes them to the
server's multiprocess directory like every other metric, and the gauges report the largest
value of the live processes (each worker consumes and may publish).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["EventMetrics"]


class EventMetrics:
    """Counters and gauges of one process's consumer and publisher."""

    def __init__(self, registry: CollectorRegistry) -> None:
        """Create the metrics in ``registry``."""
        self.consumed = Counter(
            "promise_events_consumed",
            "Inventory events taken from the stream, by outcome (applied, duplicate, stale, "
            "rejected by the authority, dead_lettered: rejected or invalid).",
            ("outcome",),
            registry=registry,
        )
        self.retries = Counter(
            "promise_events_retries",
            "Batches handed back to the stream after a transient failure (store or broker down).",
            registry=registry,
        )
        self.lag = Gauge(
            "promise_events_consumer_lag",
            "Messages of the inventory stream the durable consumer has not acknowledged yet.",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.consumer_up = Gauge(
            "promise_events_consumer_up",
            "Consumers whose last batch (or fetch) succeeded, summed over live processes.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.published = Counter(
            "promise_events_published",
            "Outbox rows the output stream acknowledged, by kind.",
            ("kind",),
            registry=registry,
        )
        self.outbox_depth = Gauge(
            "promise_outbox_depth",
            "Outbox rows waiting to be published (as the lease holder last saw).",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.outbox_age = Gauge(
            "promise_outbox_age_seconds",
            "Age of the oldest outbox row waiting to be published (0 when empty).",
            multiprocess_mode="livemax",
            registry=registry,
        )
