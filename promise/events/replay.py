"""Rebuild stock from the inventory stream into a fresh store, and report drift from the live one.

The replayed store gets the live snapshot, then every event the stream holds from a sequence
number or an instant, applied through the same journal rules as the live authority (so
duplicates and shuffled order change nothing). A sale naming a reservation is replayed as a
plain sale: holds are not in the inventory stream, and the on-hand effect is the same.

The drift report compares, per (node, SKU) that either store has touched, what events made of
it: on hand (unfloored, over the snapshot's row) and units in the event-opened in-transit lots.
A row differs when the live store took events the stream does not hold (``POST
/v1/inventory/events``, a replay started after the first event) or when the live row was
changed behind the journal's back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

import anyio.to_thread

from models import Snapshot
from promise.events.broker import Broker
from promise.events.config import EventSettings
from promise.events.messages import parse_event
from promise.stock.backend import Clock, Key, utc_now
from promise.stock.holds import StockRules
from promise.stock.schemas import EventOutcome, InventoryEvent
from promise.stock.sql import StockBackend

__all__ = ["ReplayError", "ReplayReport", "RowDrift", "drift", "event_stock", "replay"]

ORIGIN = "events replay"
ACTOR = "replay"


class ReplayError(RuntimeError):
    """The replay cannot run as asked (no live snapshot, a store that is not fresh)."""


@dataclasses.dataclass(frozen=True, slots=True)
class RowDrift:
    """One (node, SKU) whose event-made stock differs between the live and replayed stores."""

    node_id: str
    sku: str
    live_on_hand: int
    replayed_on_hand: int
    on_hand_delta: int  # live − replayed
    live_in_transit: int
    replayed_in_transit: int
    in_transit_delta: int


@dataclasses.dataclass
class ReplayReport:
    """What a replay read and applied, and where the result differs from the live store."""

    stream: str
    first_seq: int | None = None
    last_seq: int | None = None
    messages: int = 0
    invalid: int = 0
    outcomes: dict[str, int] = dataclasses.field(
        default_factory=lambda: dict.fromkeys([o.value for o in EventOutcome], 0)
    )
    rows_compared: int = 0
    drift: list[RowDrift] = dataclasses.field(default_factory=list)


def event_stock(backend: StockBackend, snapshot: Snapshot) -> dict[Key, tuple[int, int]]:
    """Per row any event touched: (on hand, units in event-opened lots)."""
    rules = StockRules(snapshot)
    out: dict[Key, tuple[int, int]] = {}
    for key, overlay in backend.changes(0).rows.items():
        base = rules.rows.get(key)
        on_hand = overlay.count.on_hand(0 if base is None else base.on_hand)
        out[key] = (on_hand, sum(quantity for quantity, _ in overlay.lots))
    return out


def drift(
    live: StockBackend, replayed: StockBackend, snapshot: Snapshot
) -> tuple[int, list[RowDrift]]:
    """Rows compared, and those whose event-made stock differs (in key order)."""
    rules = StockRules(snapshot)
    mine = event_stock(live, snapshot)
    theirs = event_stock(replayed, snapshot)
    out: list[RowDrift] = []
    keys = sorted(mine.keys() | theirs.keys())
    for key in keys:
        base = rules.rows.get(key)
        untouched = (0 if base is None else base.on_hand, 0)
        live_on_hand, live_lots = mine.get(key, untouched)
        new_on_hand, new_lots = theirs.get(key, untouched)
        if (live_on_hand, live_lots) != (new_on_hand, new_lots):
            out.append(
                RowDrift(
                    node_id=key[0],
                    sku=key[1],
                    live_on_hand=live_on_hand,
                    replayed_on_hand=new_on_hand,
                    on_hand_delta=live_on_hand - new_on_hand,
                    live_in_transit=live_lots,
                    replayed_in_transit=new_lots,
                    in_transit_delta=live_lots - new_lots,
                )
            )
    return len(keys), out


def _live_snapshot(live: StockBackend) -> tuple[Snapshot, bytes, str]:
    """The live store's snapshot, its JSON and version (ReplayError when none is live)."""
    found = live.load_live_snapshot()
    if found is None:
        raise ReplayError("the live store has no live snapshot to replay against")
    pointer, body = found
    return Snapshot.model_validate_json(body), body, pointer.version


async def replay(
    broker: Broker,
    live: StockBackend,
    into: StockBackend,
    settings: EventSettings,
    *,
    from_seq: int | None = None,
    since: dt.datetime | None = None,
    batch: int = 1000,
    clock: Clock = utc_now,
) -> ReplayReport:
    """Apply the stream's events to the fresh store ``into``; the report with the drift."""
    snapshot, body, version = await anyio.to_thread.run_sync(_live_snapshot, live)
    fresh = await anyio.to_thread.run_sync(into.versions)
    if fresh.stock != 0 or fresh.snapshot != 0:
        raise ReplayError(
            "the store to replay into is not fresh (it has stock or a snapshot already)"
        )
    await anyio.to_thread.run_sync(
        lambda: into.publish_snapshot(body, version, ORIGIN, clock, only_if_none=True)
    )
    rules = StockRules(snapshot)
    report = ReplayReport(stream=settings.events_stream)
    pending: list[InventoryEvent] = []

    async def flush() -> None:
        if not pending:
            return
        events: Sequence[InventoryEvent] = tuple(pending)
        pending.clear()
        results, _ = await anyio.to_thread.run_sync(
            lambda: into.apply_events(events, rules.unknown, clock, None, ACTOR)
        )
        for result in results:
            report.outcomes[result.outcome.value] += 1

    # The whole stream: it holds only inventory events (a message on another subject is
    # judged and counted as invalid, like the consumer dead-letters it).
    async for message in broker.read(settings.events_stream, from_seq=from_seq, since=since):
        report.messages += 1
        report.first_seq = report.first_seq or message.stream_seq
        report.last_seq = message.stream_seq
        parsed = parse_event(message, settings.events_subject)
        if isinstance(parsed, str):
            report.invalid += 1
            continue
        if parsed.reservation_id is not None:
            parsed = parsed.model_copy(update={"reservation_id": None})
        pending.append(parsed)
        if len(pending) >= batch:
            await flush()
    await flush()
    report.rows_compared, report.drift = await anyio.to_thread.run_sync(drift, live, into, snapshot)
    return report
