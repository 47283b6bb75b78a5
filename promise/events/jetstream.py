"""The broker on NATS JetStream (nats-py): file-backed streams and durable pull consumers.

A durable pull consumer is shared by every process that pulls from it: JetStream hands each
message to one of them and redelivers it (to any) when it is not acknowledged within the ack
wait, or is refused with a delay. The client reconnects by itself for as long as the process
lives; calls made while it is away fail with :class:`BrokerError`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType

from promise.events.broker import (
    MSG_ID,
    BrokerError,
    Delivery,
    Outgoing,
    Published,
    Received,
    Subscription,
)

__all__ = ["JetStreamBroker", "connect"]

log = logging.getLogger(__name__)

# Messages handed out and not yet acknowledged, per durable consumer: enough for several
# consumers' batches in flight, bounded so one stuck consumer does not take everything.
MAX_ACK_PENDING = 20_000
READ_BATCH = 1000
# A read consumer left behind by a crashed tool disappears after this.
READ_INACTIVE_S = 60.0
CONNECT_TIMEOUT_S = 2.0
RECONNECT_WAIT_S = 0.5
# How long one pull request stays open on the server.
PULL_EXPIRES_S = 5.0
STATUS = "Status"
HEARTBEAT = "100"
PENDING_MESSAGES = "Nats-Pending-Messages"
CLOSE_FLUSH_S = 2
NATS_ERRORS = (nats.errors.Error, nats.js.errors.Error, asyncio.TimeoutError, OSError)


def _received(msg: Msg) -> Received:
    """A delivered JetStream message as the backbone sees it."""
    meta = msg.metadata
    return Received(
        subject=msg.subject,
        data=msg.data,
        headers=dict(msg.headers or {}),
        stream_seq=meta.sequence.stream,
        stored_at=meta.timestamp,
        deliveries=meta.num_delivered,
    )


class _Delivery:
    """A message of a durable pull consumer."""

    __slots__ = ("_msg", "message")

    def __init__(self, msg: Msg) -> None:
        """Wrap ``msg``."""
        self._msg = msg
        self.message = _received(msg)

    async def ack(self) -> None:
        """Acknowledge it (fire and forget: a lost ack only means a redelivery)."""
        try:
            await self._msg.ack()
        except NATS_ERRORS as exc:
            raise BrokerError(f"ack failed: {exc!r}") from exc

    async def nak(self, delay_s: float) -> None:
        """Ask for a redelivery after ``delay_s``."""
        try:
            await self._msg.nak(delay=delay_s)
        except NATS_ERRORS as exc:
            raise BrokerError(f"nak failed: {exc!r}") from exc


class _Subscription:
    """A process's share of a durable pull consumer, with its own pull loop.

    It keeps pull requests open for about a batch more than it holds, each lasting
    ``PULL_EXPIRES_S``; the server sends each message as soon as there is one, and fetch
    hands over what has arrived (waiting only when nothing has). The client library's own
    fetch instead waits, once a message arrived, until its batch is full or its time is up,
    which either adds that time to every event's latency or, with a short time, cuts batches
    into many small transactions under load.
    """

    def __init__(self, nc: Client, stream: str, durable: str) -> None:
        """Pull from ``durable`` of ``stream`` (call :meth:`start` first)."""
        self._nc = nc
        self._js = nc.jetstream()
        self._stream = stream
        self._durable = durable
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = nc.new_inbox()
        self._buffer: collections.deque[Msg] = collections.deque()
        self._arrived = asyncio.Event()
        self._credit = 0  # messages the open pull requests may still bring
        self._heard_at = 0.0

    async def start(self) -> None:
        """Subscribe to the inbox the pulled messages come to."""
        await self._nc.subscribe(self._inbox, cb=self._on_message)

    async def _on_message(self, msg: Msg) -> None:
        """A pulled message, or a status that ends (part of) a pull request."""
        self._heard_at = time.monotonic()
        headers = msg.headers or {}
        status = headers.get(STATUS)
        if status is None:
            self._credit -= 1
            self._buffer.append(msg)
        elif status != HEARTBEAT:
            # A request expired or was refused: what it did not bring is no longer coming.
            left = headers.get(PENDING_MESSAGES)
            self._credit = max(0, self._credit - int(left)) if left else 0
        self._arrived.set()

    async def _top_up(self, batch: int) -> None:
        """Keep about a batch more requested than held."""
        if time.monotonic() - self._heard_at > PULL_EXPIRES_S + 1:
            # Nothing heard for longer than a request lives: requests were lost (a reconnect).
            self._credit = 0
        if self._credit >= batch:
            return
        request = {"batch": batch, "expires": int(PULL_EXPIRES_S * 1e9)}
        await self._nc.publish(self._next, json.dumps(request).encode(), reply=self._inbox)
        self._credit += batch
        self._heard_at = time.monotonic()

    async def fetch(self, batch: int, timeout_s: float) -> list[Delivery]:
        """What has arrived (up to ``batch``), else the first to arrive within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        try:
            await self._top_up(batch)
            while not self._buffer:
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self._arrived.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), left)
                await self._top_up(batch)
        except NATS_ERRORS as exc:
            raise BrokerError(f"pull failed: {exc!r}") from exc
        count = min(batch, len(self._buffer))
        return [_Delivery(self._buffer.popleft()) for _ in range(count)]

    async def lag(self) -> int:
        """Messages not yet delivered plus those delivered and not yet acknowledged."""
        try:
            info = await self._js.consumer_info(self._stream, self._durable)
        except NATS_ERRORS as exc:
            raise BrokerError(f"consumer info failed: {exc!r}") from exc
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)


class _AckBatch:
    """The acknowledgements of one pipelined batch, as they arrive."""

    def __init__(self, size: int) -> None:
        """Wait for ``size`` answers."""
        self.results: list[Published | BrokerError | None] = [None] * size
        self._left = size
        self.done = asyncio.Event()

    def store(self, index: int, result: Published | BrokerError) -> None:
        """Record message ``index``'s outcome (the first answer counts)."""
        if self.results[index] is None:
            self.results[index] = result
            self._left -= 1
            if self._left == 0:
                self.done.set()

    def fail(self, index: int, error: BrokerError) -> None:
        """Record that message ``index`` failed."""
        self.store(index, error)


class JetStreamBroker:
    """Streams, consumers and publishing on one NATS connection."""

    def __init__(self, nc: Client) -> None:
        """Use the connected client ``nc``."""
        self._nc = nc
        self._js = nc.jetstream()
        self._ack_prefix = ""
        self._ack_sub: NatsSubscription | None = None
        self._batch_no = 0
        self._batches: dict[int, _AckBatch] = {}

    async def ensure_stream(
        self,
        name: str,
        subjects: Sequence[str],
        *,
        dedup_window_s: float | None = None,
        memory: bool = False,
    ) -> None:
        """Create a file-backed (or ``memory``) stream unless it exists."""
        try:
            await self._js.stream_info(name)
            return
        except nats.js.errors.NotFoundError:
            pass
        except NATS_ERRORS as exc:
            raise BrokerError(f"stream info of {name} failed: {exc!r}") from exc
        try:
            await self._js.add_stream(
                name=name,
                subjects=list(subjects),
                storage=StorageType.MEMORY if memory else StorageType.FILE,
                duplicate_window=dedup_window_s or 120.0,
            )
        except nats.js.errors.BadRequestError:
            # Another process created it meanwhile (a stream of that name already exists).
            await self._js.stream_info(name)
        except NATS_ERRORS as exc:
            raise BrokerError(f"creating stream {name} failed: {exc!r}") from exc

    async def subscribe(
        self, stream: str, durable: str, subject_filter: str, *, ack_wait_s: float
    ) -> Subscription:
        """Bind to the durable pull consumer, creating it on first use."""
        config = ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ack_wait_s,
            # Never give up on a message: an outage can outlast any count. Poison messages
            # are dead-lettered by the consumer itself.
            max_deliver=-1,
            max_ack_pending=MAX_ACK_PENDING,
            deliver_policy=DeliverPolicy.ALL,
        )
        config.durable_name = durable
        # No filter: the stream holds only its subjects. nats-server 2.9 walks its file store
        # per message for a filtered consumer over many subjects (a backlog then drains at a
        # few hundred a second); an unfiltered one reads it in order.
        del subject_filter
        try:
            try:
                await self._js.add_consumer(stream, config=config)
            except nats.js.errors.BadRequestError:
                # It exists with another configuration (made by an earlier build): use it.
                await self._js.consumer_info(stream, durable)
            sub = _Subscription(self._nc, stream, durable)
            await sub.start()
        except NATS_ERRORS as exc:
            raise BrokerError(f"joining consumer {durable} of {stream} failed: {exc!r}") from exc
        return sub

    async def publish(self, message: Outgoing, *, timeout_s: float = 5.0) -> Published:
        """Publish and wait for the stream's acknowledgement."""
        headers = dict(message.headers)
        if message.msg_id is not None:
            headers[MSG_ID] = message.msg_id
        try:
            ack = await self._js.publish(
                message.subject, message.data, timeout=timeout_s, headers=headers or None
            )
        except NATS_ERRORS as exc:
            raise BrokerError(f"publish to {message.subject} failed: {exc!r}") from exc
        return Published(seq=ack.seq, duplicate=bool(ack.duplicate))

    async def publish_many(
        self, messages: Sequence[Outgoing], *, timeout_s: float = 5.0
    ) -> list[Published | BrokerError]:
        """Publish every message without waiting in between, then collect the acknowledgements.

        One connection delivers its messages in the order they were written, so the stream
        stores them in this order. The acknowledgements come back on one inbox subscription
        (cheaper per message than the client's own asynchronous publish, which makes a task
        and a future for each).
        """
        if not messages:
            return []
        if self._ack_sub is None:
            self._ack_prefix = self._nc.new_inbox()
            try:
                self._ack_sub = await self._nc.subscribe(f"{self._ack_prefix}.*", cb=self._on_ack)
            except NATS_ERRORS as exc:
                raise BrokerError(f"subscribing to acknowledgements failed: {exc!r}") from exc
        self._batch_no += 1
        batch = _AckBatch(len(messages))
        self._batches[self._batch_no] = batch
        try:
            for i, message in enumerate(messages):
                headers = dict(message.headers)
                if message.msg_id is not None:
                    headers[MSG_ID] = message.msg_id
                try:
                    await self._nc.publish(
                        message.subject,
                        message.data,
                        reply=f"{self._ack_prefix}.{self._batch_no}_{i}",
                        headers=headers or None,
                    )
                except NATS_ERRORS as exc:
                    batch.fail(i, BrokerError(f"publish to {message.subject} failed: {exc!r}"))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(batch.done.wait(), timeout_s)
        finally:
            del self._batches[self._batch_no]
        return [
            BrokerError("no acknowledgement from the stream in time") if result is None else result
            for result in batch.results
        ]

    async def _on_ack(self, msg: Msg) -> None:
        """Record the stream's answer to one message of a pipelined batch."""
        token = msg.subject.rsplit(".", 1)[-1]
        batch_no, _, index = token.partition("_")
        batch = self._batches.get(int(batch_no))
        if batch is None:
            return  # a batch that timed out already
        try:
            answer = json.loads(msg.data)
        except ValueError:
            # An empty status message: no stream listens on the subject.
            status = (msg.headers or {}).get("Status", "")
            batch.fail(int(index), BrokerError(f"no stream stored the message (status {status})"))
            return
        if "error" in answer:
            error = answer["error"].get("description", answer["error"])
            batch.fail(int(index), BrokerError(f"the stream refused the message: {error}"))
            return
        batch.store(
            int(index), Published(seq=int(answer["seq"]), duplicate=bool(answer.get("duplicate")))
        )

    async def read(
        self,
        stream: str,
        *,
        subject_filter: str | None = None,
        from_seq: int | None = None,
        since: dt.datetime | None = None,
    ) -> AsyncIterator[Received]:
        """Every message from ``from_seq`` (or stored at or after ``since``) to the end now."""
        end = await self.last_seq(stream)
        if end == 0:
            return
        if since is not None:
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since
            )
        else:
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(1, from_seq or 1)
            )
        config.ack_policy = AckPolicy.NONE
        config.inactive_threshold = READ_INACTIVE_S
        if subject_filter is not None:
            config.filter_subject = subject_filter
        try:
            # Made first, then bound: without a filter, as the subscribe helper would set one
            # (a filtered read of a file stream over many subjects is slow on nats-server 2.9).
            info = await self._js.add_consumer(stream, config=config)
            sub = await self._js.pull_subscribe_bind(consumer=info.name, stream=stream)
        except NATS_ERRORS as exc:
            raise BrokerError(f"reading {stream} failed: {exc!r}") from exc
        try:
            while True:
                try:
                    msgs = await sub.fetch(READ_BATCH, timeout=2.0)
                except nats.errors.TimeoutError:
                    return  # nothing left in the filter's range
                for msg in msgs:
                    received = _received(msg)
                    if received.stream_seq > end:
                        return
                    yield received
                    if received.stream_seq == end or msg.metadata.num_pending == 0:
                        return
        finally:
            with contextlib.suppress(*NATS_ERRORS):
                await sub.unsubscribe()

    async def delete(self, stream: str, seq: int) -> bool:
        """Remove message ``seq`` from ``stream``."""
        try:
            return bool(await self._js.delete_msg(stream, seq))
        except nats.js.errors.NotFoundError:
            return False
        except NATS_ERRORS as exc:
            raise BrokerError(f"deleting {stream}:{seq} failed: {exc!r}") from exc

    async def last_seq(self, stream: str) -> int:
        """The stream's last sequence number (0 when it is empty or missing)."""
        try:
            info = await self._js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            return 0
        except NATS_ERRORS as exc:
            raise BrokerError(f"stream info of {stream} failed: {exc!r}") from exc
        return int(info.state.last_seq or 0) if info.state.messages else 0

    async def close(self) -> None:
        """Flush what is buffered (acknowledgements) and disconnect.

        Not a drain: that waits for every subscription's pending messages, up to 30 s, and
        unacknowledged messages are redelivered anyway.
        """
        with contextlib.suppress(*NATS_ERRORS):
            await self._nc.flush(timeout=CLOSE_FLUSH_S)
        with contextlib.suppress(*NATS_ERRORS):
            await self._nc.close()


async def connect(url: str, *, name: str) -> JetStreamBroker:
    """Connect to the NATS server at ``url`` (BrokerError when it cannot be reached now).

    Once connected, the client reconnects by itself after any loss, forever.
    """
    try:
        nc = await nats.connect(
            url,
            name=name,
            connect_timeout=CONNECT_TIMEOUT_S,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=RECONNECT_WAIT_S,
            # The first connection fails fast: the caller retries with its own back-off.
            max_outstanding_pings=3,
        )
    except NATS_ERRORS as exc:
        raise BrokerError(f"cannot connect to NATS at {url}: {exc!r}") from exc
    return JetStreamBroker(nc)
