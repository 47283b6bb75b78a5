"""The broker as the event backbone sees it: a small interface, so another one can be added.

What the consumer, the publisher and the tools need is a stream of messages with sequence
numbers, a durable consumer shared by several processes that hands out messages and takes
acknowledgements, publishing with a de-duplication id, and reading a stream from a sequence
number or an instant. :mod:`promise.events.jetstream` implements it on NATS JetStream; a Kafka
implementation would map the durable consumer to a consumer group and acknowledgement to an
offset commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol

__all__ = [
    "DEAD_REASON",
    "MSG_ID",
    "ORIGINAL_SEQ",
    "ORIGINAL_SUBJECT",
    "Broker",
    "BrokerError",
    "Delivery",
    "Outgoing",
    "Published",
    "Received",
    "Subscription",
]

# Headers the backbone reads and writes.
MSG_ID = "Nats-Msg-Id"
DEAD_REASON = "Promise-Dead-Reason"
ORIGINAL_SUBJECT = "Promise-Original-Subject"
ORIGINAL_SEQ = "Promise-Original-Seq"


class BrokerError(RuntimeError):
    """The broker could not be reached or refused a request (worth retrying later)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Received:
    """A message as a stream stored it."""

    subject: str
    data: bytes
    headers: Mapping[str, str]
    stream_seq: int
    stored_at: dt.datetime
    deliveries: int = 1  # how often a durable consumer handed it out (1 on first delivery)


@dataclasses.dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to publish; ``msg_id`` lets the stream drop a re-publication."""

    subject: str
    data: bytes
    msg_id: str | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class Published:
    """Where the stream stored a message; ``duplicate`` when it had that msg_id already."""

    seq: int
    duplicate: bool


class Delivery(Protocol):
    """A message handed out by a durable consumer, to acknowledge once it is dealt with."""

    @property
    def message(self) -> Received:
        """The message."""
        ...

    async def ack(self) -> None:
        """Done with it: it will not be handed out again."""
        ...

    async def nak(self, delay_s: float) -> None:
        """Not done: hand it out again (to any consumer) after ``delay_s``."""
        ...


class Subscription(Protocol):
    """A durable consumer's share of a stream (several processes may share one)."""

    async def fetch(self, batch: int, timeout_s: float) -> list[Delivery]:
        """Up to ``batch`` messages, as soon as any are there ([] after ``timeout_s``)."""
        ...

    async def lag(self) -> int:
        """Messages of the stream not yet acknowledged by the durable consumer."""
        ...


class Broker(Protocol):
    """Streams, durable consumers, publishing and reading back."""

    async def ensure_stream(
        self,
        name: str,
        subjects: Sequence[str],
        *,
        dedup_window_s: float | None = None,
        memory: bool = False,
    ) -> None:
        """Create the stream unless it exists (an existing one is left as it is).

        ``memory`` keeps it in the broker's memory rather than on its disk.
        """
        ...

    async def subscribe(
        self, stream: str, durable: str, subject_filter: str, *, ack_wait_s: float
    ) -> Subscription:
        """Join (creating if needed) the durable consumer ``durable`` of ``stream``."""
        ...

    async def publish(self, message: Outgoing, *, timeout_s: float = 5.0) -> Published:
        """Publish one message and wait until the stream stored it."""
        ...

    async def publish_many(
        self, messages: Sequence[Outgoing], *, timeout_s: float = 5.0
    ) -> list[Published | BrokerError]:
        """Publish in order, pipelined; each message's outcome, in the same order."""
        ...

    def read(
        self,
        stream: str,
        *,
        subject_filter: str | None = None,
        from_seq: int | None = None,
        since: dt.datetime | None = None,
    ) -> AsyncIterator[Received]:
        """Every message of ``stream`` from a sequence number or an instant, to its current end."""
        ...

    async def delete(self, stream: str, seq: int) -> bool:
        """Remove one message from a stream; whether it was there."""
        ...

    async def last_seq(self, stream: str) -> int:
        """The stream's last sequence number (0 when empty or missing)."""
        ...

    async def close(self) -> None:
        """Flush and disconnect."""
        ...
