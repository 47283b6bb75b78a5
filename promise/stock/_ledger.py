"""The event ledger: every inventory event recorded once, applied in order to its row.

A batch locks its rows, records each new event (an event id seen before is a duplicate), and
applies the count or delta to the row's count state; an in-transit event opens a lot, a receipt
closes it, and a sale naming a reservation consumes that hold's units.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from promise.stock._hold_queries import HoldQueries
from promise.stock._rows import KEY_CHUNK, Cursor
from promise.stock.access import Charges
from promise.stock.backend import Clock, HoldRecord, Key, KnownRow, from_us, to_us
from promise.stock.errors import SnapshotMovedError
from promise.stock.events import CountState, after, digest, judge
from promise.stock.outbox import Change
from promise.stock.schemas import (
    EventOutcome,
    EventResult,
    EventType,
    InventoryEvent,
    RecordedEvent,
)

__all__ = ["EventLedger"]


class _Journal:
    """The journal rows of one batch: digests known so far, and the rows still to insert."""

    def __init__(self, digests: dict[str, str]) -> None:
        """Start from the digests of the batch's events already recorded."""
        self.digests = digests
        self.pending: list[tuple[Any, ...]] = []

    def record(self, row: tuple[Any, ...]) -> None:
        """Add a new event's row (``row[0]`` its id, ``row[13]`` its digest)."""
        self.digests[str(row[0])] = str(row[13])
        self.pending.append(row)


def _event_change(event: InventoryEvent, result: EventResult) -> Change:
    """The message of an applied event: the event as recorded and its row's new ATP."""
    return Change(
        kind="event",
        node_id=event.node_id,
        msg_id=f"event:{event.event_id}",
        body={
            "event": event.model_dump(mode="json", exclude_none=True),
            "outcome": result.outcome.value,
            "reason": result.reason,
        },
        rows=((event.node_id, event.sku),),
    )


def _result(event: InventoryEvent, outcome: EventOutcome, reason: str | None) -> EventResult:
    """One event's result."""
    return EventResult(event_id=event.event_id, outcome=outcome, reason=reason)


class EventLedger(HoldQueries):
    """Recording and applying inventory events (a sale may consume a hold, hence the base)."""

    def recorded_event(self, event_id: str) -> RecordedEvent | None:
        """An event as the journal recorded it."""

        def work(cur: Cursor) -> RecordedEvent | None:
            row = self._run(
                cur,
                "SELECT event_id, node_id, sku, type, quantity, seq, outcome, reason, "
                "recorded_at, snapshot_generation FROM stock_events WHERE event_id = ?",
                (event_id,),
            ).fetchone()
            if row is None:
                return None
            return RecordedEvent(
                event_id=row[0],
                node_id=row[1],
                sku=row[2],
                type=EventType(row[3]),
                quantity=int(row[4]),
                seq=int(row[5]),
                outcome=EventOutcome(row[6]),
                reason=row[7],
                recorded_at=from_us(int(row[8])),
                snapshot_generation=None if row[9] is None else int(row[9]),
            )

        return self._read(work)

    # --- events ---------------------------------------------------------------------------

    def apply_events(
        self,
        events: Sequence[InventoryEvent],
        known: KnownRow,
        clock: Clock,
        generation: int | None = None,
        actor: str | None = None,
    ) -> tuple[tuple[EventResult, ...], int]:
        """Record and apply a batch judged under snapshot ``generation``; results and version.

        ``actor`` (when given) gets one audit entry for the batch, written with it.
        """
        results: dict[int, EventResult] = {}
        todo: list[int] = []
        for i, event in enumerate(events):
            reason = known(event.node_id, event.sku)
            if reason is None:
                todo.append(i)
            else:
                results[i] = _result(event, EventOutcome.REJECTED, reason)
        keys = sorted({(events[i].node_id, events[i].sku) for i in todo})
        if not keys:
            # Nothing to write, but the rejections must have been judged on the live network.
            versions = self.versions()
            if generation is not None and versions.snapshot != generation:
                raise SnapshotMovedError(generation, versions.snapshot)
            if actor is not None:
                self._write((), clock, lambda cur, now: self._audit_batch(cur, now, actor, results))
            return tuple(results[i] for i in range(len(events))), versions.stock

        def work(cur: Cursor, now: int) -> int:
            judged = self._judged_under(cur, generation)
            before = self._overlays_of(cur, keys)
            states = {key: o.count for key, o in before.items()}
            touched: set[Key] = set()
            charges: Charges = {}
            changes: list[Change] = []
            journal = self._journal_of(cur, [events[i].event_id for i in todo])
            for i in todo:
                results[i] = self._apply_one(
                    cur,
                    events[i],
                    states,
                    touched,
                    now,
                    judged=judged,
                    charges=charges,
                    journal=journal,
                )
                if results[i].outcome is EventOutcome.APPLIED and self.outbox_enabled:
                    changes.append(_event_change(events[i], results[i]))
            self._write_journal(cur, journal)
            cur.executemany(
                self._sql(
                    "UPDATE stock_rows SET count_seq = ?, count_value = ?, delta_sum = ? "
                    "WHERE node_id = ? AND sku = ?"
                ),
                [
                    (states[k].count_seq, states[k].count_value, states[k].delta_sum, *k)
                    for k in sorted(touched)
                ],
            )
            self._audit_batch(cur, now, actor, results)
            self._settle(cur, charges)
            # Plain deltas and counts change only the count state: the rows' overlays are
            # known without reading them again. Lots and consumed holds are read afresh.
            plain = not any(
                events[i].lot_id or events[i].reservation_id or events[i].eta for i in todo
            )
            after_batch = (
                {key: dataclasses.replace(before[key], count=states[key]) for key in keys}
                if plain
                else None
            )
            self._record(cur, now, changes, overlays=after_batch)
            return self._bump(cur, touched) if touched else self._version(cur)

        version = self._write(keys, clock, work)
        return tuple(results[i] for i in range(len(events))), version

    def _audit_batch(
        self, cur: Cursor, now: int, actor: str | None, results: dict[int, EventResult]
    ) -> None:
        """One audit entry for a batch of events: its size, outcomes and first and last ids."""
        if actor is None or not results:
            return
        ordered = [results[i] for i in sorted(results)]
        outcomes: dict[str, int] = {}
        for result in ordered:
            outcomes[result.outcome.value] = outcomes.get(result.outcome.value, 0) + 1
        self._audit(
            cur,
            now,
            actor,
            action="events.apply",
            subject=f"{ordered[0].event_id}..{ordered[-1].event_id}",
            detail={"events": len(ordered), "outcomes": outcomes},
        )

    def _apply_one(
        self,
        cur: Cursor,
        event: InventoryEvent,
        states: dict[Key, CountState],
        touched: set[Key],
        now: int,
        *,
        judged: int | None,
        charges: Charges,
        journal: _Journal,
    ) -> EventResult:
        """Record one event and apply it to ``states`` (the batch's rows, locked)."""
        key = (event.node_id, event.sku)
        hold: HoldRecord | None = None
        if event.reservation_id is not None:
            hold = self._hold(cur, event.reservation_id, lock=True)
            if hold is None:
                why = f"unknown reservation {event.reservation_id!r}"
                return _result(event, EventOutcome.REJECTED, why)
            if not any((line.node_id, line.sku) == key for line in hold.lines):
                why = f"reservation {hold.hold_id!r} holds no {event.sku} at {event.node_id}"
                return _result(event, EventOutcome.REJECTED, why)
        lot_id = event.event_id if event.type is EventType.IN_TRANSIT else event.lot_id
        if lot_id is not None:
            row = self._run(
                cur, "SELECT node_id, sku FROM stock_lots WHERE lot_id = ?", (lot_id,)
            ).fetchone()
            if row is not None and (row[0], row[1]) != key:
                why = f"lot {lot_id!r} is of {row[1]} at {row[0]}"
                return _result(event, EventOutcome.REJECTED, why)
        state = states[key]
        outcome, reason = judge(event, state)
        fingerprint = digest(event)
        known = journal.digests.get(event.event_id)
        if known is not None:
            same = known == fingerprint
            what = "already recorded" if same else "already recorded with different content"
            return _result(event, EventOutcome.DUPLICATE, f"event_id {what}; ignored")
        journal.record(
            (
                event.event_id,
                event.node_id,
                event.sku,
                event.type.value,
                event.quantity,
                event.delta,
                event.seq,
                to_us(event.occurred_at),
                None if event.eta is None else event.eta.toordinal(),
                event.reservation_id,
                event.lot_id,
                outcome.value,
                reason,
                fingerprint,
                now,
                judged,
            )
        )
        if outcome is EventOutcome.APPLIED:
            touched.add(key)
            if event.type is EventType.IN_TRANSIT:
                self._open_lot(cur, event)
            else:
                states[key] = after(
                    event, state, lambda seq: self._deltas_after(cur, key, seq, journal)
                )
        if event.lot_id is not None:
            # Units that arrived have left transit, whether or not a count already has them.
            self._close_lot(cur, event.lot_id, key)
            touched.add(key)
        if hold is not None:
            note = self._consume(cur, hold, event, now, charges)
            if note is None:
                touched.add(key)
            else:
                reason = "; ".join(part for part in (reason, note) if part)
        return _result(event, outcome, reason)

    def _deltas_after(self, cur: Cursor, key: Key, seq: int, journal: _Journal) -> int:
        """Sum of the recorded deltas of a row with a seq after ``seq`` (this batch's too)."""
        self._write_journal(cur, journal)
        row = self._run(
            cur,
            "SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM stock_events "
            "WHERE node_id = ? AND sku = ? AND delta IS NOT NULL AND seq > ?",
            (*key, seq),
        ).fetchone()
        return int(row[0])

    def _journal_of(self, cur: Cursor, event_ids: Sequence[str]) -> _Journal:
        """The digests of the batch's events already in the journal (the rest are new)."""
        ids = sorted(set(event_ids))
        found: dict[str, str] = {}
        for start in range(0, len(ids), KEY_CHUNK):
            chunk = ids[start : start + KEY_CHUNK]
            marks = ", ".join("?" for _ in chunk)
            for event_id, fingerprint in self._run(
                cur,
                f"SELECT event_id, digest FROM stock_events WHERE event_id IN ({marks})",  # noqa: S608 - only ? markers
                chunk,
            ).fetchall():
                found[str(event_id)] = str(fingerprint)
        return _Journal(found)

    def _write_journal(self, cur: Cursor, journal: _Journal) -> None:
        """Insert the batch's new journal rows gathered so far, in one round of statements.

        The batch's rows are locked, so no other transaction records an event of them; one
        reusing an event_id for another row may, and its primary key conflict rolls this
        transaction back to be tried again (PostgreSQL), where the id reads as a duplicate.
        """
        if not journal.pending:
            return
        cur.executemany(
            self._sql(
                "INSERT INTO stock_events (event_id, node_id, sku, type, quantity, delta, seq, "
                "occurred_at, eta, reservation_id, lot_id, outcome, reason, digest, "
                "recorded_at, snapshot_generation) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            journal.pending,
        )
        journal.pending = []

    def _open_lot(self, cur: Cursor, event: InventoryEvent) -> None:
        """Add an in-transit lot (a receipt that closed it earlier keeps it closed)."""
        assert event.eta is not None
        self._run(
            cur,
            "INSERT INTO stock_lots (lot_id, node_id, sku, quantity, eta, closed) "
            "VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (lot_id) DO UPDATE "
            "SET quantity = excluded.quantity, eta = excluded.eta",
            (event.event_id, event.node_id, event.sku, event.quantity, event.eta.toordinal()),
        )

    def _close_lot(self, cur: Cursor, lot_id: str, key: Key) -> None:
        """Close a lot (recorded ahead of its in_transit event if that is still to come)."""
        self._run(
            cur,
            "INSERT INTO stock_lots (lot_id, node_id, sku, quantity, eta, closed) "
            "VALUES (?, ?, ?, NULL, NULL, 1) ON CONFLICT (lot_id) DO UPDATE SET closed = 1",
            (lot_id, *key),
        )
