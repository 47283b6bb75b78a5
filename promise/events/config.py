"""Settings of the event backbone, read from ``PROMISE_*`` environment variables.

They sit beside :class:`promise.settings.Settings` and
:class:`promise.stock.config.StockSettings` (same prefix, disjoint names).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field

from promise.settings import EnvSettings

__all__ = ["EventSettings"]

# Stream and subject names: NATS tokens without wildcards or separators of their own.
StreamName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
SubjectPrefix = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")
]


class EventSettings(EnvSettings):
    """Where inventory events come from, where changes go, and how hard to try."""

    nats_url: str = Field(
        default="nats://127.0.0.1:4222", description="The NATS server (JetStream enabled)."
    )
    events_consume: bool = Field(
        default=False,
        description="promise serve: every worker consumes inventory events from the stream.",
    )
    events_publish: bool = Field(
        default=False,
        description="Write every change to the outbox and publish it (serve and consume).",
    )
    events_stream: StreamName = "INVENTORY"
    events_stream_memory: bool = Field(
        default=False,
        description="Create the inventory stream in the broker's memory instead of on disk "
        "(when this service creates it): events published but not yet consumed are lost if the "
        "broker restarts.",
    )
    events_subject: SubjectPrefix = Field(
        default="inventory.events",
        description="Inventory events arrive on <events_subject>.<node_id>.",
    )
    events_durable: StreamName = Field(
        default="promise-stock",
        description="The durable consumer every instance shares (the work is split among them).",
    )
    events_dlq_stream: StreamName = "INVENTORY_DLQ"
    events_dlq_subject: SubjectPrefix = Field(
        default="inventory.dlq",
        description="Dead letters go to <events_dlq_subject>.<node_id or 'unknown'>.",
    )
    events_out_stream: StreamName = "PROMISE"
    events_out_subject: SubjectPrefix = Field(
        default="promise",
        description="Changes are published on <events_out_subject>.<kind>.<node_id>.",
    )
    events_batch: Annotated[int, Field(ge=1, le=5000)] = Field(
        default=500, description="Inventory events fetched and applied per transaction, at most."
    )
    events_fetch_wait_ms: Annotated[int, Field(ge=1, le=5000)] = Field(
        default=500,
        description="How long an idle consumer waits for a message before it looks at its "
        "lag and pull requests again (a message that arrives is applied at once).",
    )
    events_ack_wait_s: Annotated[float, Field(ge=1, le=3600)] = Field(
        default=30.0, description="An unacknowledged event is redelivered after this."
    )
    events_max_backoff_s: Annotated[float, Field(gt=0, le=600)] = Field(
        default=5.0, description="Longest wait between tries while the stock store is down."
    )
    events_poison_deliveries: Annotated[int, Field(ge=2, le=1000)] = Field(
        default=20,
        description="An event that fails for another reason than an outage this many times "
        "is dead-lettered.",
    )
    events_dedup_window_s: Annotated[float, Field(ge=1, le=86_400)] = Field(
        default=600.0,
        description="How long the output stream remembers message ids (a crashed publisher "
        "must restart within it to publish nothing twice).",
    )
    outbox_batch: Annotated[int, Field(ge=1, le=10_000)] = 1000
    outbox_poll_ms: Annotated[int, Field(ge=1, le=60_000)] = Field(
        default=20, description="How often an idle publisher looks for new outbox rows."
    )
    outbox_lease_s: Annotated[float, Field(ge=1, le=600)] = Field(
        default=5.0, description="A publisher that stops renewing is replaced after this."
    )

    @property
    def any(self) -> bool:
        """Whether the backbone does anything (consumes or publishes)."""
        return self.events_consume or self.events_publish

    @classmethod
    def namespaced(cls, nats_url: str, prefix: str, **overrides: object) -> EventSettings:
        """Streams, subjects and a durable consumer of their own (a test run, a benchmark).

        Every name carries ``prefix`` and a random tag, so runs sharing one NATS server never
        read each other's messages.
        """
        tag = f"{prefix}{uuid.uuid4().hex[:10]}"
        return cls.model_validate(
            {
                "nats_url": nats_url,
                "events_stream": f"INV_{tag}",
                "events_subject": f"{tag}.inventory.events",
                "events_durable": f"d{tag}",
                "events_dlq_stream": f"DLQ_{tag}",
                "events_dlq_subject": f"{tag}.inventory.dlq",
                "events_out_stream": f"OUT_{tag}",
                "events_out_subject": f"{tag}.promise",
                **overrides,
            }
        )
