"""Inventory events as stream messages: reading one, and the dead letter of one that can't apply.

An inventory event is published on ``<events_subject>.<node_id>`` with the JSON of
:class:`~promise.stock.schemas.InventoryEvent` as its body (the body of one event of
``POST /v1/inventory/events``). A message whose body is not a valid event, or whose subject
names another node than its body, can never apply: it is dead-lettered with the reason.
"""

from __future__ import annotations

import json

import pydantic

from promise.events.broker import DEAD_REASON, ORIGINAL_SEQ, ORIGINAL_SUBJECT, Outgoing, Received
from promise.stock.schemas import InventoryEvent

__all__ = ["dead_letter", "event_message", "node_of", "parse_event"]

# A reason travels in a header: keep it to one short line.
MAX_REASON_CHARS = 500
UNKNOWN_NODE = "unknown"


def node_of(subject: str, prefix: str) -> str | None:
    """The node id a subject under ``prefix`` names (None when it is not under it)."""
    head = prefix + "."
    if not subject.startswith(head) or len(subject) == len(head):
        return None
    return subject[len(head) :]


def parse_event(message: Received, prefix: str) -> InventoryEvent | str:
    """The inventory event a message carries, or why it can never be applied."""
    try:
        event = InventoryEvent.model_validate_json(message.data)
    except pydantic.ValidationError as exc:
        first = exc.errors(include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        return f"invalid event: {where}: {first['msg']} ({exc.error_count()} error(s))"
    node = node_of(message.subject, prefix)
    if node is not None and node != event.node_id:
        return f"subject names node {node!r} but the event is of node {event.node_id!r}"
    return event


def _one_line(text: str) -> str:
    """``text`` fit for a header value."""
    flat = " ".join(text.split())
    return flat[:MAX_REASON_CHARS]


def dead_letter(
    message: Received, reason: str, *, stream: str, dlq_prefix: str, prefix: str
) -> Outgoing:
    """The dead letter of ``message``: its body and headers, the reason and where it came from.

    Its msg id names the original stream position, so dead-lettering a redelivered message
    again stores it once.
    """
    node = node_of(message.subject, prefix) or UNKNOWN_NODE
    headers = {key: value for key, value in message.headers.items() if not key.startswith("Nats-")}
    headers.update(
        {
            DEAD_REASON: _one_line(reason),
            ORIGINAL_SUBJECT: message.subject,
            ORIGINAL_SEQ: str(message.stream_seq),
        }
    )
    return Outgoing(
        subject=f"{dlq_prefix}.{node}",
        data=message.data,
        msg_id=f"dead:{stream}:{message.stream_seq}",
        headers=headers,
    )


def event_message(event: InventoryEvent, prefix: str, *, msg_id: str | None = None) -> Outgoing:
    """An inventory event as a producer publishes it.

    A producer that retries should pass its event id as ``msg_id`` so the stream drops the
    copies; without one every copy reaches the consumer, whose journal ignores it.
    """
    body = json.dumps(event.model_dump(mode="json", exclude_none=True), separators=(",", ":"))
    return Outgoing(subject=f"{prefix}.{event.node_id}", data=body.encode(), msg_id=msg_id)
